// Webhooks from the worker as a real child process (node services/worker/src/main.ts) against the
// real PostgreSQL, Redis and an HTTP receiver on 127.0.0.1: a worker SIGKILLed while an endpoint
// holds its request loses nothing. The delivery it held is sent again, with the same event id,
// by the next worker once its lease runs out; every event arrives at least once.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { sql } from 'slonik';
import { z } from 'zod';
import { LedgerService } from '@bank/shared/ledger/ledger.service';
import { WebhookService } from '@bank/shared/webhooks/webhook.service';
import { createTestDatabase, type TestDatabase } from '../../../test/db.ts';
import { createUser, idemKey } from '../../../test/factories.ts';
import { TEST_REDIS_URL } from '../../../test/services.ts';
import { startTestSmtpServer, type TestSmtpServer } from '../../../test/smtp.ts';
import { startWebhookReceiver, type WebhookReceiver } from '../../../test/webhook-receiver.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const run = randomBytes(4).toString('hex');
const TIMEOUT_MS = 1_500;

let db: TestDatabase;
let smtp: TestSmtpServer;
let receiver: WebhookReceiver;
const children = new Set<ChildProcess>();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

type WorkerProcess = { child: ChildProcess; output: () => string; exited: Promise<number | null> };

/** Starts `node services/worker/src/main.ts` and resolves once it logged "worker started". */
async function spawnWorker(): Promise<WorkerProcess> {
  const settings: Record<string, string | undefined> = {
    PATH: process.env.PATH,
    NODE_ENV: 'test',
    LOG_LEVEL: 'info',
    DATABASE_URL: db.url,
    REDIS_URL: TEST_REDIS_URL,
    SMTP_URL: smtp.url,
    PUBLIC_BASE_URL: 'http://bank.test',
    EMAIL_QUEUE_NAME: `test-webhook-proc-${run}`,
    REDIS_KEY_PREFIX: `test:webhook-proc:${run}:`,
    METRICS_PORT: '0',
    SHUTDOWN_TIMEOUT_MS: '10000',
    WEBHOOK_ALLOW_PRIVATE_TARGETS: 'true',
    WEBHOOK_POLL_INTERVAL_MS: '50',
    WEBHOOK_RETRY_BASE_MS: '50',
    WEBHOOK_RETRY_MAX_DELAY_MS: '200',
    WEBHOOK_TIMEOUT_MS: String(TIMEOUT_MS),
    // One attempt at a time, so the kill lands on exactly one delivery in flight.
    WEBHOOK_CONCURRENCY: '1',
  };
  const child = spawn(process.execPath, ['--disable-warning=ExperimentalWarning', 'services/worker/src/main.ts'], {
    cwd: root,
    env: Object.fromEntries(Object.entries(settings).filter((entry): entry is [string, string] => entry[1] !== undefined)),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => (children.delete(child), resolve(code))));
  const deadline = Date.now() + 15_000;
  while (!output.includes('"worker started"')) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`worker did not start:\n${output}`);
    await sleep(50);
  }
  return { child, output: () => output, exited };
}

const deliveryRows = () =>
  db.pool.any(sql.type(z.object({ event_id: z.string(), status: z.string(), attempts: z.number(), leased: z.boolean(), logged: z.number() }))`
    SELECT e.public_id::text AS event_id, d.status, d.attempts, d.lease_token IS NOT NULL AS leased,
           (SELECT count(*)::int FROM webhook_delivery_attempts a WHERE a.delivery_id = d.id) AS logged
      FROM webhook_deliveries d JOIN events e ON e.id = d.event_id ORDER BY d.id`);

beforeAll(async () => {
  db = await createTestDatabase();
  smtp = await startTestSmtpServer();
  receiver = await startWebhookReceiver();
});

afterAll(async () => {
  for (const child of children) child.kill('SIGKILL');
  await receiver?.close();
  await smtp?.close();
  await db?.drop();
});

describe('webhook worker process', () => {
  it('a worker SIGKILLed mid-delivery loses nothing: the next worker sends that event again, with the same id, and all the others', async () => {
    const ledger = new LedgerService({ pool: db.pool });
    const webhooks = new WebhookService({ pool: db.pool, policy: { requireHttps: false, allowPrivateTargets: true }, limits: { maxPerUser: 10 } });
    const alice = await createUser(db.pool);
    const bob = await createUser(db.pool);
    const account = await ledger.openAccount(alice, { currency: 'USD' });
    const other = await ledger.openAccount(bob, { currency: 'USD' });
    const { signingSecret } = await webhooks.createWebhook(alice, { url: `${receiver.url}/kill`, eventTypes: ['transfer.posted'], allAccounts: false });
    expect(signingSecret).toBeTruthy();
    await ledger.deposit(alice, { accountId: account.id, amount: 1_000n, idempotencyKey: idemKey() });
    for (let i = 1; i <= 5; i += 1) {
      await ledger.transfer(alice, { fromAccountId: account.id, toAccountId: other.id, amount: BigInt(i), currency: 'USD', idempotencyKey: idemKey() });
    }
    const events = await db.pool.manyFirst(sql.type(z.object({ id: z.string() }))`
      SELECT public_id::text AS id FROM events WHERE ${account.id} = ANY (account_ids) AND type = 'transfer.posted'`);
    expect(events).toHaveLength(6);

    // The endpoint holds each request for most of the timeout: the kill lands while one is held.
    receiver.answer(() => ({ status: 200, delayMs: TIMEOUT_MS - 300 }));
    const first = await spawnWorker();
    await receiver.waitFor(() => receiver.inFlight() > 0, 15_000);
    first.child.kill('SIGKILL');
    await first.exited;
    const atKill = receiver.received.map((r) => r.json.id);
    const held = atKill.at(-1)!;
    // The dead worker's claim is still on its delivery: counted, leased, nothing recorded.
    const heldRow = (await deliveryRows()).find((row) => row.event_id === held);
    expect(heldRow).toMatchObject({ status: 'pending', attempts: 1, leased: true, logged: 0 });

    receiver.answer(() => ({ status: 200 }));
    const second = await spawnWorker();
    const deadline = Date.now() + 30_000;
    let rows = await deliveryRows();
    while (rows.length < events.length || rows.some((row) => row.status !== 'delivered')) {
      if (Date.now() > deadline) throw new Error(`deliveries not all delivered: ${JSON.stringify(rows)}\n${second.output()}`);
      await sleep(50);
      rows = await deliveryRows();
    }
    const received = receiver.received.filter((r) => r.path === '/kill').map((r) => r.json.id);
    for (const id of events) expect(received).toContain(id);
    // The held one arrived twice with the same id: at least once, never under another id.
    expect(received.filter((id) => id === held).length).toBeGreaterThanOrEqual(2);
    expect(rows.find((row) => row.event_id === held)).toMatchObject({ status: 'delivered', attempts: 2, leased: false, logged: 1 });
    expect(new Set(received)).toEqual(new Set(events));
    second.child.kill('SIGTERM');
    expect(await second.exited).toBe(0);
  });
});
