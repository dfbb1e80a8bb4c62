// The gRPC server's `--import` preload (`node --import ./services/grpc/src/instrument.ts services/grpc/src/main.ts`):
// starts OpenTelemetry tracing, with the gRPC instrumentation, before the server's modules load,
// so the ESM hooks can patch them. Does nothing, and loads nothing of the SDK, when
// OTEL_EXPORTER_OTLP_ENDPOINT is unset.
import { startTracing } from '@bank/shared/observability/tracing-sdk';

await startTracing('grpc', async () => {
  const { GrpcInstrumentation } = await import('@opentelemetry/instrumentation-grpc');
  // Health checks every few seconds would bury the calls worth reading.
  return [new GrpcInstrumentation({ ignoreGrpcMethods: ['Check', 'Watch'] })];
});
