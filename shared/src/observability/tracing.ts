import {
  context,
  INVALID_SPAN_CONTEXT,
  isSpanContextValid,
  propagation,
  SpanStatusCode,
  trace,
  type Context,
  type Span,
  type SpanOptions,
} from '@opentelemetry/api';

/**
 * What the code needs from OpenTelemetry, through the API package only. Until a process's
 * `--import` preload has started the SDK (tracing-sdk.ts, only when OTEL_EXPORTER_OTLP_ENDPOINT is
 * set) every call here is a no-op: no provider, no context manager, nothing recorded or sent.
 */
const tracer = trace.getTracer('bank');

let enabled = false;

/** Called by startTracing once the SDK is registered; before that, inSpan runs its work bare. */
export function markTracingEnabled(): void {
  enabled = true;
}

/** Whether this process exports traces. */
export function tracingEnabled(): boolean {
  return enabled;
}

const NO_SPAN = trace.wrapSpanContext(INVALID_SPAN_CONTEXT);

/**
 * The trace and span ids of the active span, for every log line (the logger's mixin). The names
 * are the OpenTelemetry log data model's (`trace_id`, `span_id`), which log tools link to traces.
 */
// pino merges each line's fields into the object returned, so it must be a new one every time.
export function traceLogFields(): { trace_id?: string; span_id?: string } {
  if (!enabled) return {};
  const spanContext = trace.getSpanContext(context.active());
  if (!spanContext || !isSpanContextValid(spanContext)) return {};
  return { trace_id: spanContext.traceId, span_id: spanContext.spanId };
}

/**
 * Names the active server span after the route template (`POST /v1/users`), as the HTTP
 * semantic conventions ask; the http instrumentation knows only the method.
 */
export function nameServerSpan(method: string, route: string): void {
  if (!enabled) return;
  const span = trace.getActiveSpan();
  span?.updateName(`${method} ${route}`);
  span?.setAttribute('http.route', route);
}

/** The active trace context as W3C headers (`traceparent`, `tracestate`), to carry in a job; undefined when there is none. */
export function traceCarrier(): Record<string, string> | undefined {
  if (!enabled) return undefined;
  const carrier: Record<string, string> = {};
  propagation.inject(context.active(), carrier);
  return carrier.traceparent ? carrier : undefined;
}

/** The context a carrier from traceCarrier continues (the active one when there is none). */
export function contextFromCarrier(carrier: Record<string, string> | undefined): Context {
  if (!carrier) return context.active();
  return propagation.extract(context.active(), carrier);
}

/**
 * Runs `work` in a new active span (a child of `parent`, or of the active span), ended when the
 * work settles; a thrown error is recorded (addresses masked) and rethrown.
 */
export async function inSpan<T>(name: string, options: SpanOptions & { parent?: Context }, work: (span: Span) => Promise<T>): Promise<T> {
  if (!enabled) return work(NO_SPAN);
  const { parent, ...spanOptions } = options;
  return tracer.startActiveSpan(name, spanOptions, parent ?? context.active(), async (span) => {
    try {
      return await work(span);
    } catch (error) {
      const name = error instanceof Error ? error.name : 'Error';
      const message = maskAddresses(error instanceof Error ? error.message : String(error));
      span.recordException({ name, message });
      span.setStatus({ code: SpanStatusCode.ERROR, message: `${name}: ${message}` });
      throw error;
    } finally {
      span.end();
    }
  });
}

// SMTP errors quote recipients; spans leave the process like log lines do.
const maskAddresses = (text: string) =>
  text.replace(/[^\s<>"'(),;:]+@[^\s<>"'(),;:]+/g, (address) => `${address.slice(0, 1)}***${address.slice(address.lastIndexOf('@'))}`);
