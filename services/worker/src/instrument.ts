// The worker's `--import` preload (`node --import ./services/worker/src/instrument.ts services/worker/src/main.ts`):
// starts OpenTelemetry tracing before the worker's modules load, so the ESM hooks can patch them.
// Does nothing, and loads nothing of the SDK, when OTEL_EXPORTER_OTLP_ENDPOINT is unset.
import { startTracing } from '@bank/shared/observability/tracing-sdk';

await startTracing('worker');
