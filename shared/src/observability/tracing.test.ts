import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { context, propagation, SpanKind, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import { createLogger } from '../logging/logger.ts';
import { contextFromCarrier, inSpan, markTracingEnabled, traceCarrier, traceLogFields, tracingEnabled } from './tracing.ts';
import { startTracing } from './tracing-sdk.ts';

describe('tracing helpers while tracing is off (no preload)', () => {
  it('run the work bare, carry no context and add no log fields', async () => {
    expect(tracingEnabled()).toBe(false);
    expect(await inSpan('work', {}, async (span) => span.isRecording())).toBe(false);
    expect(traceCarrier()).toBeUndefined();
    expect(traceLogFields()).toEqual({});
  });

  it('give pino a new object for every line (it merges each line into the one returned)', () => {
    expect(traceLogFields()).not.toBe(traceLogFields());
  });

  it('stay off when the preload runs without OTEL_EXPORTER_OTLP_ENDPOINT: no SDK, no exporter, no instrumentation', async () => {
    let extraAsked = false;
    const extra = async () => {
      extraAsked = true;
      return [];
    };
    expect(await startTracing('api', extra, { OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' })).toBeUndefined();
    expect(await startTracing('api', extra, { OTEL_EXPORTER_OTLP_ENDPOINT: '' })).toBeUndefined();
    expect(extraAsked).toBe(false);
    expect(tracingEnabled()).toBe(false);
    expect(trace.getTracerProvider().getTracer('probe').startSpan('probe').isRecording()).toBe(false);
  });
});

describe('tracing helpers with the SDK registered', () => {
  const exporter = new InMemorySpanExporter();
  const provider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] });
  beforeAll(() => {
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
    trace.setGlobalTracerProvider(provider);
    markTracingEnabled();
  });
  afterAll(async () => {
    await provider.shutdown();
    trace.disable();
    context.disable();
    propagation.disable();
  });

  it('carry the trace context of an enqueue to the job that continues it', async () => {
    const carrier = await inSpan('send bank-email', { kind: SpanKind.PRODUCER }, async () => traceCarrier());
    expect(carrier?.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    await inSpan('process bank-email', { kind: SpanKind.CONSUMER, parent: contextFromCarrier(carrier) }, async () => undefined);
    const [send, process] = exporter.getFinishedSpans();
    expect(process?.spanContext().traceId).toBe(send?.spanContext().traceId);
    expect(process?.parentSpanContext?.spanId).toBe(send?.spanContext().spanId);
  });

  it('record a failure with the addresses in its message masked, and rethrow it', async () => {
    exporter.reset();
    await expect(
      inSpan('smtp send', {}, async () => {
        throw new Error('550 mailbox alice@example.com unavailable');
      }),
    ).rejects.toThrow('alice@example.com');
    const [span] = exporter.getFinishedSpans();
    expect(span?.status.message).toBe('Error: 550 mailbox a***@example.com unavailable');
    expect(JSON.stringify(span?.events)).not.toContain('alice@');
  });

  it('put the trace and span ids on every log line written inside a span', async () => {
    const lines: string[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const logger = createLogger({ name: 'test', level: 'info', destination });
    const ids = await inSpan('request', {}, async (span) => {
      logger.info({ requestId: 'r-1' }, 'inside');
      logger.info('inside again');
      return span.spanContext();
    });
    logger.info('outside');
    const parsed = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(parsed.map((line) => [line.msg, line.trace_id, line.span_id])).toEqual([
      ['inside', ids.traceId, ids.spanId],
      ['inside again', ids.traceId, ids.spanId],
      ['outside', undefined, undefined],
    ]);
  });
});
