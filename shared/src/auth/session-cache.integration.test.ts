// Authentication without its own query, on the real PostgreSQL and Redis: several createBank
// instances on one database and one Redis stand for several processes, each with its own
// session-liveness cache and its own pool. Session reads are counted by a Slonik interceptor on
// each pool, never timed.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { sql } from 'slonik';
import { z } from 'zod';
import { createTestDatabase, type TestDatabase } from '../../../test/db.ts';
import { TEST_REDIS_URL } from '../../../test/services.ts';
import { createBank, type Bank } from '../app/bank.ts';
import { parseConfig, type Config } from '../config/config.ts';
import { createDatabasePool, type DatabasePool } from '../db/pool.ts';
import { Unauthenticated } from '../errors/domain-error.ts';
import { createLogger } from '../logging/logger.ts';
import { loginEmailPayloadSchema, verificationEmailPayloadSchema } from '../mail/email.schema.ts';
import type { Actor } from './actor.ts';
import { PasswordHasher } from './password.ts';
import { RateLimiter } from './rate-limiter.ts';
import { SessionLiveness } from './session-liveness.ts';
import { SessionService, type AuthTokens } from './session.service.ts';
import { generatePasetoKeyPair } from './token-maker.ts';

const run = randomBytes(4).toString('hex');
const logger = createLogger({ name: 'test', level: 'silent', pretty: false });
const PASSWORD = 'correct horse battery';

type Process = { bank: Bank; pool: DatabasePool; sessionReads: () => number; queries: () => number };

let db: TestDatabase;
let config: Config;
/** SESSION_CACHE_TTL_MS 1000 (the default): the process where users log in and out. */
let a: Process;
/**
 * SESSION_CACHE_TTL_MS 60000: far longer than any deadline below, so when B refuses a session that
 * A revoked within those deadlines, only the published revocation can have told it.
 */
let b: Process;
/** SESSION_CACHE_TTL_MS 0: caching off. */
let c: Process;
let counter = 0;

/**
 * A pool on the suite's database that counts the session reads (a query of `sessions` by id) and
 * all the queries it runs.
 */
async function countingPool(): Promise<{ pool: DatabasePool; sessionReads: () => number; queries: () => number }> {
  let reads = 0;
  let queries = 0;
  const pool = await createDatabasePool(db.url, {
    maximumPoolSize: 3,
    interceptors: [
      {
        name: 'count-session-reads',
        beforeQueryExecution: (_context, query) => {
          queries += 1;
          if (/FROM sessions\b[\s\S]*WHERE (s\.)?id =/.test(query.sql)) reads += 1;
          return null;
        },
      },
    ],
  });
  return { pool, sessionReads: () => reads, queries: () => queries };
}

async function startProcess(ttlMs: number): Promise<Process> {
  const { pool, sessionReads, queries } = await countingPool();
  const bank = await createBank({ ...config, SESSION_CACHE_TTL_MS: ttlMs }, { pool, logger });
  return { bank, pool, sessionReads, queries };
}

async function until(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 3_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const refused = (p: Process, token: string) =>
  p.bank.sessions.authenticate(token).then(
    () => false,
    (error: unknown) => error instanceof Unauthenticated,
  );

/** A SessionService on process A's pool with its own liveness cache and a clock the test moves. */
function sessionsWithClock(ttlMs: number) {
  let now = Date.now();
  const clock = () => now;
  const liveness = new SessionLiveness({ ttlMs, now: clock });
  const sessions = new SessionService({
    pool: a.pool,
    passwords: new PasswordHasher({ cost: 4 }),
    tokens: a.bank.tokens,
    outbox: a.bank.outbox,
    rateLimiter: new RateLimiter({ redis: a.bank.redis, prefix: `test:${run}:clock:`, max: 1_000, windowSeconds: 60 }),
    config,
    liveness,
    now: clock,
  });
  return { sessions, advance: (ms: number) => (now += ms) };
}

async function lastOutboxPayload(username: string, kind: string): Promise<unknown> {
  return db.pool.oneFirst(sql.type(z.object({ payload: z.unknown() }))`
    SELECT payload FROM outbox WHERE kind = ${kind} AND payload->>'username' = ${username} ORDER BY created_at DESC LIMIT 1`);
}

/** A verified user, signed up through process A. */
async function verifiedUser(): Promise<string> {
  const username = `c${run}_${(counter += 1)}`;
  await a.bank.users.signUp({ username, fullName: 'Cache Test', email: `${username}@example.test`, password: PASSWORD });
  const payload = verificationEmailPayloadSchema.parse(await lastOutboxPayload(username, 'send-verification-email'));
  await a.bank.users.verifyEmail({ emailId: BigInt(payload.emailId), secretCode: payload.secretCode });
  return username;
}

/** A new session of `username`, opened through process A with the emailed login token. */
async function logIn(username: string): Promise<AuthTokens> {
  const { sessionId, loginSecret } = await a.bank.sessions.loginStart({ username, password: PASSWORD, clientIp: '10.0.0.9' });
  const payload = loginEmailPayloadSchema.parse(await lastOutboxPayload(username, 'send-login-email'));
  return a.bank.sessions.loginConfirm({ sessionId, loginSecret, token: payload.loginToken });
}

beforeAll(async () => {
  db = await createTestDatabase({ poolSize: 3 });
  config = parseConfig({
    NODE_ENV: 'test',
    LOG_LEVEL: 'silent',
    DATABASE_URL: db.url,
    REDIS_URL: TEST_REDIS_URL,
    PASETO_SECRET_KEY: (await generatePasetoKeyPair()).secretKey,
    BCRYPT_COST: '4',
    LOGIN_RATE_LIMIT_MAX: '1000',
    EMAIL_QUEUE_NAME: `test-email-cache-${run}`,
    REDIS_KEY_PREFIX: `test:${run}:`,
  });
  [a, b, c] = await Promise.all([startProcess(1_000), startProcess(60_000), startProcess(0)]);
  // A process trusts its cache only once it hears revocations.
  await until(() => a.bank.sessionLiveness.listening && b.bank.sessionLiveness.listening, 'both caching processes subscribed');
});

afterAll(async () => {
  await a?.bank.queue.obliterate({ force: true }).catch(() => undefined);
  const keys = await a?.bank.redis.keys(`test:${run}:*`);
  if (keys && keys.length > 0) await a.bank.redis.del(...keys);
  for (const p of [a, b, c]) {
    await p?.bank.close();
    await p?.pool.end();
  }
  await db?.drop();
});

describe('authentication without its own query', () => {
  it('N calls with one access token cost one session read and one signature check in a process, not N', async () => {
    const tokens = await logIn(await verifiedUser());
    const reads = b.sessionReads();
    const checks = b.bank.tokens.signatureChecks;
    for (let i = 0; i < 100; i += 1) await expect(b.bank.sessions.authenticate(tokens.accessToken)).resolves.toMatchObject({ sessionId: tokens.sessionId });
    expect(b.sessionReads() - reads).toBe(1);
    expect(b.bank.tokens.signatureChecks - checks).toBe(1);
  });

  it('with SESSION_CACHE_TTL_MS=0 every call reads the session, as before the cache, in one query with the role', async () => {
    const tokens = await logIn(await verifiedUser());
    const reads = c.sessionReads();
    const queries = c.queries();
    for (let i = 0; i < 20; i += 1) await c.bank.sessions.authenticate(tokens.accessToken);
    expect(c.sessionReads() - reads).toBe(20);
    expect(c.queries() - queries).toBe(20);
    expect(c.bank.sessionLiveness.size).toBe(0);
  });

  it('a session cached in a process is refused at once after a logout in that process', async () => {
    const tokens = await logIn(await verifiedUser());
    const actor = await a.bank.sessions.authenticate(tokens.accessToken);
    const reads = a.sessionReads();
    await a.bank.sessions.authenticate(tokens.accessToken);
    expect(a.sessionReads() - reads).toBe(0);
    await a.bank.sessions.logout(actor, tokens.sessionId);
    await expect(a.bank.sessions.authenticate(tokens.accessToken)).rejects.toThrow('this session is no longer active');
  });

  it('a logout through one process is refused by another that had the session cached, through the published revocation', async () => {
    const tokens = await logIn(await verifiedUser());
    await b.bank.sessions.authenticate(tokens.accessToken);
    const reads = b.sessionReads();
    await b.bank.sessions.authenticate(tokens.accessToken);
    expect(b.sessionReads() - reads).toBe(0);

    const actor = await a.bank.sessions.authenticate(tokens.accessToken);
    await a.bank.sessions.logout(actor, tokens.sessionId);
    await until(() => refused(b, tokens.accessToken), "process B refuses the session A logged out (B's TTL is 60 s)");
    await expect(b.bank.sessions.authenticate(tokens.accessToken)).rejects.toBeInstanceOf(Unauthenticated);
  });

  it('refresh-token reuse detected in one process ends the session in another', async () => {
    const tokens = await logIn(await verifiedUser());
    const refreshed = await a.bank.sessions.refresh({ refreshToken: tokens.refreshToken });
    await b.bank.sessions.authenticate(refreshed.accessToken);
    expect(b.bank.sessionLiveness.isTrusted(refreshed.sessionId, refreshed.user.username)).toBe(true);

    await expect(a.bank.sessions.refresh({ refreshToken: tokens.refreshToken })).rejects.toThrow('already used; the session is revoked');
    await until(() => refused(b, refreshed.accessToken), 'process B refuses the session whose refresh token was reused');
  });

  it("a password change in one process ends the user's other sessions in another", async () => {
    const username = await verifiedUser();
    const kept = await logIn(username);
    const other = await logIn(username);
    await b.bank.sessions.authenticate(other.accessToken);
    await b.bank.sessions.authenticate(kept.accessToken);

    const actor: Actor = await a.bank.sessions.authenticate(kept.accessToken);
    await a.bank.users.updateUser(actor, username, { password: 'a brand new password', currentPassword: PASSWORD });
    await until(() => refused(b, other.accessToken), 'process B refuses the session the password change ended');
    await expect(b.bank.sessions.authenticate(kept.accessToken)).resolves.toMatchObject({ username });
  });
});

describe('the role comes from the session read, not from the token', () => {
  const setRole = (username: string, role: 'banker' | 'depositor') => db.pool.query(sql.unsafe`UPDATE users SET role = ${role} WHERE username = ${username}`);

  it('a banker demoted in the database is a depositor at the next request when nothing caches the session', async () => {
    const username = await verifiedUser();
    await setRole(username, 'banker');
    const tokens = await logIn(username); // the token says banker
    await expect(c.bank.sessions.authenticate(tokens.accessToken)).resolves.toMatchObject({ role: 'banker' });
    // Demoted behind the sessions' back (no revocation): the same token, the next request.
    await setRole(username, 'depositor');
    const queries = c.queries();
    await expect(c.bank.sessions.authenticate(tokens.accessToken)).resolves.toEqual({ username, role: 'depositor', sessionId: tokens.sessionId });
    expect(c.queries() - queries).toBe(1); // the role came with the session read: no query of its own
  });

  it('a cached session keeps the role it was read with for at most SESSION_CACHE_TTL_MS, then the new one applies', async () => {
    const username = await verifiedUser();
    await setRole(username, 'banker');
    const tokens = await logIn(username);
    const { sessions, advance } = sessionsWithClock(1_000);
    await expect(sessions.authenticate(tokens.accessToken)).resolves.toMatchObject({ role: 'banker' });
    await setRole(username, 'depositor');
    advance(999);
    await expect(sessions.authenticate(tokens.accessToken)).resolves.toMatchObject({ role: 'banker' });
    advance(1);
    await expect(sessions.authenticate(tokens.accessToken)).resolves.toMatchObject({ role: 'depositor' });
  });

  it('a depositor whose token claims banker (forged with the key) acts as a depositor', async () => {
    const username = await verifiedUser();
    const tokens = await logIn(username);
    const forged = await a.bank.tokens.issue('access', { username, role: 'banker', sessionId: tokens.sessionId, ttlSeconds: 60 });
    await expect(c.bank.sessions.authenticate(forged.token)).resolves.toMatchObject({ role: 'depositor' });
  });
});

describe('the cache never outlives its bounds (one process, its clock in the test)', () => {
  it('reads a session at most once per SESSION_CACHE_TTL_MS window', async () => {
    const tokens = await logIn(await verifiedUser());
    const { sessions, advance } = sessionsWithClock(1_000);
    const reads = a.sessionReads();
    const window = async () => {
      for (let i = 0; i < 10; i += 1) await sessions.authenticate(tokens.accessToken);
    };
    await window();
    expect(a.sessionReads() - reads).toBe(1);
    advance(999);
    await window();
    expect(a.sessionReads() - reads).toBe(1);
    advance(1);
    await window();
    expect(a.sessionReads() - reads).toBe(2);
  });

  it('refuses a session whose expiresAt (its absolute lifetime) passed while it was cached', async () => {
    const tokens = await logIn(await verifiedUser());
    // A session near its end: refreshing can never move expires_at past the absolute lifetime.
    await db.pool.query(sql.unsafe`UPDATE sessions SET expires_at = now() + interval '10 seconds' WHERE id = ${tokens.sessionId}`);
    const { sessions, advance } = sessionsWithClock(60_000);
    await sessions.authenticate(tokens.accessToken);
    const reads = a.sessionReads();
    advance(5_000);
    await expect(sessions.authenticate(tokens.accessToken)).resolves.toMatchObject({ sessionId: tokens.sessionId });
    expect(a.sessionReads() - reads).toBe(0);
    advance(6_000);
    // The access token itself is still valid (15 minutes): only the session's end refuses it.
    await expect(sessions.authenticate(tokens.accessToken)).rejects.toThrow('this session is no longer active');
    expect(a.sessionReads() - reads).toBe(1);
  });
});
