// An outbox row is `enqueued` once the queue accepted its job; if Redis then loses the job (a cache
// without persistence, a failover), nothing else would ever send that email. The worker checks
// that every enqueued row still has its job and re-adds the ones that vanished, within seconds: a
// login code lives 10 minutes, so waiting for a slow sweep loses it. Real PostgreSQL, Redis and an
// SMTP receiver; the worker runs in this process.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { sql } from 'slonik';
import { z } from 'zod';
import { createBank, type Bank } from '@bank/shared/app/bank';
import { generatePasetoKeyPair } from '@bank/shared/auth/token-maker';
import { parseConfig, type Config } from '@bank/shared/config/config';
import { createLogger } from '@bank/shared/logging/logger';
import { verificationEmailPayloadSchema } from '@bank/shared/mail/email.schema';
import { MAX_JOB_RECOVERIES, OutboxPublisher } from '@bank/shared/outbox/outbox-publisher';
import { createEmailQueue } from '@bank/shared/queue/email-queue';
import { createRedis } from '@bank/shared/redis/redis';
import { UnrecoverableError, Worker } from 'bullmq';
import { createTestDatabase, type TestDatabase } from '../../../test/db.ts';
import { TEST_REDIS_URL } from '../../../test/services.ts';
import { startTestSmtpServer, type TestSmtpServer } from '../../../test/smtp.ts';
import { startWorker, type RunningWorker } from './worker.ts';

const run = randomBytes(4).toString('hex');
const logger = createLogger({ name: 'test', level: 'silent', pretty: false });
const PASSWORD = 'correct horse battery';
// The bound the test allows between the loss and the delivery (the check runs every 500 ms here).
const RECOVERY_BOUND_MS = 10_000;

let db: TestDatabase;
let smtp: TestSmtpServer;
let config: Config;
let bank: Bank;
let worker: RunningWorker | undefined;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const emailOf = (username: string) => `${username}@example.test`;
const outboxRow = (id: string) => db.pool.one(sql.type(z.object({ status: z.string() }))`SELECT status FROM outbox WHERE id = ${id}`);

async function verifiedUser(): Promise<string> {
  const username = `l${run}_${randomBytes(3).toString('hex')}`;
  await bank.users.signUp({ username, fullName: 'Lost Job', email: emailOf(username), password: PASSWORD });
  const payload = verificationEmailPayloadSchema.parse(
    await db.pool.oneFirst(sql.type(z.object({ payload: z.unknown() }))`
      SELECT payload FROM outbox WHERE kind = 'send-verification-email' AND payload->>'username' = ${username}`),
  );
  await bank.users.verifyEmail({ emailId: BigInt(payload.emailId), secretCode: payload.secretCode });
  return username;
}

const loginOutboxId = (sessionId: string) =>
  db.pool.oneFirst(sql.type(z.object({ id: z.string() }))`SELECT id FROM outbox WHERE kind = 'send-login-email' AND payload->>'sessionId' = ${sessionId}`);

/**
 * Starts a login for `busy`, waits until the one-job worker is sending its email (1 s), then starts
 * a login for `username`, whose job waits in the queue behind it.
 */
async function loginWaitingBehindAnother(busy: string, username: string): Promise<{ sessionId: string; outboxId: string }> {
  const first = await bank.sessions.loginStart({ username: busy, password: PASSWORD, clientIp: '10.12.2.1' });
  const deadline = Date.now() + 10_000;
  while ((await bank.queue.getJobState(await loginOutboxId(first.sessionId))) !== 'active') {
    if (Date.now() > deadline) throw new Error('the first login email never became active');
    await sleep(10);
  }
  const { sessionId } = await bank.sessions.loginStart({ username, password: PASSWORD, clientIp: '10.12.2.1' });
  const outboxId = await loginOutboxId(sessionId);
  expect(await outboxRow(outboxId)).toEqual({ status: 'enqueued' });
  expect(await bank.queue.getJobState(outboxId)).toBe('waiting');
  return { sessionId, outboxId };
}

/** Resolves once a login email for `sessionId` reached `username`'s inbox; fails after RECOVERY_BOUND_MS. */
async function loginEmailArrives(username: string, sessionId: string): Promise<void> {
  // The bound is a generous ceiling for the wait, not a measured time: the assertion is that it arrives.
  await smtp.waitFor((messages) => messages.some((m) => m.to.includes(emailOf(username)) && m.text.includes(sessionId)), RECOVERY_BOUND_MS);
}

beforeAll(async () => {
  db = await createTestDatabase();
  // Each message waits 1 s for its "250 OK": with one job at a time, the next one waits in the queue.
  smtp = await startTestSmtpServer({ acceptDelayMs: 1_000 });
  const keys = await generatePasetoKeyPair();
  config = parseConfig({
    NODE_ENV: 'test',
    LOG_LEVEL: 'silent',
    DATABASE_URL: db.url,
    REDIS_URL: TEST_REDIS_URL,
    SMTP_URL: smtp.url,
    PUBLIC_BASE_URL: 'http://bank.test',
    PASETO_SECRET_KEY: keys.secretKey,
    BCRYPT_COST: '4',
    EMAIL_QUEUE_NAME: `test-email-lost-${run}`,
    REDIS_KEY_PREFIX: `test:${run}:`,
    METRICS_PORT: '0',
    WORKER_CONCURRENCY: '1',
    OUTBOX_SWEEP_INTERVAL_MS: '500',
    OUTBOX_JOB_CHECK_INTERVAL_MS: '500',
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
  await smtp?.close();
  await db?.drop();
});

describe('a job Redis lost', () => {
  it('a login email whose job vanished from the queue before the worker took it still arrives, within seconds', async () => {
    const busy = await verifiedUser();
    const username = await verifiedUser();
    // Both verification emails go out; by then the worker has run several checks.
    await smtp.waitFor(() => smtp.messagesTo(emailOf(username)).length === 1 && smtp.messagesTo(emailOf(busy)).length === 1, 15_000);

    const { sessionId, outboxId } = await loginWaitingBehindAnother(busy, username);
    // Redis loses the job, as a restart without persistence would.
    expect(await bank.queue.remove(outboxId)).toBe(1);
    expect(await bank.queue.getJobState(outboxId)).toBe('unknown');

    await loginEmailArrives(username, sessionId);
    await sleep(200);
    expect(await outboxRow(outboxId)).toEqual({ status: 'sent' });
  });

  it('every key of the queue deleted (Redis restarted empty) while a job waits: its email still arrives', async () => {
    const busy = await verifiedUser();
    const username = await verifiedUser();
    await smtp.waitFor(() => smtp.messagesTo(emailOf(username)).length === 1 && smtp.messagesTo(emailOf(busy)).length === 1, 15_000);
    const { sessionId, outboxId } = await loginWaitingBehindAnother(busy, username);

    const queueKeys = await bank.redis.keys(`bull:${config.EMAIL_QUEUE_NAME}:*`);
    expect(queueKeys.length).toBeGreaterThan(0);
    await bank.redis.del(...queueKeys);
    expect(await bank.queue.getJobState(outboxId)).toBe('unknown');

    await loginEmailArrives(username, sessionId);
    await sleep(200);
    expect(await outboxRow(outboxId)).toEqual({ status: 'sent' });
  });

  it('a job whose data survived but whose place in the queue did not (a partial loss) is re-added too', async () => {
    const busy = await verifiedUser();
    const username = await verifiedUser();
    await smtp.waitFor(() => smtp.messagesTo(emailOf(username)).length === 1 && smtp.messagesTo(emailOf(busy)).length === 1, 15_000);
    const { sessionId, outboxId } = await loginWaitingBehindAnother(busy, username);

    // The job's hash stays, so adding the same job id again alone would be a no-op.
    expect(await bank.redis.lrem(`bull:${config.EMAIL_QUEUE_NAME}:wait`, 0, outboxId)).toBe(1);
    expect(await bank.redis.exists(`bull:${config.EMAIL_QUEUE_NAME}:${outboxId}`)).toBe(1);
    expect(await bank.queue.getJobState(outboxId)).toBe('unknown');

    await loginEmailArrives(username, sessionId);
  });
});

describe('a job that failed without settling its row', () => {
  it('is re-added (a job whose workers were killed, or whose last attempt could not reach the database), so its email arrives', async () => {
    const busy = await verifiedUser();
    const username = await verifiedUser();
    await smtp.waitFor(() => smtp.messagesTo(emailOf(username)).length === 1 && smtp.messagesTo(emailOf(busy)).length === 1, 15_000);
    const { sessionId, outboxId } = await loginWaitingBehindAnother(busy, username);

    // Another consumer takes the waiting job and fails it for good without touching its row, as a
    // job that stalled out (its workers killed each time) or lost its database on its last attempt.
    const connection = createRedis(TEST_REDIS_URL, { maxRetriesPerRequest: null });
    const failedJobId = await new Promise<string | undefined>((resolve) => {
      const rogue = new Worker(config.EMAIL_QUEUE_NAME, async () => {
        throw new UnrecoverableError('stalled out');
      }, { connection, autorun: true });
      rogue.on('failed', (job) => {
        void rogue.close().then(() => resolve(job?.id));
      });
    });
    await connection.quit();
    // (Its state is not asserted here: the worker's check may re-add it at any moment now.)
    expect(failedJobId).toBe(outboxId);

    await loginEmailArrives(username, sessionId);
    await sleep(200);
    expect(await outboxRow(outboxId)).toEqual({ status: 'sent' });
    expect((await bank.queue.getJob(outboxId))?.data.recoveries).toBe(1);
  });

  it('is given up (the row marked failed) after it failed unsettled MAX_JOB_RECOVERIES times', async () => {
    const username = await verifiedUser();
    await smtp.waitFor(() => smtp.messagesTo(emailOf(username)).length === 1, 15_000);
    const { sessionId } = await bank.sessions.loginStart({ username, password: PASSWORD, clientIp: '10.12.2.9' });
    const outboxId = await loginOutboxId(sessionId);
    await smtp.waitFor((messages) => messages.some((m) => m.text.includes(sessionId)), 15_000);
    for (const deadline = Date.now() + 10_000; (await outboxRow(outboxId)).status !== 'sent' && Date.now() < deadline; ) await sleep(50);
    // On a queue of its own that no worker serves but the one failing it: a job that already failed
    // unsettled as often as allowed, for a row still enqueued.
    await db.pool.query(sql.unsafe`UPDATE outbox SET status = 'enqueued' WHERE id = ${outboxId}`);
    const connection = createRedis(TEST_REDIS_URL, { purpose: 'worker' });
    const queue = createEmailQueue(connection, { name: `${config.EMAIL_QUEUE_NAME}-given-up` });
    try {
      await queue.add('send-login-email', { outboxId, recoveries: MAX_JOB_RECOVERIES }, { jobId: outboxId, attempts: 1 });
      await new Promise<void>((resolve) => {
        const rogue = new Worker(queue.name, async () => {
          throw new UnrecoverableError('crashes its worker every time');
        }, { connection, autorun: true });
        rogue.on('failed', () => {
          void rogue.close().then(resolve);
        });
      });
      expect(await queue.getJobState(outboxId)).toBe('failed');
      const publisher = new OutboxPublisher({ pool: db.pool, queue });
      expect(await publisher.recoverLostJobs({ limit: 10_000 })).toBe(0);
      expect(await outboxRow(outboxId)).toEqual({ status: 'failed' });
      expect(await queue.getJobState(outboxId)).toBe('failed');
    } finally {
      await queue.obliterate({ force: true }).catch(() => undefined);
      await queue.close();
      await connection.quit();
    }
  });
});
