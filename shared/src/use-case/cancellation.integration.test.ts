// A use case called with an already-aborted signal must not touch PostgreSQL or Redis: the client
// is gone or its deadline passed, so every query would be work nobody reads. Proved by counting
// the queries the real pool executes (a Slonik interceptor) and the Redis-backed rate-limit calls.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createTestDatabase, type TestDatabase } from '../../../test/db.ts';
import { createUser, idemKey } from '../../../test/factories.ts';
import { TEST_REDIS_URL } from '../../../test/services.ts';
import type { Actor } from '../auth/actor.ts';
import { PasswordHasher } from '../auth/password.ts';
import { RateLimiter } from '../auth/rate-limiter.ts';
import { SessionService } from '../auth/session.service.ts';
import { generatePasetoKeyPair, TokenMaker } from '../auth/token-maker.ts';
import { createDatabasePool, type DatabasePool } from '../db/pool.ts';
import { DeadlineExceeded, RequestCancelled } from '../errors/domain-error.ts';
import { LedgerService } from '../ledger/ledger.service.ts';
import { OutboxPublisher } from '../outbox/outbox-publisher.ts';
import { createEmailQueue, type EmailQueue } from '../queue/email-queue.ts';
import { createRedis, type Redis } from '../redis/redis.ts';
import { UserService } from '../users/user.service.ts';

const run = randomBytes(4).toString('hex');
const SESSION_ID = '00000000-0000-4000-8000-000000000000';

/** The real hasher, counting the bcrypt work it is asked for. */
class CountingPasswordHasher extends PasswordHasher {
  calls = 0;
  override async hash(password: string): Promise<string> {
    this.calls += 1;
    return super.hash(password);
  }
  override async verify(password: string, hash: string): Promise<boolean> {
    this.calls += 1;
    return super.verify(password, hash);
  }
}

/** The real rate limiter, counting its trips to Redis. */
class CountingRateLimiter extends RateLimiter {
  calls = 0;
  override async consume(keys: readonly string[]): Promise<void> {
    this.calls += 1;
    return super.consume(keys);
  }
  override async refund(keys: readonly string[]): Promise<void> {
    this.calls += 1;
    return super.refund(keys);
  }
}

let db: TestDatabase;
let counted: DatabasePool;
let queries = 0;
let redis: Redis;
let queue: EmailQueue;
let tokens: TokenMaker;
let passwords: CountingPasswordHasher;
let rateLimiter: CountingRateLimiter;
let ledger: LedgerService;
let users: UserService;
let sessions: SessionService;

beforeAll(async () => {
  db = await createTestDatabase();
  counted = await createDatabasePool(db.url, {
    maximumPoolSize: 2,
    interceptors: [{ name: 'count-queries', beforeQueryExecution: () => ((queries += 1), null) }],
  });
  redis = createRedis(TEST_REDIS_URL);
  queue = createEmailQueue(redis, { name: `test-cancel-${run}` });
  tokens = await TokenMaker.create({ secretKey: (await generatePasetoKeyPair()).secretKey });
  passwords = new CountingPasswordHasher({ cost: 4 });
  rateLimiter = new CountingRateLimiter({ redis, prefix: `test:${run}:cancel:`, max: 1000, windowSeconds: 60 });
  const outbox = new OutboxPublisher({ pool: counted, queue });
  ledger = new LedgerService({ pool: counted });
  users = new UserService({ pool: counted, passwords, outbox, rateLimiter });
  sessions = new SessionService({
    pool: counted,
    passwords,
    tokens,
    outbox,
    rateLimiter,
    config: { ACCESS_TOKEN_TTL_SECONDS: 60, REFRESH_TOKEN_TTL_SECONDS: 600, LOGIN_TOKEN_TTL_SECONDS: 60, SESSION_MAX_AGE_SECONDS: 3600 },
  });
});

afterAll(async () => {
  await queue?.obliterate({ force: true }).catch(() => undefined);
  await queue?.close().catch(() => undefined);
  redis?.disconnect();
  await counted?.end();
  await db?.drop();
});

/** Runs `call`, returning what it threw and how much database, bcrypt and Redis work it did. */
async function measure(call: () => Promise<unknown>) {
  const before = { queries, hashing: passwords.calls, rateLimits: rateLimiter.calls };
  const thrown = await call().then(
    () => undefined,
    (error: unknown) => error,
  );
  return { thrown, queries: queries - before.queries, hashing: passwords.calls - before.hashing, rateLimits: rateLimiter.calls - before.rateLimits };
}

describe('an already-aborted signal', () => {
  let alice: Actor;
  let accountId: bigint;
  let otherId: bigint;

  beforeAll(async () => {
    alice = await createUser(db.pool);
    const bob = await createUser(db.pool);
    accountId = (await ledger.openAccount(alice, { currency: 'USD' })).id;
    otherId = (await ledger.openAccount(bob, { currency: 'USD' })).id;
    await ledger.deposit(alice, { accountId, amount: 100n, idempotencyKey: idemKey() });
  });

  it('stops transfer, deposit, openAccount and every other ledger use case before any query, throwing its reason', async () => {
    const reason = new RequestCancelled();
    const signal = AbortSignal.abort(reason);
    const calls: Record<string, () => Promise<unknown>> = {
      transfer: () => ledger.transfer(alice, { fromAccountId: accountId, toAccountId: otherId, amount: 1n, currency: 'USD', idempotencyKey: idemKey() }, { signal }),
      deposit: () => ledger.deposit(alice, { accountId, amount: 1n, idempotencyKey: idemKey() }, { signal }),
      openAccount: () => ledger.openAccount(alice, { currency: 'EUR' }, { signal }),
      getAccount: () => ledger.getAccount(alice, accountId, { signal }),
      listAccounts: () => ledger.listAccounts(alice, {}, { signal }),
      closeAccount: () => ledger.closeAccount(alice, accountId, { signal }),
      listEntries: () => ledger.listEntries(alice, { accountId }, { signal }),
      listTransfers: () => ledger.listTransfers(alice, { accountId }, { signal }),
      getTransfer: () => ledger.getTransfer(alice, 1n, { signal }),
    };
    for (const [name, call] of Object.entries(calls)) {
      const outcome = await measure(call);
      expect({ name, thrown: outcome.thrown, queries: outcome.queries }).toEqual({ name, thrown: reason, queries: 0 });
      expect(outcome.thrown).toBe(reason);
    }
    // Nothing moved and nothing opened.
    expect((await ledger.getAccount(alice, accountId)).balance).toBe(100n);
    expect(await ledger.listAccounts(alice)).toHaveLength(1);
  });

  it('stops sign-up, login and every other identity use case before any query, bcrypt or Redis work', async () => {
    const reason = new DeadlineExceeded('the deadline passed');
    const signal = AbortSignal.abort(reason);
    const username = `c${run}`;
    const refresh = await tokens.issue('refresh', { username, role: 'depositor', sessionId: SESSION_ID, ttlSeconds: 60 });
    const access = await tokens.issue('access', { username, role: 'depositor', sessionId: SESSION_ID, ttlSeconds: 60 });
    const login = await tokens.issue('login', { username, role: 'depositor', sessionId: SESSION_ID, ttlSeconds: 60 });
    const actor: Actor = { username, role: 'depositor', sessionId: SESSION_ID };
    const calls: Record<string, () => Promise<unknown>> = {
      signUp: () => users.signUp({ username, fullName: 'C', email: `${username}@example.test`, password: 'correct horse battery' }, { signal }),
      verifyEmail: () => users.verifyEmail({ emailId: 1n, secretCode: 'secret' }, { signal }),
      updateUser: () => users.updateUser(actor, username, { password: 'a new password', currentPassword: 'correct horse battery' }, { signal }),
      getUser: () => users.getUser(actor, username, { signal }),
      loginStart: () => sessions.loginStart({ username, password: 'correct horse battery', clientIp: '10.0.0.1' }, { signal }),
      loginConfirm: () => sessions.loginConfirm({ sessionId: SESSION_ID, loginSecret: 'secret', code: '123456', clientIp: '10.0.0.1' }, { signal }),
      approveLogin: () => sessions.approveLogin({ sessionId: SESSION_ID, token: login.token }, { signal }),
      refresh: () => sessions.refresh({ refreshToken: refresh.token }, { signal }),
      logout: () => sessions.logout(actor, SESSION_ID, { signal }),
      authenticate: () => sessions.authenticate(access.token, { signal }),
    };
    for (const [name, call] of Object.entries(calls)) {
      const outcome = await measure(call);
      expect({ name, ...outcome }).toEqual({ name, thrown: reason, queries: 0, hashing: 0, rateLimits: 0 });
      expect(outcome.thrown).toBe(reason);
    }
  });

  it('still answers invalid input with the validation error: checking it costs nothing', async () => {
    const signal = AbortSignal.abort(new RequestCancelled());
    const outcome = await measure(() => ledger.openAccount(alice, { currency: 'XYZ' }, { signal }));
    expect(outcome).toMatchObject({ thrown: expect.objectContaining({ code: 'INVALID_ARGUMENT' }), queries: 0 });
  });

  it('the same calls do their work when the signal has not aborted (the counters see it)', async () => {
    const signal = new AbortController().signal;
    const deposit = await measure(() => ledger.deposit(alice, { accountId, amount: 1n, idempotencyKey: idemKey() }, { signal }));
    expect(deposit.thrown).toBeUndefined();
    expect(deposit.queries).toBeGreaterThan(0);
    const login = await measure(() => sessions.loginStart({ username: `nobody_${run}`, password: 'correct horse battery' }, { signal }));
    expect(login.thrown).toMatchObject({ code: 'UNAUTHENTICATED' });
    expect(login).toMatchObject({ hashing: 1, rateLimits: 1 });
    expect(login.queries).toBeGreaterThan(0);
  });
});
