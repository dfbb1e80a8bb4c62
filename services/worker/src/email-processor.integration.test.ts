// The email jobs that run at once read their outbox rows and mark them sent together: a burst of
// emails costs fewer statements than emails, and each email still goes out exactly once with its
// row marked sent (secrets stripped). Real PostgreSQL, Redis, a BullMQ worker with five jobs at a
// time (the worker of this repository, in this process) and an SMTP receiver that answers the
// five jobs' "250 OK"s at once, so they reach their reads and marks together however slow the
// machine (a fixed 50 ms hold let them drift apart on a loaded one: 20 marks for 20 emails).
import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { sql } from 'slonik';
import { z } from 'zod';
import { parseConfig } from '@bank/shared/config/config';
import { createDatabasePool, type DatabasePool } from '@bank/shared/db/pool';
import { createLogger } from '@bank/shared/logging/logger';
import { SEND_MONEY_RECEIVED_EMAIL, type MoneyReceivedEmailPayload } from '@bank/shared/mail/notification-email.schema';
import { OutboxPublisher } from '@bank/shared/outbox/outbox-publisher';
import { outboxRepository } from '@bank/shared/outbox/outbox.repository';
import { createEmailQueue, type EmailQueue } from '@bank/shared/queue/email-queue';
import { createRedis, type Redis } from '@bank/shared/redis/redis';
import { createCountingPool, createTestDatabase, type CountingPool, type TestDatabase } from '../../../test/db.ts';
import { TEST_REDIS_URL } from '../../../test/services.ts';
import { startTestSmtpServer, type TestSmtpServer } from '../../../test/smtp.ts';
import { startWorker, type RunningWorker } from './worker.ts';

const run = randomBytes(4).toString('hex');
const queueName = `test-email-group-${run}`;
const EMAILS = 20;

let db: TestDatabase;
let smtp: TestSmtpServer;
let redis: Redis;
let queue: EmailQueue;
let counted: CountingPool<'rowReads' | 'markSent'>;
let worker: RunningWorker | undefined;

beforeAll(async () => {
  db = await createTestDatabase();
  smtp = await startTestSmtpServer({ acceptTogether: 5 });
  redis = createRedis(TEST_REDIS_URL);
  queue = createEmailQueue(redis, { name: queueName });
  counted = await createCountingPool(db.url, { rowReads: 'SELECT * FROM outbox WHERE id', markSent: "SET status = 'sent'" }, { maximumPoolSize: 6 });
  worker = await startTestWorker({ DATABASE_URL: db.url, SMTP_URL: smtp.url, EMAIL_QUEUE_NAME: queueName, WORKER_CONCURRENCY: '5' }, counted.pool);
});

afterAll(async () => {
  await worker?.close();
  await queue?.obliterate({ force: true }).catch(() => undefined);
  await queue?.close();
  redis?.disconnect();
  await counted?.pool.end();
  await smtp?.close();
  await db?.drop();
});

/** This repository's worker in this process on `pool`, with the test settings and `env` over them. */
const startTestWorker = (env: Record<string, string>, pool: DatabasePool): Promise<RunningWorker> =>
  startWorker(parseConfig({ NODE_ENV: 'test', LOG_LEVEL: 'silent', REDIS_URL: TEST_REDIS_URL, PUBLIC_BASE_URL: 'http://bank.test', METRICS_PORT: '0', ...env }), {
    pool,
    logger: createLogger({ name: 'test', level: 'silent', pretty: false }),
    host: '127.0.0.1',
  });

const payload = (i: number): MoneyReceivedEmailPayload => ({
  to: `r${run}_${i}@example.test`,
  username: `r${run}_${i}`,
  fullName: `Recipient ${i}`,
  item: { eventId: String(i + 1), transferId: String(i + 1), accountId: '7', kind: 'transfer', amount: '1250', currency: 'USD', sender: 'payer', memo: null, at: new Date().toISOString() },
});

describe('email jobs running at once', () => {
  it('read their rows and mark them sent in fewer statements than emails; each email goes out once and its row is sent', async () => {
    const ids: string[] = [];
    for (let i = 0; i < EMAILS; i++) ids.push(await outboxRepository.insert(db.pool, { kind: SEND_MONEY_RECEIVED_EMAIL, payload: payload(i) }));
    counted.reset();
    expect(await new OutboxPublisher({ pool: db.pool, queue }).enqueueOutbox(ids)).toBe(EMAILS);

    await smtp.waitFor((messages) => messages.filter((m) => m.to.some((to) => to.startsWith(`r${run}_`))).length >= EMAILS, 20_000);
    const deadline = Date.now() + 10_000;
    const statuses = () => db.pool.anyFirst(sql.type(z.object({ status: z.string() }))`SELECT status FROM outbox WHERE id = ANY (${sql.array(ids, 'uuid')})`);
    while ((await statuses()).some((status) => status !== 'sent') && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));

    expect(await statuses()).toEqual(ids.map(() => 'sent'));
    for (let i = 0; i < EMAILS; i++) expect(smtp.messagesTo(`r${run}_${i}@example.test`)).toHaveLength(1);
    // Five jobs at a time: those that get there while a read or a mark is in flight go together.
    expect(counted.counts.rowReads).toBeLessThan(EMAILS);
    expect(counted.counts.markSent).toBeLessThan(EMAILS);
  });
});

describe('outboxRepository.markSentMany', () => {
  it('marks the rows in one statement, strips their secrets, and answers which it marked (not one already sent, not an unknown id)', async () => {
    const a = await outboxRepository.insert(db.pool, { kind: 'send-login-email', payload: { to: 'a@example.test', token: 'secret-a' } });
    const b = await outboxRepository.insert(db.pool, { kind: 'send-login-email', payload: { to: 'b@example.test', token: 'secret-b' } });
    const already = await outboxRepository.insert(db.pool, { kind: 'send-login-email', payload: { to: 'c@example.test' } });
    await outboxRepository.markSentMany(db.pool, [already], ['token']);
    expect(await outboxRepository.markSentMany(db.pool, [b, already, randomUUID(), a], ['token'])).toEqual([true, false, false, true]);
    const rows = await outboxRepository.findByIds(db.pool, [a, b]);
    expect(rows.map((row) => [row.status, row.payload, row.sentAt !== null])).toEqual([
      ['sent', expect.not.objectContaining({ token: expect.anything() }), true],
      ['sent', expect.not.objectContaining({ token: expect.anything() }), true],
    ]);
    expect(await outboxRepository.markSentMany(db.pool, [], ['token'])).toEqual([]);
  });
});

describe('an email SMTP accepted while the database is down', () => {
  it('is marked sent once the database answers again, even after an outage longer than a few retries, and is not sent twice', async () => {
    // Every write to an outbox row fails while `down` holds (marking it sent or failed, recording
    // an attempt), as if PostgreSQL were restarting; reads go through, so the lost-job check
    // (every 500 ms here) would re-send, within the test, an email whose job gave up with its row
    // unsettled.
    let down = false;
    // A database of its own: the other suite's worker (another queue) would take this row for a
    // lost job of its own and send it through its own SMTP server.
    const own = await createTestDatabase({ poolSize: 2 });
    const failing = await createDatabasePool(own.url, {
      maximumPoolSize: 4,
      interceptors: [
        {
          name: 'database-down-for-outbox-writes',
          beforeQueryExecution: (_context, query) => {
            if (down && query.sql.includes('UPDATE outbox')) throw new Error('connection terminated (test: the database is restarting)');
            return null;
          },
        },
      ],
    });
    const otherSmtp = await startTestSmtpServer();
    const otherQueueName = `${queueName}-outage`;
    const otherQueue = createEmailQueue(redis, { name: otherQueueName });
    const outageWorker = await startTestWorker(
      { DATABASE_URL: own.url, SMTP_URL: otherSmtp.url, EMAIL_QUEUE_NAME: otherQueueName, WORKER_CONCURRENCY: '1', OUTBOX_JOB_CHECK_INTERVAL_MS: '500' },
      failing,
    );
    try {
      down = true;
      const address = `outage-${run}@example.test`;
      const id = await outboxRepository.insert(own.pool, { kind: SEND_MONEY_RECEIVED_EMAIL, payload: { ...payload(99), to: address } });
      expect(await new OutboxPublisher({ pool: own.pool, queue: otherQueue }).enqueueOutbox([id])).toBe(1);
      await otherSmtp.waitForMessageTo(address, 10_000);
      // Longer than the 5 tries over about 6 s the worker used to give up after.
      await new Promise((resolve) => setTimeout(resolve, 7_000));
      down = false;
      const status = () => own.pool.oneFirst(sql.type(z.object({ status: z.string() }))`SELECT status FROM outbox WHERE id = ${id}`);
      const deadline = Date.now() + 10_000;
      while ((await status()) !== 'sent' && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
      expect(await status()).toBe('sent');
      await new Promise((resolve) => setTimeout(resolve, 1_500)); // three lost-job checks
      expect(otherSmtp.messagesTo(address)).toHaveLength(1);
    } finally {
      down = false;
      await outageWorker.close();
      await otherQueue.obliterate({ force: true }).catch(() => undefined);
      await otherQueue.close();
      await failing.end();
      await own.drop();
      await otherSmtp.close();
    }
  }, 40_000);
});
