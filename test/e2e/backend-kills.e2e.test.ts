// PostgreSQL backends killed while the servers' pool is busy, and a client retry that races its
// still-running original. In both, money must move exactly once per idempotency key: every
// acknowledged key is one transfer, no refused key moved money, the ledger invariants hold, and no
// answer is a 5xx other than 503 (gRPC: INTERNAL / UNKNOWN / DATA_LOSS).
//
// The API and gRPC servers here share pools the test owns, tagged by application_name, so the
// killer reaches exactly their backends, and `pg_sleep` queries on the same pools keep
// connections busy while the transfers run.
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import pg from 'pg';
import { sql } from 'slonik';
import { z } from 'zod';
import { startApiServer, type ApiServer } from '@bank/api/api-server';
import { startGrpcServer, type GrpcServer } from '@bank/grpc/grpc-server';
import { AccountService } from '@bank/proto/bank/v1/account_service_pb';
import { TransferService } from '@bank/proto/bank/v1/transfer_service_pb';
import { createDatabasePool, type DatabasePool } from '@bank/shared/db/pool';
import { runConcurrently } from '../concurrency.ts';
import { holdAccountLock, idemKey } from '../factories.ts';
import { checkLedgerInvariants } from '../ledger-invariants.ts';
import { TEST_DATABASE_URL } from '../services.ts';
import { signUpAndLogIn, type LoggedInUser } from './flows.ts';
import { startStack, type Stack } from './harness.ts';
import { CallFailed, grpcTransport, httpTransport, type Transport } from './transports.ts';

const APP = { http: 'bank-kills-http', grpc: 'bank-kills-grpc' } as const;
const POOL_SIZE = 4;

let stack: Stack;
let admin: pg.Client;
const pools: DatabasePool[] = [];
let api: ApiServer;
let grpcServer: GrpcServer;
let http: Transport;
let rpc: Transport;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function tagged(url: string, applicationName: string): string {
  const u = new URL(url);
  u.searchParams.set('application_name', applicationName);
  return u.toString();
}

/** Terminates the backends of `applicationNames` now running (or waiting in) a query that matches `like`; answers how many. */
async function kill(applicationNames: readonly string[], like: string): Promise<number> {
  const result = await admin.query<{ n: number }>(
    `SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity
      WHERE datname = $1 AND application_name = ANY($2) AND state = 'active' AND query LIKE $3`,
    [stack.db.name, applicationNames, like],
  );
  return result.rows[0]?.n ?? 0;
}

/** Waits until a backend of `applicationName` waits on a lock inside ledger_apply(). */
async function waitForBlockedMove(applicationName: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const { rows } = await admin.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_stat_activity
        WHERE datname = $1 AND application_name = $2 AND wait_event_type = 'Lock' AND query LIKE '%ledger_apply%'`,
      [stack.db.name, applicationName],
    );
    if ((rows[0]?.n ?? 0) > 0) return;
    if (Date.now() > deadline) throw new Error(`no ledger_apply() of ${applicationName} waits on a lock`);
    await sleep(20);
  }
}

type Account = { user: LoggedInUser; id: bigint };

async function fundedAccounts(count: number, currency: string, amount: bigint): Promise<Account[]> {
  const users = await Promise.all(Array.from({ length: count }, () => signUpAndLogIn(http, stack.smtp)));
  return Promise.all(
    users.map(async (user) => {
      const account = await http.call(AccountService, 'openAccount', { currency }, { token: user.accessToken });
      await http.call(AccountService, 'deposit', { accountId: account.id, amount, idempotencyKey: idemKey() }, { token: user.accessToken });
      return { user, id: account.id };
    }),
  );
}

type Outcome = { kind: 'moved'; transferId: bigint; replayed: boolean } | { kind: 'refused'; code: string } | { kind: 'unavailable' };

/** A 5xx that is not "unavailable, retry": HTTP 500..599 but 503; gRPC INTERNAL, UNKNOWN, DATA_LOSS. */
const isServerFault = (error: CallFailed) =>
  error.transport === 'http' ? error.status >= 500 && error.status !== 503 : [grpc.status.INTERNAL, grpc.status.UNKNOWN, grpc.status.DATA_LOSS].includes(error.status);
const isUnavailable = (error: CallFailed) => (error.transport === 'http' ? error.status === 503 : error.status === grpc.status.UNAVAILABLE);

const serverFaults: string[] = [];
let unavailableAnswers = 0;

/** One createTransfer; a 503 / UNAVAILABLE is `unavailable`, any other refusal `refused`; a server fault is recorded. */
async function transferOnce(t: Transport, from: Account, to: Account, amount: bigint, key: string): Promise<Outcome> {
  try {
    const answer = await t.call(
      TransferService,
      'createTransfer',
      { fromAccountId: from.id, toAccountId: to.id, amount, currency: 'GBP', idempotencyKey: key },
      { token: from.user.accessToken },
    );
    return { kind: 'moved', transferId: answer.transfer!.id, replayed: answer.replayed };
  } catch (error) {
    if (!(error instanceof CallFailed)) throw error;
    if (isServerFault(error)) serverFaults.push(error.message);
    if (!isUnavailable(error)) return { kind: 'refused', code: error.code };
    unavailableAnswers += 1;
    return { kind: 'unavailable' };
  }
}

/** The client's retry loop: the same key and body again after every 503 / UNAVAILABLE, up to `attempts`. */
async function transferWithRetries(t: Transport, from: Account, to: Account, amount: bigint, key: string, attempts = 8): Promise<Outcome> {
  let outcome: Outcome = { kind: 'unavailable' };
  for (let attempt = 0; attempt < attempts && outcome.kind === 'unavailable'; attempt += 1) {
    if (attempt > 0) await sleep(50 * attempt);
    outcome = await transferOnce(t, from, to, amount, key);
  }
  return outcome;
}

/** The transfers stored for (username, key): the idempotency record's transfer, if any. */
async function transfersForKey(username: string, key: string): Promise<bigint[]> {
  return stack.db.pool.anyFirst(sql.type(z.object({ transfer_id: z.bigint() }))`
    SELECT transfer_id FROM idempotency_keys WHERE username = ${username} AND key = ${key} AND transfer_id IS NOT NULL`) as Promise<bigint[]>;
}

const movedAmong = (ids: readonly bigint[]) =>
  stack.db.pool.oneFirst(sql.type(z.object({ n: z.number() }))`
    SELECT count(*)::int AS n FROM transfers
     WHERE from_account_id = ANY(${sql.array(ids.map(String), 'int8')}) AND to_account_id = ANY(${sql.array(ids.map(String), 'int8')})`);

beforeAll(async () => {
  stack = await startStack();
  admin = new pg.Client({ connectionString: TEST_DATABASE_URL });
  await admin.connect();
  const config = { ...stack.config, HTTP_PORT: 0, GRPC_PORT: 0, METRICS_PORT: 0 };
  const httpPool = await createDatabasePool(tagged(stack.db.url, APP.http), { maximumPoolSize: POOL_SIZE });
  const grpcPool = await createDatabasePool(tagged(stack.db.url, APP.grpc), { maximumPoolSize: POOL_SIZE });
  pools.push(httpPool, grpcPool);
  api = await startApiServer(config, { logger: stack.logger, host: '127.0.0.1', pool: httpPool });
  grpcServer = await startGrpcServer(config, { logger: stack.logger, host: '127.0.0.1', pool: grpcPool });
  http = httpTransport(api.url);
  rpc = grpcTransport(grpcServer.address);
});

afterAll(async () => {
  rpc?.close();
  await api?.close();
  await grpcServer?.close();
  for (const pool of pools) await pool.end();
  await admin?.end();
  await stack?.stop();
});

describe('backends killed under load', () => {
  it('a transfer storm over both edges while backends in ledger_apply() and pg_sleep() are killed: every key moves money at most once', async () => {
    const accounts = await fundedAccounts(4, 'GBP', 100_000n);
    const TRANSFERS = 240;
    let stormDone = false;
    const killed = { moves: 0, sleeps: 0 };

    // pg_sleep() holders take half of each pool's connections, again and again.
    const holders = pools.flatMap((pool) =>
      Array.from({ length: POOL_SIZE / 2 }, async () => {
        while (!stormDone) await pool.query(sql.unsafe`SELECT pg_sleep(0.2)`).catch(() => undefined);
      }),
    );
    // Now and then an account stays locked for a moment, so batches wait inside ledger_apply().
    const locker = (async () => {
      for (let i = 0; !stormDone; i += 1) {
        const lock = await holdAccountLock(stack.db.pool, accounts[i % accounts.length]!.id);
        await sleep(150);
        await lock.release();
        await sleep(100);
      }
    })();
    // The killer: every 300 ms, each backend of the two servers' pools found inside ledger_apply() or pg_sleep().
    const killer = (async () => {
      while (!stormDone) {
        killed.moves += await kill(Object.values(APP), '%ledger_apply%');
        killed.sleeps += await kill(Object.values(APP), '%pg_sleep%');
        await sleep(300);
      }
    })();

    const keys = Array.from({ length: TRANSFERS }, (_, i) => `kill-${i}-${idemKey()}`);
    const plan = (i: number) => ({ from: accounts[i % 4]!, to: accounts[(i + 1 + (i % 3)) % 4]!, amount: BigInt(1 + (i % 50)) });
    const results = await runConcurrently(TRANSFERS, 24, async (i) => {
      const { from, to, amount } = plan(i);
      return transferWithRetries(i % 2 === 0 ? http : rpc, from, to, amount, keys[i]!);
    });
    stormDone = true;
    await Promise.all([...holders, locker, killer]);
    const tally = (kind: Outcome['kind']) => results.filter((r) => r.status === 'fulfilled' && r.value.kind === kind).length;
    console.log(
      `backend kills under load: ${killed.moves} backends killed inside ledger_apply(), ${killed.sleeps} inside pg_sleep(); ` +
        `${tally('moved')} moved, ${tally('refused')} refused, ${tally('unavailable')} still unavailable after the client's retries, ${unavailableAnswers} 503s in all`,
    );
    expect(killed.moves).toBeGreaterThan(0);
    expect(killed.sleeps).toBeGreaterThan(0);

    expect(results.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason))).toEqual([]);
    const outcomes = results.map((r) => (r as PromiseFulfilledResult<Outcome>).value);
    // A key still unanswered after the client's retries is asked once more, now that the kills stopped.
    for (const [i, outcome] of outcomes.entries()) {
      if (outcome.kind !== 'unavailable') continue;
      const { from, to, amount } = plan(i);
      outcomes[i] = await transferOnce(i % 2 === 0 ? http : rpc, from, to, amount, keys[i]!);
    }
    expect(serverFaults).toEqual([]);
    expect(outcomes.filter((o) => o.kind === 'unavailable')).toEqual([]);

    const acknowledged: bigint[] = [];
    for (const [i, outcome] of outcomes.entries()) {
      const stored = await transfersForKey(plan(i).from.user.username, keys[i]!);
      if (outcome.kind === 'moved') {
        expect(stored).toEqual([outcome.transferId]);
        acknowledged.push(outcome.transferId);
      } else {
        expect({ key: keys[i], stored }).toEqual({ key: keys[i], stored: [] });
      }
    }
    expect(new Set(acknowledged.map(String)).size).toBe(acknowledged.length);
    expect(await movedAmong(accounts.map((a) => a.id))).toBe(acknowledged.length);
    expect(await checkLedgerInvariants(stack.db.pool, { acknowledged })).toEqual([]);
  }, 180_000);
});

describe('a retry that races its still-running original', () => {
  /** The original's client gives up while its transfer waits on a lock: over gRPC by deadline, over HTTP by closing the request. */
  async function giveUp(via: 'http' | 'grpc', from: Account, to: Account, amount: bigint, key: string): Promise<string> {
    if (via === 'grpc') {
      const failed = await rpc
        .call(TransferService, 'createTransfer', { fromAccountId: from.id, toAccountId: to.id, amount, currency: 'GBP', idempotencyKey: key }, { token: from.user.accessToken, deadlineMs: 300 })
        .then(
          () => 'answered',
          (error: unknown) => (error instanceof CallFailed ? error.code : String(error)),
        );
      return failed;
    }
    const response = await fetch(`${api.url}/v1/transfers`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${from.user.accessToken}`, 'idempotency-key': key },
      body: JSON.stringify({ from_account_id: String(from.id), to_account_id: String(to.id), amount: String(amount), currency: 'GBP' }),
      signal: AbortSignal.timeout(300),
    }).then(
      (r) => `answered ${r.status}`,
      (error: unknown) => (error as Error).name,
    );
    return response;
  }

  it.each([
    ['grpc', 'commits after its client gave up'],
    ['http', 'commits after its client gave up'],
    ['grpc', 'is killed after its client gave up'],
    ['http', 'is killed after its client gave up'],
  ] as const)('original over %s %s: the retries get the replay or a clean 409/503, one transfer in all', async (via, fate) => {
    const [from, to] = await fundedAccounts(2, 'GBP', 10_000n);
    const key = `race-${idemKey()}`;
    const amount = 1_234n;
    const lock = await holdAccountLock(stack.db.pool, from!.id);
    let released = false;
    try {
      // The original reaches the database and waits on the account lock; its client gives up.
      const original = giveUp(via, from!, to!, amount, key);
      await waitForBlockedMove(APP[via]);
      const originalAnswer = await original;
      expect(originalAnswer).toMatch(/DEADLINE_EXCEEDED|TimeoutError|AbortError/);
      // The client retries, on both edges, while the original still runs.
      const retries = [http, rpc].map((t) => transferOnce(t, from!, to!, amount, key));
      await sleep(200);
      if (fate === 'is killed after its client gave up') expect(await kill([APP[via]], '%ledger_apply%')).toBeGreaterThan(0);
      await sleep(100);
      await lock.release();
      released = true;
      const answers = await Promise.all(retries);
      console.log(`race (original over ${via} ${fate}): original ${originalAnswer}; retries ${JSON.stringify(answers, (_, v: unknown) => (typeof v === 'bigint' ? String(v) : v))}`);

      const stored = await transfersForKey(from!.user.username, key);
      expect(stored).toHaveLength(1);
      for (const answer of answers) {
        if (answer.kind === 'moved') expect(answer.transferId).toBe(stored[0]);
        else if (answer.kind === 'refused') expect(answer.code).toMatch(/IDEMPOTENCY|CONFLICT|ABORTED|ALREADY_EXISTS/);
      }
      // A retry after everything settled is the replay of that one transfer.
      const late = await transferOnce(http, from!, to!, amount, key);
      expect(late).toEqual({ kind: 'moved', transferId: stored[0], replayed: true });
      expect(await movedAmong([from!.id, to!.id])).toBe(1);
      const balance = await http.call(AccountService, 'getAccount', { accountId: from!.id }, { token: from!.user.accessToken });
      expect(balance.balance).toBe(10_000n - amount);
      expect(serverFaults).toEqual([]);
      expect(await checkLedgerInvariants(stack.db.pool, { acknowledged: stored })).toEqual([]);
    } finally {
      if (!released) await lock.release();
    }
  }, 60_000);
});
