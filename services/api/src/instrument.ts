// The API's `--import` preload (`node --import ./services/api/src/instrument.ts services/api/src/main.ts`):
// starts OpenTelemetry tracing before the server's modules load, so the ESM hooks can patch them.
// Does nothing, and loads nothing of the SDK, when OTEL_EXPORTER_OTLP_ENDPOINT is unset.
import { startTracing } from '@bank/shared/observability/tracing-sdk';

await startTracing('api');
