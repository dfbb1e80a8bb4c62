// EMAIL_JOB_ATTEMPTS / EMAIL_JOB_BACKOFF_MS and OUTBOX_JOB_MAX_RECOVERIES reach what uses them
// (issue 12: tests never wait production intervals). With 2 attempts 50 ms apart, an email the
// SMTP server never takes is given up within seconds instead of after 12 attempts over two hours;
// with 0 recoveries, the worker gives up a row whose job failed without settling it at once. Real
// PostgreSQL and Redis; the API side (createBank) and the worker run in this process.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { sql } from 'slonik';
import { z } from 'zod';
import { freePort, waitFor } from '@bank/dev-tools/start/ports';
import { createBank, type Bank } from '@bank/shared/app/bank';
import { generatePasetoKeyPair } from '@bank/shared/auth/token-maker';
import { parseConfig, type Config } from '@bank/shared/config/config';
import { createLogger } from '@bank/shared/logging/logger';
import { createTestDatabase, type TestDatabase } from '../../../test/db.ts';
import { TEST_REDIS_URL } from '../../../test/services.ts';
import { startWorker, type RunningWorker } from './worker.ts';

const run = randomBytes(4).toString('hex');
const logger = createLogger({ name: 'test', level: 'silent', pretty: false });

let db: TestDatabase;
let config: Config;
let bank: Bank;
let worker: RunningWorker | undefined;

const outboxRow = (id: string) =>
  db.pool.one(sql.type(z.object({ status: z.string(), last_error: z.string().nullable() }))`SELECT status, last_error FROM outbox WHERE id = ${id}`);

beforeAll(async () => {
  db = await createTestDatabase();
  const keys = await generatePasetoKeyPair();
  config = parseConfig({
    NODE_ENV: 'test',
    LOG_LEVEL: 'silent',
    DATABASE_URL: db.url,
    REDIS_URL: TEST_REDIS_URL,
    // Nothing listens there: every send fails at once (connection refused).
    SMTP_URL: `smtp://127.0.0.1:${await freePort()}`,
    PUBLIC_BASE_URL: 'http://bank.test',
    PASETO_SECRET_KEY: keys.secretKey,
    BCRYPT_COST: '4',
    EMAIL_QUEUE_NAME: `test-email-retries-${run}`,
    REDIS_KEY_PREFIX: `test:${run}:`,
    METRICS_PORT: '0',
    EMAIL_JOB_ATTEMPTS: '2',
    EMAIL_JOB_BACKOFF_MS: '50',
    OUTBOX_JOB_MAX_RECOVERIES: '0',
    OUTBOX_JOB_CHECK_INTERVAL_MS: '200',
  });
  bank = await createBank(config, { pool: db.pool, logger });
  worker = await startWorker(config, { pool: db.pool, logger, host: '127.0.0.1' });
});

afterAll(async () => {
  await worker?.close();
  await bank?.queue.obliterate({ force: true }).catch(() => undefined);
  const keys = await bank?.redis.keys(`test:${run}:*`);
  if (keys && keys.length > 0) await bank.redis.del(...keys);
  await bank?.close();
  await db?.drop();
});

describe('email job retries from the configuration', () => {
  it('an email SMTP never takes is given up after EMAIL_JOB_ATTEMPTS attempts, EMAIL_JOB_BACKOFF_MS apart', async () => {
    const username = `r${run}`;
    await bank.users.signUp({ username, fullName: 'Retry Settings', email: `${username}@example.test`, password: 'correct horse battery' });
    const outboxId = await db.pool.oneFirst(sql.type(z.object({ id: z.string() }))`
      SELECT id FROM outbox WHERE kind = 'send-verification-email' AND payload->>'username' = ${username}`);
    // The job the API enqueued carries the configured retries (12 and 5 s by default).
    const job = await bank.queue.getJob(outboxId);
    expect(job?.opts.attempts).toBe(2);
    expect(job?.opts.backoff).toMatchObject({ type: 'exponential', delay: 50 });
    // With the defaults the second attempt would come after about 5 s and the row would stay
    // enqueued for hours; here it is failed within seconds.
    expect(await waitFor(async () => (await outboxRow(outboxId)).status === 'failed', 10_000, 50)).toBe(true);
    expect((await outboxRow(outboxId)).last_error).toMatch(/^gave up after 2 attempts/);
  });

  it("with OUTBOX_JOB_MAX_RECOVERIES=0 the worker gives up a row whose job failed without settling it, rather than re-adding the job", async () => {
    const username = `s${run}`;
    await bank.users.signUp({ username, fullName: 'Retry Settings', email: `${username}@example.test`, password: 'correct horse battery' });
    const outboxId = await db.pool.oneFirst(sql.type(z.object({ id: z.string() }))`
      SELECT id FROM outbox WHERE kind = 'send-verification-email' AND payload->>'username' = ${username}`);
    expect(await waitFor(async () => (await outboxRow(outboxId)).status === 'failed', 10_000, 50)).toBe(true);
    // The row back to enqueued while its job stays failed: what a job left behind by killed workers
    // looks like. The worker's check (every 200 ms here) re-adds such a job up to the setting's
    // number of times (3 by default: the job would run its 2 attempts again); with 0 it gives the
    // row up at once.
    await db.pool.query(sql.unsafe`UPDATE outbox SET status = 'enqueued', last_error = NULL WHERE id = ${outboxId}`);
    expect(await waitFor(async () => (await outboxRow(outboxId)).status === 'failed', 10_000, 50)).toBe(true);
    expect(await outboxRow(outboxId)).toEqual({ status: 'failed', last_error: 'its job failed 1 times without settling the email' });
    expect((await bank.queue.getJob(outboxId))?.attemptsMade).toBe(2);
  });
});
