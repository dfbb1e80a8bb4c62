import { describe, expect, it } from '@jest/globals';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { AccountService } from '@bank/proto/bank/v1/account_service_pb';
import { GrpcCode } from '../errors/error-table.ts';
import { admissionInterceptor, createAdmissionGate, registerAdmissionMetrics } from './admission.ts';
import { CallFailure, chain, type CallHandler, type UnaryCall } from './call.ts';
import { answerOf, deadlineInterceptor, errorInterceptor, loggingInterceptor } from './interceptors.ts';

function fakeCall(clientSignal: AbortSignal = new AbortController().signal): UnaryCall {
  return {
    transport: { protocol: 'http', logMessage: 'request', outcome: (answer) => ({ status: answer ? answer.http : 200 }) },
    method: AccountService.method.getAccount,
    header: () => undefined,
    setResponseHeader: () => undefined,
    clientIp: '127.0.0.1',
    deadlineMs: undefined,
    clientSignal,
    decode: async () => ({}),
    requestId: 'r-1',
    actor: undefined,
    signal: clientSignal,
  };
}

/** A handler whose calls stay running until the test lets them finish, counting how many started. */
function heldHandler() {
  const finishers: (() => void)[] = [];
  let started = 0;
  const handler: CallHandler = async () => {
    started += 1;
    await new Promise<void>((resolve) => finishers.push(resolve));
    return 'answer';
  };
  return { handler, started: () => started, finishOne: () => finishers.shift()?.() };
}

const turns = async () => {
  for (let i = 0; i < 10; i += 1) await Promise.resolve();
};

const silent = pino({ level: 'silent' });

describe('admission control', () => {
  it('runs `maxInFlight` calls, queues `maxQueued`, and answers the next OVERLOADED (503 / UNAVAILABLE, retry after 1 s) without running it', async () => {
    const gate = createAdmissionGate({ maxInFlight: 2, maxQueued: 1, queueTimeoutMs: 60_000 });
    const held = heldHandler();
    const handle = chain([errorInterceptor(silent), deadlineInterceptor(), admissionInterceptor(gate)], held.handler);

    const admitted = [handle(fakeCall()), handle(fakeCall()), handle(fakeCall())];
    await turns();
    const refused = await handle(fakeCall()).catch((error: unknown) => error);

    expect(refused).toBeInstanceOf(CallFailure);
    expect(answerOf(refused)).toMatchObject({ code: 'OVERLOADED', http: 503, grpc: GrpcCode.UNAVAILABLE, retryAfterSeconds: 1, internal: false });
    expect(answerOf(refused).detail).toMatch(/limit of 2 calls in flight/);
    expect({ started: held.started(), inFlight: gate.inFlight, queued: gate.waiting }).toEqual({ started: 2, inFlight: 2, queued: 1 });

    held.finishOne();
    await turns();
    expect(held.started()).toBe(3);
    held.finishOne();
    held.finishOne();
    await expect(Promise.all(admitted)).resolves.toEqual(['answer', 'answer', 'answer']);
    expect({ inFlight: gate.inFlight, queued: gate.waiting }).toEqual({ inFlight: 0, queued: 0 });
  });

  it('takes a queued call off the queue when its client goes away: it never runs and frees its place', async () => {
    const gate = createAdmissionGate({ maxInFlight: 1, maxQueued: 1, queueTimeoutMs: 60_000 });
    const held = heldHandler();
    const handle = chain([errorInterceptor(silent), deadlineInterceptor(), admissionInterceptor(gate)], held.handler);
    const running = handle(fakeCall());
    const client = new AbortController();
    const queued = handle(fakeCall(client.signal)).catch((error: unknown) => error);
    await turns();
    expect(gate.waiting).toBe(1);

    client.abort();
    expect(answerOf(await queued).code).toBe('CANCELLED');
    await turns();
    expect(gate.waiting).toBe(0);
    held.finishOne();
    await running;
    expect(held.started()).toBe(1);
  });

  it('logs a shed call at info, not error: refusing it is the server working as designed', async () => {
    const lines: Record<string, unknown>[] = [];
    const logger = pino({ level: 'info' }, new Writable({ write: (chunk: Buffer, _e, done) => (lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>), done()) }));
    const gate = createAdmissionGate({ maxInFlight: 1, maxQueued: 0, queueTimeoutMs: 60_000 });
    const held = heldHandler();
    const handle = chain([loggingInterceptor(logger), errorInterceptor(logger), deadlineInterceptor(), admissionInterceptor(gate)], held.handler);
    const running = handle(fakeCall());
    await turns();
    await handle(fakeCall()).catch(() => undefined);
    held.finishOne();
    await running;
    expect(lines.map((line) => [line.level, line.errorCode])).toEqual([
      [30, 'OVERLOADED'],
      [30, undefined],
    ]);
  });

  it('shows calls in flight and queued, and calls refused by reason, in the registry', async () => {
    const registry = new Registry();
    const gate = createAdmissionGate({ maxInFlight: 1, maxQueued: 1, queueTimeoutMs: 60_000 });
    registerAdmissionMetrics(registry, gate);
    const first = await gate.acquire();
    const second = gate.acquire();
    await gate.acquire().catch(() => undefined);
    const text = await registry.metrics();
    expect(text).toContain('bank_admission_requests{state="in_flight"} 1');
    expect(text).toContain('bank_admission_requests{state="queued"} 1');
    expect(text).toContain('bank_admission_shed_total{reason="queue_full"} 1');
    expect(text).toContain('bank_admission_shed_total{reason="queue_timeout"} 0');
    first();
    (await second)();
  });
});
