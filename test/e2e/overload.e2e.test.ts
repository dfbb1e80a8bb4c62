// Load shedding through the real servers, decided by counts, never by timing. The database pool
// is held busy by calls blocked on a table lock the test holds; admission is filled with calls a
// test interceptor holds after authentication. The call past each queue is answered at once,
// 503 with Retry-After / UNAVAILABLE with the reason OVERLOADED; the health endpoints answer
// meanwhile; once the work drains every call succeeds again. A money call shed at admission moved
// no money; one that finds the pool's queue full is not refused: it waits ahead of the reads and
// commits once.
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { service as healthService } from 'grpc-health-check';
import { sql } from 'slonik';
import { z } from 'zod';
import { AccountService } from '@bank/proto/bank/v1/account_service_pb';
import { TransferService } from '@bank/proto/bank/v1/transfer_service_pb';
import { startGrpcServer, type GrpcServer } from '@bank/grpc/grpc-server';
import type { Interceptor } from '@bank/edge/call/call';
import { idemKey } from '../factories.ts';
import { checkLedgerInvariants } from '../ledger-invariants.ts';
import { openAccount, signUpAndLogIn, type LoggedInUser } from './flows.ts';
import { startStack, type Stack } from './harness.ts';
import { failure, grpcTransport, httpTransport, type Transport } from './transports.ts';

// Two connections and one more call waiting for one per server; four calls in flight and two
// waiting for admission. In-flight room above the pool's (2 + 1) lets the pool's own limit show.
const LIMITS = {
  DATABASE_POOL_SIZE: '2',
  DATABASE_POOL_QUEUE_LIMIT: '1',
  MAX_INFLIGHT_REQUESTS: '4',
  MAX_QUEUED_REQUESTS: '2',
  // Long enough never to decide anything here: the tests are about counts.
  DATABASE_POOL_WAIT_TIMEOUT_MS: '60000',
  REQUEST_QUEUE_TIMEOUT_MS: '60000',
  // Authenticated calls read no session once seen, so the only database work is the call's own.
  SESSION_CACHE_TTL_MS: '60000',
};

/** Calls carrying `x-test-hold` wait after authentication until the test lets each one go, in arrival order. */
const held: (() => void)[] = [];
const holdInterceptor: Interceptor = (next) => async (call) => {
  if (call.header('x-test-hold')) await new Promise<void>((resolve) => held.push(resolve));
  return next(call);
};

let stack: Stack;
/** Our own gRPC server: its health refresh (a readiness query) runs only at start, so it never joins a queue under test. */
let grpcServer: GrpcServer;
let http: Transport;
let rpc: Transport;
let alice: LoggedInUser;
let from: bigint;
let to: bigint;

beforeAll(async () => {
  stack = await startStack({ env: LIMITS, interceptors: [holdInterceptor] });
  grpcServer = await startGrpcServer(
    { ...stack.config, GRPC_PORT: 0, METRICS_PORT: 0 },
    { host: '127.0.0.1', logger: stack.logger, healthIntervalMs: 3_600_000, interceptors: [holdInterceptor] },
  );
  http = httpTransport(stack.api.url);
  rpc = grpcTransport(grpcServer.address);
  alice = await signUpAndLogIn(http, stack.smtp);
  from = await openAccount(http, alice, 'USD', 10_000n);
  to = await openAccount(http, await signUpAndLogIn(http, stack.smtp), 'USD');
  // Each server has now seen the session and the token: the calls below only read accounts.
  await rpc.call(AccountService, 'getAccount', { accountId: from }, { token: alice.accessToken });
});
afterAll(async () => {
  rpc?.close();
  await grpcServer?.close();
  await stack?.stop();
});

const auth = () => ({ authorization: `Bearer ${alice.accessToken}` });
const getAccountHttp = (headers: Record<string, string> = {}) => fetch(`${stack.api.url}/v1/accounts/${from}`, { headers: { ...auth(), ...headers } });
const getAccountRpc = (metadata: Record<string, string> = {}) => rpc.call(AccountService, 'getAccount', { accountId: from }, { token: alice.accessToken, metadata });
const transferHttp = (key: string) =>
  fetch(`${stack.api.url}/v1/transfers`, {
    method: 'POST',
    headers: { ...auth(), 'content-type': 'application/json', 'idempotency-key': key },
    body: JSON.stringify({ fromAccountId: String(from), toAccountId: String(to), amount: '100', currency: 'USD' }),
  });
const transferRpc = (key: string) =>
  rpc.call(TransferService, 'createTransfer', { fromAccountId: from, toAccountId: to, amount: 100n, currency: 'USD', idempotencyKey: key }, { token: alice.accessToken });

/** One sample of a Prometheus text exposition: the value of `name` with every label in `labels`. */
async function sample(metricsUrl: string, name: string, labels: Record<string, string>): Promise<number> {
  const text = await (await fetch(metricsUrl)).text();
  const wanted = Object.entries(labels).map(([key, value]) => `${key}="${value}"`);
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && wanted.every((w) => l.includes(w)));
  return line === undefined ? NaN : Number(line.split(' ').at(-1));
}

/** Polls `read` until `done` holds for it (a count the servers report, not a time); fails saying what it last saw. */
async function until<T>(what: string, read: () => Promise<T>, done: (value: T) => boolean): Promise<void> {
  let last: T | undefined;
  for (let i = 0; i < 500; i += 1) {
    last = await read();
    if (done(last)) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`never reached: ${what} (last seen ${JSON.stringify(last)})`);
}

/** ACCESS EXCLUSIVE on accounts until released: every call that reads an account waits, holding its connection. */
async function lockAccounts(): Promise<{ release(): Promise<void> }> {
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  let locked!: () => void;
  const isLocked = new Promise<void>((resolve) => (locked = resolve));
  const holder = stack.db.pool.transaction(async (tx) => {
    await tx.query(sql.unsafe`LOCK TABLE accounts IN ACCESS EXCLUSIVE MODE`);
    locked();
    await released;
  });
  await isLocked;
  return {
    async release() {
      release();
      await holder;
    },
  };
}

const movedBy = (key: string) =>
  stack.db.pool.exists(sql.type(z.object({ moved: z.boolean() }))`SELECT true AS moved FROM idempotency_keys WHERE key = ${key} AND transfer_id IS NOT NULL`);
const balanceOf = (id: bigint) => stack.db.pool.oneFirst(sql.type(z.object({ balance: z.bigint() }))`SELECT balance FROM accounts WHERE id = ${id}`);
const healthz = async (url: string) => (await fetch(`${url}/healthz`)).status;

/** grpc.health.v1 Check of the whole server, as Kubernetes' gRPC probe asks it. */
function grpcHealth(address: string): Promise<string> {
  const Client = grpc.makeGenericClientConstructor(healthService as grpc.ServiceDefinition, 'Health');
  const client = new Client(address, grpc.credentials.createInsecure()) as grpc.Client & Record<string, (...args: unknown[]) => void>;
  return new Promise((resolve, reject) => {
    client.check!({ service: '' }, (error: grpc.ServiceError | null, response: { status: string }) => {
      client.close();
      if (error) reject(error);
      else resolve(response.status);
    });
  });
}

/** Lets the held calls go one at a time, each finished before the next: at most one reaches the small pool at once. */
async function releaseHeldOneByOne(calls: Promise<unknown>[]): Promise<PromiseSettledResult<unknown>[]> {
  const outcomes: PromiseSettledResult<unknown>[] = [];
  for (const call of calls) {
    await until('a held call waiting to be let go', async () => held.length, (n) => n > 0);
    held.shift()!();
    outcomes.push(...(await Promise.allSettled([call])));
  }
  return outcomes;
}

describe('the database pool held busy', () => {
  it('HTTP: the call past the pool queue is answered 503 OVERLOADED with Retry-After, /healthz answers, a transfer waits for a connection instead of being refused, and all works once the pool frees', async () => {
    const metrics = `http://127.0.0.1:${stack.api.metricsPort}/metrics`;
    const [fromBefore, toBefore] = [await balanceOf(from), await balanceOf(to)];
    const lock = await lockAccounts();
    let blocked: Promise<Response>[] = [];
    let transfer: Promise<Response> | undefined;
    try {
      blocked = [getAccountHttp(), getAccountHttp(), getAccountHttp()];
      await until(
        'two connections held and one call waiting for one',
        async () => [await sample(metrics, 'bank_db_pool_connections', { state: 'acquired' }), await sample(metrics, 'bank_db_pool_connections', { state: 'waiting' })],
        ([acquired, waiting]) => acquired === 2 && waiting === 1,
      );

      const shed = await getAccountHttp();
      expect(shed.status).toBe(503);
      expect(shed.headers.get('retry-after')).toBe('1');
      expect(shed.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(await shed.json()).toMatchObject({ status: 503, code: 'OVERLOADED', detail: expect.stringMatching(/every database connection is in use/) });
      expect(await sample(metrics, 'bank_db_pool_shed_total', { reason: 'queue_full' })).toBe(1);

      // A batch of money movements is never refused for a full queue: it waits ahead of the read.
      transfer = transferHttp(idemKey());
      await until('the transfer waiting for a connection too', () => sample(metrics, 'bank_db_pool_connections', { state: 'waiting' }), (waiting) => waiting === 2);

      expect(await healthz(stack.api.url)).toBe(200);
      expect(await healthz(`http://127.0.0.1:${stack.grpc.metricsPort}`)).toBe(200);
    } finally {
      await lock.release();
    }

    expect((await transfer)?.status).toBe(201);
    expect((await Promise.all(blocked)).map((r) => r.status)).toEqual([200, 200, 200]);
    expect((await getAccountHttp()).status).toBe(200);
    expect([await balanceOf(from), await balanceOf(to)]).toEqual([fromBefore - 100n, toBefore + 100n]);
    expect(await checkLedgerInvariants(stack.db.pool)).toEqual([]);
  });

  it('gRPC: the call past the pool queue is UNAVAILABLE with the reason OVERLOADED, health answers, a CreateTransfer waits for a connection instead of being refused, and all works once the pool frees', async () => {
    const metrics = `http://127.0.0.1:${grpcServer.metricsPort}/metrics`;
    const [fromBefore, toBefore] = [await balanceOf(from), await balanceOf(to)];
    const lock = await lockAccounts();
    let blocked: Promise<unknown>[] = [];
    let transfer: Promise<unknown> | undefined;
    try {
      blocked = [getAccountRpc(), getAccountRpc(), getAccountRpc()];
      await until(
        'two connections held and one call waiting for one',
        async () => [await sample(metrics, 'bank_db_pool_connections', { state: 'acquired' }), await sample(metrics, 'bank_db_pool_connections', { state: 'waiting' })],
        ([acquired, waiting]) => acquired === 2 && waiting === 1,
      );

      expect(await failure(getAccountRpc())).toMatchObject({ status: grpc.status.UNAVAILABLE, code: 'OVERLOADED' });
      transfer = transferRpc(idemKey());
      await until('the transfer waiting for a connection too', () => sample(metrics, 'bank_db_pool_connections', { state: 'waiting' }), (waiting) => waiting === 2);
      expect(await healthz(metrics.replace('/metrics', ''))).toBe(200);
      expect(await grpcHealth(grpcServer.address)).toBe('SERVING');
    } finally {
      await lock.release();
    }

    expect(await transfer).toMatchObject({ replayed: false });
    await Promise.all(blocked);
    await getAccountRpc();
    expect([await balanceOf(from), await balanceOf(to)]).toEqual([fromBefore - 100n, toBefore + 100n]);
    expect(await checkLedgerInvariants(stack.db.pool)).toEqual([]);
  });
});

describe('admission control', () => {
  it('HTTP: with every in-flight place taken and the queue full, the next call is answered 503 OVERLOADED with Retry-After at once and a shed transfer moves no money; health answers; then everything succeeds', async () => {
    const metrics = `http://127.0.0.1:${stack.api.metricsPort}/metrics`;
    const key = idemKey();
    const [fromBefore, toBefore] = [await balanceOf(from), await balanceOf(to)];
    const calls = Array.from({ length: 6 }, () => getAccountHttp({ 'x-test-hold': '1' }));
    await until(
      'four calls in flight and two queued',
      async () => [await sample(metrics, 'bank_admission_requests', { state: 'in_flight' }), await sample(metrics, 'bank_admission_requests', { state: 'queued' })],
      ([inFlight, queued]) => inFlight === 4 && queued === 2,
    );

    const shed = await getAccountHttp();
    expect(shed.status).toBe(503);
    expect(shed.headers.get('retry-after')).toBe('1');
    expect(shed.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(await shed.json()).toMatchObject({ status: 503, code: 'OVERLOADED', detail: expect.stringMatching(/limit of 4 calls in flight/) });
    const shedMoney = await transferHttp(key);
    expect([shedMoney.status, shedMoney.headers.get('retry-after'), ((await shedMoney.json()) as { code: string }).code]).toEqual([503, '1', 'OVERLOADED']);
    expect(await healthz(stack.api.url)).toBe(200);
    expect((await fetch(`${stack.api.url}/readyz`)).status).toBe(200);
    expect(await sample(metrics, 'bank_admission_shed_total', { reason: 'queue_full' })).toBe(2);

    const outcomes = await releaseHeldOneByOne(calls);
    expect(outcomes.map((o) => (o.status === 'fulfilled' ? (o.value as Response).status : 'rejected'))).toEqual([200, 200, 200, 200, 200, 200]);
    expect(await movedBy(key)).toBe(false);
    expect([await balanceOf(from), await balanceOf(to)]).toEqual([fromBefore, toBefore]);

    const retried = await transferHttp(key);
    expect(retried.status).toBe(201);
    expect(await retried.json()).toMatchObject({ replayed: false });
    expect([await balanceOf(from), await balanceOf(to)]).toEqual([fromBefore - 100n, toBefore + 100n]);
    expect(await checkLedgerInvariants(stack.db.pool)).toEqual([]);
  });

  it('gRPC: with every in-flight place taken and the queue full, the next call is UNAVAILABLE with the reason OVERLOADED and a shed CreateTransfer moves no money; health answers; then everything succeeds', async () => {
    const metrics = `http://127.0.0.1:${grpcServer.metricsPort}/metrics`;
    const key = idemKey();
    const [fromBefore, toBefore] = [await balanceOf(from), await balanceOf(to)];
    const calls = Array.from({ length: 6 }, () => getAccountRpc({ 'x-test-hold': '1' }));
    await until(
      'four calls in flight and two queued',
      async () => [await sample(metrics, 'bank_admission_requests', { state: 'in_flight' }), await sample(metrics, 'bank_admission_requests', { state: 'queued' })],
      ([inFlight, queued]) => inFlight === 4 && queued === 2,
    );

    expect(await failure(getAccountRpc())).toMatchObject({ status: grpc.status.UNAVAILABLE, code: 'OVERLOADED' });
    expect(await failure(transferRpc(key))).toMatchObject({ status: grpc.status.UNAVAILABLE, code: 'OVERLOADED' });
    expect(await healthz(metrics.replace('/metrics', ''))).toBe(200);
    expect((await fetch(metrics.replace('/metrics', '/readyz'))).status).toBe(200);
    expect(await grpcHealth(grpcServer.address)).toBe('SERVING');
    expect(await sample(metrics, 'bank_admission_shed_total', { reason: 'queue_full' })).toBe(2);

    const outcomes = await releaseHeldOneByOne(calls);
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled', 'fulfilled', 'fulfilled', 'fulfilled']);
    expect(await movedBy(key)).toBe(false);
    expect([await balanceOf(from), await balanceOf(to)]).toEqual([fromBefore, toBefore]);

    expect(await transferRpc(key)).toMatchObject({ replayed: false });
    expect([await balanceOf(from), await balanceOf(to)]).toEqual([fromBefore - 100n, toBefore + 100n]);
    expect(await checkLedgerInvariants(stack.db.pool)).toEqual([]);
  });
});
