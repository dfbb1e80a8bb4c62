// The dummy bcrypt hash that unknown-user logins compare against is built at start-up, not by the
// first such login (which then cost a hash and a compare: 151 ms against 72 ms at cost 12). Shown
// by counting bcrypt calls, never by timing them.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import bcrypt from 'bcrypt';
import { createTestDatabase, type TestDatabase } from '../../../test/db.ts';
import { TEST_REDIS_URL } from '../../../test/services.ts';
import { createBank, type Bank } from '../app/bank.ts';
import { parseConfig } from '../config/config.ts';
import { Unauthenticated } from '../errors/domain-error.ts';
import { createLogger } from '../logging/logger.ts';
import { PasswordHasher, type BcryptEngine } from './password.ts';
import { generatePasetoKeyPair } from './token-maker.ts';

const run = randomBytes(4).toString('hex');
const logger = createLogger({ name: 'test', level: 'silent', pretty: false });

/** The real bcrypt, counting its calls. */
function countingBcrypt(): BcryptEngine & { hashes: number; compares: number } {
  const engine = {
    hashes: 0,
    compares: 0,
    hash(data: string, cost: number) {
      engine.hashes += 1;
      return bcrypt.hash(data, cost);
    },
    compare(data: string, encrypted: string) {
      engine.compares += 1;
      return bcrypt.compare(data, encrypted);
    },
  };
  return engine;
}

describe('the dummy bcrypt hash', () => {
  it('PasswordHasher.prepare builds it with one hash; every unknown-user check after is one compare and no hash', async () => {
    const engine = countingBcrypt();
    const hasher = new PasswordHasher({ cost: 4, bcrypt: engine });
    await hasher.prepare();
    await hasher.prepare();
    expect({ hashes: engine.hashes, compares: engine.compares }).toEqual({ hashes: 1, compares: 0 });
    for (let i = 0; i < 3; i += 1) await expect(hasher.verifyDummy(`guess-${i}`)).resolves.toBe(false);
    expect({ hashes: engine.hashes, compares: engine.compares }).toEqual({ hashes: 1, compares: 3 });
  });

  describe('in the composition (createBank)', () => {
    let db: TestDatabase;
    let bank: Bank;
    const engine = countingBcrypt();

    beforeAll(async () => {
      db = await createTestDatabase();
      const config = parseConfig({
        NODE_ENV: 'test',
        LOG_LEVEL: 'silent',
        DATABASE_URL: db.url,
        REDIS_URL: TEST_REDIS_URL,
        PASETO_SECRET_KEY: (await generatePasetoKeyPair()).secretKey,
        BCRYPT_COST: '4',
        EMAIL_QUEUE_NAME: `test-email-dummy-${run}`,
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

    it('is built before the first login: the first unknown-user login makes one compare and no hash', async () => {
      expect({ hashes: engine.hashes, compares: engine.compares }).toEqual({ hashes: 1, compares: 0 });
      await expect(bank.sessions.loginStart({ username: `nobody_${run}`, password: 'not a password', clientIp: '10.31.0.1' })).rejects.toBeInstanceOf(Unauthenticated);
      expect({ hashes: engine.hashes, compares: engine.compares }).toEqual({ hashes: 1, compares: 1 });
    });
  });
});
