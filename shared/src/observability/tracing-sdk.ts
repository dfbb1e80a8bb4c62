// The OpenTelemetry SDK, loaded only by a process's `--import` preload and only when
// OTEL_EXPORTER_OTLP_ENDPOINT is set: everything here is imported dynamically, so a process
// without an endpoint loads none of it.
import type { Instrumentation } from '@opentelemetry/instrumentation';
import { configSchema } from '../config/config.schema.ts';
import { markTracingEnabled } from './tracing.ts';

/** The settings the preload reads, before (and apart from) the process's own configuration. */
export const tracingConfigSchema = configSchema.pick({
  NODE_ENV: true,
  OTEL_EXPORTER_OTLP_ENDPOINT: true,
  OTEL_EXPORTER_OTLP_PROTOCOL: true,
  OTEL_TRACES_SAMPLER_ARG: true,
  OTEL_BSP_SCHEDULE_DELAY: true,
});

export type Tracing = { shutdown(): Promise<void> };

let running: Tracing | undefined;

/**
 * Starts tracing for one process: the ESM hooks (import-in-the-middle, intercepting only the
 * modules an instrumentation asked for), the http, pg and ioredis instrumentations plus the
 * process's own (`extra`, e.g. gRPC), W3C trace-context propagation, parent-based ratio
 * sampling and a batching OTLP/HTTP exporter (protobuf or JSON). Must run before the
 * instrumented modules are imported, hence `--import`. Returns undefined, having loaded nothing,
 * when OTEL_EXPORTER_OTLP_ENDPOINT is unset. An invalid setting is left to the process's own
 * configuration check, which names it and exits.
 */
export async function startTracing(
  serviceName: string,
  extra: () => Promise<Instrumentation[]> = async () => [],
  env: NodeJS.ProcessEnv = process.env,
): Promise<Tracing | undefined> {
  if (!env.OTEL_EXPORTER_OTLP_ENDPOINT) return undefined;
  const parsed = tracingConfigSchema.safeParse(env);
  if (!parsed.success) return undefined;
  const config = parsed.data;

  const { register } = await import('node:module');
  const { createAddHookMessageChannel } = await import('import-in-the-middle');
  const { registerOptions, waitForAllMessagesAcknowledged } = createAddHookMessageChannel();
  register('import-in-the-middle/hook.mjs', import.meta.url, registerOptions);

  const [api, core, contextAsyncHooks, resources, sdk, instrumentation, http, pg, ioredis] = await Promise.all([
    import('@opentelemetry/api'),
    import('@opentelemetry/core'),
    import('@opentelemetry/context-async-hooks'),
    import('@opentelemetry/resources'),
    import('@opentelemetry/sdk-trace'),
    import('@opentelemetry/instrumentation'),
    import('@opentelemetry/instrumentation-http'),
    import('@opentelemetry/instrumentation-pg'),
    import('@opentelemetry/instrumentation-ioredis'),
  ]);
  const exporterOptions = { url: `${config.OTEL_EXPORTER_OTLP_ENDPOINT?.replace(/\/$/, '')}/v1/traces` };
  const exporter =
    config.OTEL_EXPORTER_OTLP_PROTOCOL === 'http/json'
      ? new (await import('@opentelemetry/exporter-trace-otlp-http')).OTLPTraceExporter(exporterOptions)
      : new (await import('@opentelemetry/exporter-trace-otlp-proto')).OTLPTraceExporter(exporterOptions);

  const provider = new sdk.TracerProvider({
    resource: resources.resourceFromAttributes({
      'service.name': serviceName,
      'service.namespace': 'bank',
      'deployment.environment.name': config.NODE_ENV,
    }),
    sampler: new sdk.ParentBasedSampler({ root: new sdk.TraceIdRatioBasedSampler(config.OTEL_TRACES_SAMPLER_ARG) }),
    spanProcessors: [new sdk.BatchSpanProcessor({ exporter, scheduledDelayMillis: config.OTEL_BSP_SCHEDULE_DELAY })],
  });
  api.context.setGlobalContextManager(new contextAsyncHooks.AsyncLocalStorageContextManager().enable());
  api.propagation.setGlobalPropagator(new core.W3CTraceContextPropagator());
  api.trace.setGlobalTracerProvider(provider);

  const probes = new Set(['/healthz', '/readyz', '/metrics']);
  instrumentation.registerInstrumentations({
    tracerProvider: provider,
    instrumentations: [
      new http.HttpInstrumentation({
        // Probes and scrapes every few seconds would bury the requests worth reading.
        ignoreIncomingRequestHook: (request) => probes.has((request.url ?? '').split('?')[0] ?? ''),
        requireParentforOutgoingSpans: true,
      }),
      // Only inside a traced operation: the sweeps' polling would otherwise start a trace each.
      new pg.PgInstrumentation({ requireParentSpan: true }),
      new ioredis.IORedisInstrumentation({ requireParentSpan: true }),
      ...(await extra()),
    ],
  });
  await waitForAllMessagesAcknowledged();
  markTracingEnabled();

  running = {
    async shutdown() {
      await provider.shutdown().catch(() => undefined);
    },
  };
  return running;
}

/** Sends the spans still buffered and stops tracing; a no-op when tracing never started. */
export async function shutdownTracing(): Promise<void> {
  await running?.shutdown();
  running = undefined;
}
