// A login code must not wait behind a flood of informational emails: a storm of captured holds or
// every account's statement on the 1st can queue thousands of them, and a login code lives 10
// minutes (bench:edge once waited over a minute for one behind the money emails of its storms).
// Bulk kinds are enqueued with a BullMQ priority, the rest without, and BullMQ hands out jobs
// without a priority first. Real PostgreSQL (the outbox) and Redis (the queue, with a real
// BullMQ worker taking one job at a time). Also: handing a batch of rows to the queue reads them in
// one statement and enqueues only the pending ones.
import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Worker } from 'bullmq';
import { createCountingPool, createTestDatabase, type TestDatabase } from '../../../test/db.ts';
import { TEST_REDIS_URL } from '../../../test/services.ts';
import { SEND_LOGIN_EMAIL, SEND_PASSWORD_RESET_EMAIL, SEND_STATEMENT_EMAIL, SEND_VERIFICATION_EMAIL } from '../mail/email.schema.ts';
import { SEND_HOLD_CAPTURED_EMAIL, SEND_MONEY_RECEIVED_DIGEST_EMAIL, SEND_MONEY_RECEIVED_EMAIL, SEND_NEW_LOGIN_ADDRESS_EMAIL } from '../mail/notification-email.schema.ts';
import { BULK_EMAIL_KINDS, createEmailQueue, type EmailQueue } from '../queue/email-queue.ts';
import { createRedis, type Redis } from '../redis/redis.ts';
import { OutboxPublisher } from './outbox-publisher.ts';
import { outboxRepository } from './outbox.repository.ts';

const run = randomBytes(4).toString('hex');
const queueName = `test-email-priority-${run}`;

let db: TestDatabase;
let redis: Redis;
let queue: EmailQueue;
let publisher: OutboxPublisher;

beforeAll(async () => {
  db = await createTestDatabase();
  redis = createRedis(TEST_REDIS_URL);
  queue = createEmailQueue(redis, { name: queueName });
  publisher = new OutboxPublisher({ pool: db.pool, queue });
});

afterAll(async () => {
  await queue.obliterate({ force: true });
  await queue.close();
  redis.disconnect();
  await db.drop();
});

const insert = (kind: string) => outboxRepository.insert(db.pool, { kind, payload: { run } });

describe('email job priority', () => {
  it('puts money notifications and statements behind every identity and security email', () => {
    expect([...BULK_EMAIL_KINDS].sort()).toEqual(
      [SEND_MONEY_RECEIVED_EMAIL, SEND_MONEY_RECEIVED_DIGEST_EMAIL, 'send-withdrawal-email', SEND_HOLD_CAPTURED_EMAIL, 'send-hold-expired-email', SEND_STATEMENT_EMAIL].sort(),
    );
    for (const kind of [SEND_LOGIN_EMAIL, SEND_VERIFICATION_EMAIL, SEND_PASSWORD_RESET_EMAIL, SEND_NEW_LOGIN_ADDRESS_EMAIL]) expect(BULK_EMAIL_KINDS.has(kind)).toBe(false);
  });

  it('a login email enqueued after a backlog of money emails is sent before all of them', async () => {
    const bulkKinds = [SEND_MONEY_RECEIVED_EMAIL, SEND_HOLD_CAPTURED_EMAIL, SEND_MONEY_RECEIVED_DIGEST_EMAIL, SEND_STATEMENT_EMAIL];
    const bulk: string[] = [];
    for (let i = 0; i < 20; i += 1) bulk.push(await insert(bulkKinds[i % bulkKinds.length] as string));
    expect(await publisher.enqueueOutbox(bulk)).toBe(20);
    const login = await insert(SEND_LOGIN_EMAIL);
    const verification = await insert(SEND_VERIFICATION_EMAIL);
    expect(await publisher.enqueueOutbox([login])).toBe(1);
    expect(await publisher.enqueueOutbox([verification])).toBe(1);

    expect(await queue.getJobState(login)).toBe('waiting');
    expect(await Promise.all(bulk.map((id) => queue.getJobState(id)))).toEqual(bulk.map(() => 'prioritized'));

    const order: string[] = [];
    const workerRedis = createRedis(TEST_REDIS_URL, { purpose: 'worker' });
    const worker = new Worker(
      queueName,
      async (job) => {
        order.push(job.id ?? '');
      },
      { connection: workerRedis, concurrency: 1 },
    );
    try {
      const deadline = Date.now() + 20_000;
      while (order.length < 22 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    } finally {
      await worker.close();
      workerRedis.disconnect();
    }
    // The two identity emails first, in the order they came; then the backlog, in its order.
    expect(order).toEqual([login, verification, ...bulk]);
  });

  it('the sweep enqueues a bulk row with its priority and an identity row without', async () => {
    const money = await insert(SEND_MONEY_RECEIVED_EMAIL);
    const reset = await insert(SEND_PASSWORD_RESET_EMAIL);
    expect(await publisher.sweep({ pendingAfterMs: 0 })).toBeGreaterThanOrEqual(2);
    expect(await queue.getJobState(money)).toBe('prioritized');
    expect(await queue.getJobState(reset)).toBe('waiting');
  });
});

describe('enqueueOutbox', () => {
  it('reads a batch of rows in one statement and enqueues only the pending ones (not one enqueued, sent or unknown)', async () => {
    const counted = await createCountingPool(db.url, { lookups: 'FROM outbox WHERE id' });
    try {
      const countedPublisher = new OutboxPublisher({ pool: counted.pool, queue });
      const pending = [await insert(SEND_MONEY_RECEIVED_EMAIL), await insert(SEND_LOGIN_EMAIL), await insert(SEND_HOLD_CAPTURED_EMAIL)];
      const enqueued = await insert(SEND_MONEY_RECEIVED_EMAIL);
      await outboxRepository.markEnqueued(db.pool, [enqueued]);
      const sent = await insert(SEND_MONEY_RECEIVED_EMAIL);
      await outboxRepository.markSentMany(db.pool, [sent], []);
      counted.reset();
      expect(await countedPublisher.enqueueOutbox([...pending, enqueued, sent, randomUUID()])).toBe(3);
      expect(counted.counts.lookups).toBe(1);
      expect(await Promise.all(pending.map((id) => queue.getJobState(id)))).toEqual(['prioritized', 'waiting', 'prioritized']);
      expect(await queue.getJobState(enqueued)).toBe('unknown');
      expect(await queue.getJobState(sent)).toBe('unknown');
    } finally {
      await counted.pool.end();
    }
  });
});
