// Logins answered "unavailable" while PostgreSQL is down must not count as failed logins: after the
// outage the user (and everyone behind the same address) logs in with the right password at once.
// The outage is real: the suite's own database refuses new connections and its backends are
// terminated, as a crash or a failover would.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import pg from 'pg';
import { sql } from 'slonik';
import { z } from 'zod';
import { createTestDatabase, type TestDatabase } from '../../../test/db.ts';
import { TEST_DATABASE_URL, TEST_REDIS_URL } from '../../../test/services.ts';
import { createBank, type Bank } from '../app/bank.ts';
import { parseConfig } from '../config/config.ts';
import { createDatabasePool, type DatabasePool } from '../db/pool.ts';
import { isStoreUnavailable } from '../db/store-errors.ts';
import { RateLimited, Unauthenticated } from '../errors/domain-error.ts';
import { createLogger } from '../logging/logger.ts';
import { loginEmailPayloadSchema, verificationEmailPayloadSchema } from '../mail/email.schema.ts';
import { PasswordHasher } from './password.ts';
import { RateLimiter } from './rate-limiter.ts';
import { SessionService } from './session.service.ts';
import { generatePasetoKeyPair } from './token-maker.ts';

const run = randomBytes(4).toString('hex');
const logger = createLogger({ name: 'test', level: 'silent', pretty: false });
const PASSWORD = 'correct horse battery';
const LIMIT = 3;

let db: TestDatabase;
let bank: Bank;

async function admin(statement: string): Promise<void> {
  const client = new pg.Client({ connectionString: TEST_DATABASE_URL });
  await client.connect();
  try {
    await client.query(statement);
  } finally {
    await client.end();
  }
}

/** The database refuses new connections and loses the ones it had, until `resume`. */
async function pause(): Promise<void> {
  await admin(`ALTER DATABASE ${db.name} ALLOW_CONNECTIONS false`);
  await admin(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '${db.name}' AND pid <> pg_backend_pid()`);
}
const resume = () => admin(`ALTER DATABASE ${db.name} ALLOW_CONNECTIONS true`);

function sessionsWithLimit(pool: DatabasePool = db.pool): SessionService {
  return new SessionService({
    pool,
    passwords: new PasswordHasher({ cost: 4 }),
    tokens: bank.tokens,
    outbox: bank.outbox,
    rateLimiter: new RateLimiter({ redis: bank.redis, prefix: `test:${run}:rl:${randomBytes(3).toString('hex')}:`, max: LIMIT, windowSeconds: 600 }),
    config: { ACCESS_TOKEN_TTL_SECONDS: 300, REFRESH_TOKEN_TTL_SECONDS: 3600, LOGIN_TOKEN_TTL_SECONDS: 600, SESSION_MAX_AGE_SECONDS: 86_400 },
    logger,
  });
}

async function verifiedUser(): Promise<string> {
  const username = `o${run}_${randomBytes(3).toString('hex')}`;
  await bank.users.signUp({ username, fullName: 'Outage User', email: `${username}@example.test`, password: PASSWORD });
  const payload = verificationEmailPayloadSchema.parse(
    await db.pool.oneFirst(sql.type(z.object({ payload: z.unknown() }))`
      SELECT payload FROM outbox WHERE kind = 'send-verification-email' AND payload->>'username' = ${username}`),
  );
  await bank.users.verifyEmail({ emailId: BigInt(payload.emailId), secretCode: payload.secretCode });
  return username;
}

beforeAll(async () => {
  db = await createTestDatabase({ poolSize: 4 });
  const keys = await generatePasetoKeyPair();
  const config = parseConfig({
    NODE_ENV: 'test',
    LOG_LEVEL: 'silent',
    DATABASE_URL: db.url,
    REDIS_URL: TEST_REDIS_URL,
    SMTP_URL: 'smtp://127.0.0.1:1',
    PUBLIC_BASE_URL: 'http://bank.test',
    PASETO_SECRET_KEY: keys.secretKey,
    BCRYPT_COST: '4',
    EMAIL_QUEUE_NAME: `test-email-outage-${run}`,
    REDIS_KEY_PREFIX: `test:${run}:`,
  });
  bank = await createBank(config, { pool: db.pool, logger });
});

afterAll(async () => {
  await resume().catch(() => undefined);
  await bank?.queue.obliterate({ force: true }).catch(() => undefined);
  const keys = await bank?.redis.keys(`test:${run}:*`);
  if (keys && keys.length > 0) await bank.redis.del(...keys);
  await bank?.close();
  await db?.drop();
});

describe('login during a database outage', () => {
  it('attempts that fail because PostgreSQL is down do not count: the right password works right after', async () => {
    const username = await verifiedUser();
    const sessions = sessionsWithLimit();
    const clientIp = '10.12.0.1';
    await pause();
    try {
      // Twice the limit, from the user's address: each is "unavailable", none is "too many attempts".
      for (let i = 0; i < LIMIT * 2; i += 1) {
        const failure = await sessions.loginStart({ username, password: PASSWORD, clientIp }).then(
          () => new Error('login succeeded while the database was down'),
          (error: unknown) => error,
        );
        expect(failure).not.toBeInstanceOf(RateLimited);
        expect(isStoreUnavailable(failure)).toBe(true);
      }
    } finally {
      await resume();
    }
    await expect(sessions.loginStart({ username, password: PASSWORD, clientIp })).resolves.toHaveProperty('sessionId');
    // Another user behind the same address is not locked out either.
    const neighbour = await verifiedUser();
    await expect(sessions.loginStart({ username: neighbour, password: PASSWORD, clientIp })).resolves.toHaveProperty('sessionId');
  });

  it('wrong passwords still count once the database is back', async () => {
    const username = await verifiedUser();
    const sessions = sessionsWithLimit();
    for (let i = 0; i < LIMIT; i += 1) {
      await expect(sessions.loginStart({ username, password: 'not the password', clientIp: '10.12.0.2' })).rejects.toBeInstanceOf(Unauthenticated);
    }
    // Counted against the address they came from (from elsewhere the owner's password still works).
    await expect(sessions.loginStart({ username, password: PASSWORD, clientIp: '10.12.0.2' })).rejects.toBeInstanceOf(RateLimited);
    await expect(sessions.loginStart({ username, password: PASSWORD, clientIp: '10.12.0.3' })).resolves.toHaveProperty('sessionId');
  });
});

describe('login confirmation when the database times out', () => {
  it('codes whose check timed out (the challenge row locked elsewhere) do not count: the right code works after', async () => {
    const username = await verifiedUser();
    // The same limiter for both: a pool whose statements give up after 300 ms, and the suite's.
    const impatient = await createDatabasePool(db.url, { maximumPoolSize: 2, statementTimeoutMs: 300 });
    const limiter = new RateLimiter({ redis: bank.redis, prefix: `test:${run}:rl:${randomBytes(3).toString('hex')}:`, max: LIMIT, windowSeconds: 600 });
    const build = (pool: DatabasePool) =>
      new SessionService({
        pool,
        passwords: new PasswordHasher({ cost: 4 }),
        tokens: bank.tokens,
        outbox: bank.outbox,
        rateLimiter: limiter,
        config: { ACCESS_TOKEN_TTL_SECONDS: 300, REFRESH_TOKEN_TTL_SECONDS: 3600, LOGIN_TOKEN_TTL_SECONDS: 600, SESSION_MAX_AGE_SECONDS: 86_400 },
        logger,
      });
    const sessions = build(db.pool);
    const slow = build(impatient);
    const clientIp = '10.12.0.4';
    const { sessionId, loginSecret } = await sessions.loginStart({ username, password: PASSWORD, clientIp });
    const { code } = loginEmailPayloadSchema.parse(
      await db.pool.oneFirst(sql.type(z.object({ payload: z.unknown() }))`
        SELECT payload FROM outbox WHERE kind = 'send-login-email' AND payload->>'sessionId' = ${sessionId}`),
    );
    const holder = new pg.Client({ connectionString: db.url });
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query('SELECT 1 FROM login_challenges WHERE session_id = $1 FOR UPDATE', [sessionId]);
      for (let i = 0; i < LIMIT * 2; i += 1) {
        const failure = await slow.loginConfirm({ sessionId, loginSecret, code, clientIp }).then(
          () => new Error('confirmed past a locked challenge'),
          (error: unknown) => error,
        );
        expect(failure).not.toBeInstanceOf(RateLimited);
        expect(failure).not.toBeInstanceOf(Unauthenticated);
      }
    } finally {
      await holder.query('ROLLBACK').catch(() => undefined);
      await holder.end();
      await impatient.end();
    }
    await expect(sessions.loginConfirm({ sessionId, loginSecret, code, clientIp })).resolves.toHaveProperty('accessToken');
  });
});
