// A successful login replaces a stored password hash of an older version (bcrypt over the password
// itself, no `v2:` prefix) or of a lower bcrypt cost with a new one, on the real PostgreSQL; a wrong
// password changes nothing, a password changed meanwhile is never overwritten, and a rehash that
// fails leaves the login standing.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import bcrypt from 'bcrypt';
import { sql } from 'slonik';
import { z } from 'zod';
import { createTestDatabase, type TestDatabase } from '../../../test/db.ts';
import { TEST_REDIS_URL } from '../../../test/services.ts';
import { createBank, type Bank } from '../app/bank.ts';
import { parseConfig } from '../config/config.ts';
import { Unauthenticated } from '../errors/domain-error.ts';
import { createLogger } from '../logging/logger.ts';
import { verificationEmailPayloadSchema } from '../mail/email.schema.ts';
import { userRepository } from '../users/user.repository.ts';
import { prehash, type BcryptEngine } from './password.ts';
import { generatePasetoKeyPair } from './token-maker.ts';

const run = randomBytes(4).toString('hex');
const logger = createLogger({ name: 'test', level: 'silent', pretty: false });
const PASSWORD = 'correct horse battery';
let counter = 0;

/** The real bcrypt; `failHashes` makes every hash throw (as a rehash failing would). */
const engine: BcryptEngine & { failHashes: boolean } = {
  failHashes: false,
  hash: (data, cost) => (engine.failHashes ? Promise.reject(new Error('bcrypt unavailable')) : bcrypt.hash(data, cost)),
  compare: (data, encrypted) => bcrypt.compare(data, encrypted),
};

let db: TestDatabase;
let bank: Bank;

beforeAll(async () => {
  db = await createTestDatabase();
  const config = parseConfig({
    NODE_ENV: 'test',
    LOG_LEVEL: 'silent',
    DATABASE_URL: db.url,
    REDIS_URL: TEST_REDIS_URL,
    PASETO_SECRET_KEY: (await generatePasetoKeyPair()).secretKey,
    BCRYPT_COST: '5',
    EMAIL_QUEUE_NAME: `test-email-rehash-${run}`,
    REDIS_KEY_PREFIX: `test:${run}:`,
  });
  bank = await createBank(config, { pool: db.pool, logger, bcrypt: engine });
});

afterAll(async () => {
  const keys = await bank?.redis.keys(`test:${run}:*`);
  if (keys && keys.length > 0) await bank.redis.del(...keys);
  await bank?.close();
  await db?.drop();
});

/** A verified user whose stored hash is then replaced by `hash`. */
async function userWithHash(hash: string): Promise<string> {
  const username = `r${run}_${(counter += 1)}`;
  await bank.users.signUp({ username, fullName: 'Old Hash', email: `${username}@example.test`, password: PASSWORD });
  const payload = verificationEmailPayloadSchema.parse(
    await db.pool.oneFirst(sql.type(z.object({ payload: z.unknown() }))`
      SELECT payload FROM outbox WHERE kind = 'send-verification-email' AND payload->>'username' = ${username}`),
  );
  await bank.users.verifyEmail({ emailId: BigInt(payload.emailId), secretCode: payload.secretCode });
  await db.pool.query(sql.unsafe`UPDATE users SET hashed_password = ${hash} WHERE username = ${username}`);
  return username;
}

const storedHash = (username: string) => db.pool.oneFirst(sql.type(z.object({ hashed_password: z.string() }))`SELECT hashed_password FROM users WHERE username = ${username}`);
const passwordChangedAt = (username: string) => db.pool.oneFirst(sql.type(z.object({ password_changed_at: z.date() }))`SELECT password_changed_at FROM users WHERE username = ${username}`);
const login = (username: string, password = PASSWORD) => bank.sessions.loginStart({ username, password, clientIp: '10.47.0.1' });

describe('rehashing a password at login', () => {
  it('replaces an old-format hash with a v2 hash at the configured cost, and the same password still logs in', async () => {
    const username = await userWithHash(await bcrypt.hash(PASSWORD, 4));
    const changedAt = await passwordChangedAt(username);
    await login(username);
    const upgraded = await storedHash(username);
    expect(upgraded).toMatch(/^v2:\$2b\$05\$/);
    expect(await passwordChangedAt(username)).toEqual(changedAt);
    await expect(login(username)).resolves.toHaveProperty('sessionId');
    expect(await storedHash(username)).toBe(upgraded);
  });

  it('replaces a v2 hash of a lower bcrypt cost than BCRYPT_COST', async () => {
    const username = await userWithHash(`v2:${await bcrypt.hash(prehash(PASSWORD), 4)}`);
    await login(username);
    expect(await storedHash(username)).toMatch(/^v2:\$2b\$05\$/);
  });

  it('leaves the hash alone after a wrong password', async () => {
    const old = await bcrypt.hash(PASSWORD, 4);
    const username = await userWithHash(old);
    await expect(login(username, 'wrong horse battery')).rejects.toBeInstanceOf(Unauthenticated);
    expect(await storedHash(username)).toBe(old);
  });

  it('never overwrites a hash that changed since it was read', async () => {
    const old = await bcrypt.hash(PASSWORD, 4);
    const username = await userWithHash(old);
    await db.pool.query(sql.unsafe`UPDATE users SET hashed_password = 'changed meanwhile' WHERE username = ${username}`);
    await expect(userRepository.rehashPassword(db.pool, username, old, 'v2:new')).resolves.toBe(false);
    expect(await storedHash(username)).toBe('changed meanwhile');
  });

  it('a rehash that fails does not fail the login, and the old hash stays', async () => {
    const old = await bcrypt.hash(PASSWORD, 4);
    const username = await userWithHash(old);
    engine.failHashes = true;
    try {
      await expect(login(username)).resolves.toHaveProperty('sessionId');
    } finally {
      engine.failHashes = false;
    }
    expect(await storedHash(username)).toBe(old);
  });
});
