import { describe, expect, it } from '@jest/globals';
import { AccountService } from '@bank/proto/bank/v1/account_service_pb';
import { UserService } from '@bank/proto/bank/v1/user_service_pb';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { Writable } from 'node:stream';
import { AccountNotFound } from '@bank/shared/errors/domain-error';
import { CallFailure, chain, type CallHandler, type Interceptor, type UnaryCall } from './call.ts';
import {
  answerOf,
  authenticationInterceptor,
  deadlineInterceptor,
  errorInterceptor,
  loggingInterceptor,
  metricsInterceptor,
  requestIdInterceptor,
} from './interceptors.ts';
import { requestIdFrom } from './request-id.ts';

function fakeCall(overrides: Partial<UnaryCall> & { headers?: Record<string, string> } = {}): UnaryCall & { responseHeaders: Record<string, string> } {
  const responseHeaders: Record<string, string> = {};
  const signal = overrides.clientSignal ?? new AbortController().signal;
  return {
    transport: { protocol: 'grpc', logMessage: 'rpc', outcome: (answer) => ({ status: answer?.code ?? 'OK' }) },
    method: AccountService.method.getAccount,
    header: (name) => overrides.headers?.[name],
    setResponseHeader: (name, value) => void (responseHeaders[name] = value),
    clientIp: '127.0.0.1',
    deadlineMs: undefined,
    clientSignal: signal,
    decode: async () => ({}),
    requestId: '',
    actor: undefined,
    signal,
    ...overrides,
    responseHeaders,
  };
}

const logSink = () => {
  const lines: Record<string, unknown>[] = [];
  const logger = pino({ level: 'info' }, new Writable({ write: (chunk: Buffer, _e, done) => (lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>), done()) }));
  return { lines, logger };
};

describe('the call chain', () => {
  it('runs interceptors outermost first and unwinds in reverse', async () => {
    const order: string[] = [];
    const step = (name: string): Interceptor => (next) => async (call) => {
      order.push(`${name} in`);
      try {
        return await next(call);
      } finally {
        order.push(`${name} out`);
      }
    };
    const handler: CallHandler = async () => (order.push('handler'), 'answer');
    await expect(chain([step('a'), step('b')], handler)(fakeCall())).resolves.toBe('answer');
    expect(order).toEqual(['a in', 'b in', 'handler', 'b out', 'a out']);
  });
});

describe('requestIdFrom', () => {
  it('keeps a sane caller id and replaces anything else with a UUID', () => {
    expect(requestIdFrom('trace-abc.123')).toBe('trace-abc.123');
    expect(requestIdFrom('has space')).toMatch(/^[0-9a-f-]{36}$/);
    expect(requestIdFrom('x'.repeat(129))).toMatch(/^[0-9a-f-]{36}$/);
    expect(requestIdFrom(undefined)).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('is set on the call and sent back as a response header; an id the transport settled on is kept', async () => {
    const fresh = fakeCall({ headers: { 'x-request-id': 'from-client' } });
    await requestIdInterceptor()(async () => undefined)(fresh);
    expect([fresh.requestId, fresh.responseHeaders['x-request-id']]).toEqual(['from-client', 'from-client']);
    const settled = fakeCall({ requestId: 'from-http-layer', headers: { 'x-request-id': 'ignored' } });
    await requestIdInterceptor()(async () => undefined)(settled);
    expect(settled.responseHeaders['x-request-id']).toBe('from-http-layer');
  });
});

describe('errorInterceptor', () => {
  it('turns a domain error into a CallFailure with the mapped answer, logging nothing', async () => {
    const { lines, logger } = logSink();
    const failure = await errorInterceptor(logger)(async () => {
      throw new AccountNotFound(7n);
    })(fakeCall()).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(CallFailure);
    expect((failure as CallFailure).answer).toMatchObject({ code: 'ACCOUNT_NOT_FOUND', http: 404, grpc: 5 });
    expect(lines).toEqual([]);
  });

  it('answers anything else as INTERNAL without its message, and logs it with the request id', async () => {
    const { lines, logger } = logSink();
    const failure = await errorInterceptor(logger)(async () => {
      throw new TypeError('secret internals');
    })(fakeCall({ requestId: 'req-9' })).catch((error: unknown) => error);
    expect(answerOf(failure)).toMatchObject({ code: 'INTERNAL', http: 500, detail: 'internal error' });
    expect(lines).toEqual([expect.objectContaining({ msg: 'internal error', requestId: 'req-9', method: 'bank.v1.AccountService.GetAccount' })]);
  });
});

describe('deadlineInterceptor', () => {
  it('refuses a call whose deadline already passed without running it', async () => {
    let ran = false;
    const run = deadlineInterceptor()(async () => (ran = true));
    await expect(run(fakeCall({ deadlineMs: 0 }))).rejects.toMatchObject({ code: 'DEADLINE_EXCEEDED' });
    expect(ran).toBe(false);
  });

  it('refuses a call whose client is already gone without running it', async () => {
    let ran = false;
    const gone = new AbortController();
    gone.abort();
    await expect(deadlineInterceptor()(async () => (ran = true))(fakeCall({ clientSignal: gone.signal }))).rejects.toMatchObject({ code: 'CANCELLED' });
    expect(ran).toBe(false);
  });

  it('aborts the signal it hands down with DeadlineExceeded when the deadline passes, and answers at once', async () => {
    let seen: AbortSignal | undefined;
    const never = deadlineInterceptor()(async (call) => {
      seen = call.signal;
      return new Promise(() => undefined);
    });
    await expect(never(fakeCall({ deadlineMs: 20 }))).rejects.toMatchObject({ code: 'DEADLINE_EXCEEDED' });
    expect(seen?.aborted).toBe(true);
    expect(seen?.reason).toMatchObject({ code: 'DEADLINE_EXCEEDED' });
  });

  it('aborts the signal with RequestCancelled when the client goes away mid-call', async () => {
    const client = new AbortController();
    let seen: AbortSignal | undefined;
    const pending = deadlineInterceptor()(async (call) => {
      seen = call.signal;
      client.abort();
      return new Promise(() => undefined);
    })(fakeCall({ clientSignal: client.signal }));
    await expect(pending).rejects.toMatchObject({ code: 'CANCELLED' });
    expect(seen?.reason).toMatchObject({ code: 'CANCELLED' });
  });
});

describe('authenticationInterceptor', () => {
  const verify = async (token: string) => {
    if (token !== 'good') throw new AccountNotFound('never');
    return { username: 'alice', role: 'depositor' as const };
  };

  it('lets anonymous methods through without verifying anything', async () => {
    let verified = 0;
    const call = fakeCall({ method: UserService.method.createUser });
    await authenticationInterceptor(async (t) => (verified++, verify(t)))(async () => undefined)(call);
    expect([verified, call.actor]).toEqual([0, undefined]);
  });

  it('puts the verified actor on the call, and refuses a missing or malformed bearer token', async () => {
    const interceptor = authenticationInterceptor(verify)(async (call) => call.actor);
    await expect(interceptor(fakeCall({ headers: { authorization: 'Bearer good' } }))).resolves.toEqual({ username: 'alice', role: 'depositor' });
    await expect(interceptor(fakeCall())).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
    await expect(interceptor(fakeCall({ headers: { authorization: 'Basic abc' } }))).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
  });
});

describe('loggingInterceptor and metricsInterceptor', () => {
  it('write one line and one count per call with the outcome the transport names', async () => {
    const { lines, logger } = logSink();
    const registry = new Registry();
    const run = chain([loggingInterceptor(logger), metricsInterceptor(registry), errorInterceptor(logger)], async () => {
      throw new AccountNotFound(1n);
    });
    await expect(run(fakeCall({ requestId: 'req-1', actor: { username: 'bob', role: 'depositor' } }))).rejects.toBeInstanceOf(CallFailure);
    expect(lines).toEqual([expect.objectContaining({ msg: 'rpc', level: 30, requestId: 'req-1', user: 'bob', status: 'ACCOUNT_NOT_FOUND', errorCode: 'ACCOUNT_NOT_FOUND' })]);
    expect(await registry.metrics()).toMatch(/grpc_server_handled_total\{protocol="grpc",method="bank.v1.AccountService.GetAccount",code="NOT_FOUND"\} 1/);
  });
});
