// Webhook delivery against the real PostgreSQL and a real HTTP receiver on 127.0.0.1 (private
// targets allowed, as in local development): signed bodies checked with the published scheme,
// retries after 500s and timeouts on a short configured base, redirects not followed, failure
// after the retry window, every event at least once with a stable id, redeliver, and the
// owner's accounts only (a banker's all_accounts webhook gets every account's).
import { createHmac } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Registry } from 'prom-client';
import { sql } from 'slonik';
import { z } from 'zod';
import type { Actor } from '@bank/shared/auth/actor';
import { LedgerService } from '@bank/shared/ledger/ledger.service';
import type { Account } from '@bank/shared/ledger/ledger.types';
import { createLogger } from '@bank/shared/logging/logger';
import { maxAttempts, type RetryPolicy } from '@bank/shared/webhooks/webhook-backoff';
import { WebhookService } from '@bank/shared/webhooks/webhook.service';
import type { WebhookDelivery } from '@bank/shared/webhooks/webhook.types';
import { createTestDatabase, type TestDatabase } from '../../../test/db.ts';
import { createUser, idemKey } from '../../../test/factories.ts';
import { startWebhookReceiver, type ReceivedWebhook, type WebhookReceiver } from '../../../test/webhook-receiver.ts';
import { createWebhookMetrics, startWebhookDispatcher, type WebhookDispatcher } from './webhook-dispatcher.ts';

const RETRY: RetryPolicy = { baseMs: 20, maxDelayMs: 80, windowMs: 400 };
const TIMEOUT_MS = 300;
const ALL_TYPES = ['transfer.posted', 'transfer.pending', 'transfer.captured', 'transfer.voided', 'transfer.expired', 'transfer.reversed', 'transfer.refunded', 'withdrawal.created', 'account.frozen', 'account.unfrozen'];

let db: TestDatabase;
let ledger: LedgerService;
let webhooks: WebhookService;
let receiver: WebhookReceiver;
let dispatcher: WebhookDispatcher;
const registry = new Registry();
let pathCounter = 0;

beforeAll(async () => {
  db = await createTestDatabase();
  ledger = new LedgerService({ pool: db.pool });
  webhooks = new WebhookService({ pool: db.pool, policy: { requireHttps: false, allowPrivateTargets: true }, limits: { maxPerUser: 10 } });
  receiver = await startWebhookReceiver();
  dispatcher = startWebhookDispatcher({
    pool: db.pool,
    logger: createLogger({ name: 'test', level: 'silent', pretty: false }),
    metrics: createWebhookMetrics(registry, db.pool),
    policy: { requireHttps: false, allowPrivateTargets: true },
    retry: RETRY,
    timeoutMs: TIMEOUT_MS,
    pollIntervalMs: 20,
    concurrency: 4,
  });
});

afterAll(async () => {
  await dispatcher?.stop();
  await receiver?.close();
  await db?.drop();
});

type Holder = { actor: Actor; account: Account };

async function holder(deposit = 0n, role: 'depositor' | 'banker' = 'depositor'): Promise<Holder> {
  const actor = await createUser(db.pool, { role });
  const account = await ledger.openAccount(actor, { currency: 'USD' });
  if (deposit > 0n) await ledger.deposit(actor, { accountId: account.id, amount: deposit, idempotencyKey: idemKey() });
  return { actor, account };
}

const send = (from: Holder, to: Holder, amount: bigint) =>
  ledger.transfer(from.actor, { fromAccountId: from.account.id, toAccountId: to.account.id, amount, currency: 'USD', idempotencyKey: idemKey() });

/** A webhook of `actor` on its own path of the receiver; the requests to it are `at(path)`. */
async function subscribe(actor: Actor, options: { eventTypes?: string[]; allAccounts?: boolean } = {}) {
  const path = `/hook-${(pathCounter += 1)}`;
  const created = await webhooks.createWebhook(actor, { url: `${receiver.url}${path}`, eventTypes: options.eventTypes ?? ALL_TYPES, allAccounts: options.allAccounts ?? false });
  return { ...created, path };
}
const at = (path: string) => receiver.received.filter((r) => r.path === path);

/** The published scheme, as a receiver would write it (README): HMAC-SHA256 of `<t>.<raw body>`, keyed with the secret as returned. */
function verified(request: ReceivedWebhook, secret: string): boolean {
  const header = String(request.headers['bank-signature'] ?? '');
  const fields = Object.fromEntries(header.split(',').map((part) => part.split('=') as [string, string]));
  const expected = createHmac('sha256', secret).update(`${fields.t}.${request.rawBody}`).digest('hex');
  return fields.v1 === expected && Math.abs(Date.now() / 1000 - Number(fields.t)) < 300;
}

async function deliveriesOf(actor: Actor, webhookId: bigint): Promise<readonly WebhookDelivery[]> {
  return (await webhooks.listDeliveries(actor, { webhookId, pageSize: 200 })).items;
}

/** Polls the delivery log until `predicate` holds (the worker's loops run on their own). */
async function waitForDeliveries(actor: Actor, webhookId: bigint, predicate: (deliveries: readonly WebhookDelivery[]) => boolean, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const deliveries = await deliveriesOf(actor, webhookId);
    if (predicate(deliveries)) return deliveries;
    if (Date.now() > deadline) throw new Error(`deliveries never matched: ${JSON.stringify(deliveries, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v))}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const eventIdsOf = (accountId: bigint) =>
  db.pool.manyFirst(sql.type(z.object({ id: z.string() }))`SELECT public_id::text AS id FROM events WHERE ${accountId} = ANY (account_ids) ORDER BY id`);

describe('webhook delivery', () => {
  it("delivers the events of the owner's accounts, signed with the published scheme, with the Transfer as the API shows it", async () => {
    const alice = await holder();
    const bob = await holder();
    const aliceHook = await subscribe(alice.actor);
    const bobHook = await subscribe(bob.actor);
    const deposit = await ledger.deposit(alice.actor, { accountId: alice.account.id, amount: 1_000n, idempotencyKey: idemKey() });
    const moved = await send(alice, bob, 250n);

    await receiver.waitFor(() => at(aliceHook.path).length === 2 && at(bobHook.path).length === 1);
    const [first, second] = at(aliceHook.path);
    for (const request of [first!, second!]) {
      expect(verified(request, aliceHook.signingSecret)).toBe(true);
      expect(verified(request, bobHook.signingSecret)).toBe(false);
      expect(request.method).toBe('POST');
      expect(request.headers['content-type']).toBe('application/json');
      expect(request.headers['bank-event-id']).toBe(request.json.id);
      expect(request.json.type).toBe('transfer.posted');
      expect(Object.keys(request.json).sort()).toEqual(['createdAt', 'data', 'id', 'type']);
    }
    // The order is not promised; each event arrives with its own data.
    const byTransfer = new Map(at(aliceHook.path).map((r) => [r.json.data.id, r.json]));
    expect(byTransfer.get(String(deposit.transfer.id))?.data).toMatchObject({ amount: '1000', kind: 'TRANSFER_KIND_DEPOSIT', toAccountId: String(alice.account.id), currency: 'USD', status: 'TRANSFER_STATUS_POSTED' });
    expect(byTransfer.get(String(moved.transfer.id))?.data).toMatchObject({ amount: '250', fromAccountId: String(alice.account.id), toAccountId: String(bob.account.id), memo: '' });
    // Bob's webhook got the transfer to him, not Alice's deposit.
    expect(at(bobHook.path).map((r) => r.json.data.id)).toEqual([String(moved.transfer.id)]);
    expect(at(bobHook.path)[0]!.json.id).toBe(byTransfer.get(String(moved.transfer.id))?.id);

    const log = await waitForDeliveries(alice.actor, aliceHook.webhook.id, (d) => d.length === 2 && d.every((x) => x.status === 'delivered'));
    for (const delivery of log) {
      expect(delivery).toMatchObject({ attempts: 1, lastStatusCode: 200, lastError: null, nextAttemptAt: null });
      expect(delivery.attemptLog).toEqual([expect.objectContaining({ attempt: 1, statusCode: 200, error: null })]);
      expect(delivery.deliveredAt).toBeInstanceOf(Date);
    }
  });

  it('retries after 500s, each time with the same event id, and logs each status code', async () => {
    const carol = await holder();
    const hook = await subscribe(carol.actor, { eventTypes: ['transfer.posted'] });
    let calls = 0;
    receiver.answer((request) => (request.path === hook.path ? { status: (calls += 1) <= 2 ? 500 : 200 } : { status: 200 }));
    await ledger.deposit(carol.actor, { accountId: carol.account.id, amount: 5n, idempotencyKey: idemKey() });

    const [delivery] = await waitForDeliveries(carol.actor, hook.webhook.id, (d) => d[0]?.status === 'delivered');
    expect(delivery).toMatchObject({ attempts: 3, lastStatusCode: 200 });
    expect(delivery!.attemptLog.map((a) => a.statusCode)).toEqual([500, 500, 200]);
    expect(delivery!.attemptLog[0]!.error).toBe('answered 500');
    expect(new Set(at(hook.path).map((r) => r.json.id))).toEqual(new Set([delivery!.eventId]));
    expect(at(hook.path).map((r) => r.headers['bank-delivery-attempt'])).toEqual(['1', '2', '3']);
    receiver.answer(() => ({ status: 200 }));
  });

  it('gives up on an attempt after the configured timeout and delivers on the retry', async () => {
    const dave = await holder();
    const hook = await subscribe(dave.actor, { eventTypes: ['transfer.posted'] });
    let calls = 0;
    receiver.answer((request) => (request.path === hook.path && (calls += 1) === 1 ? { status: 200, delayMs: TIMEOUT_MS * 4 } : { status: 200 }));
    await ledger.deposit(dave.actor, { accountId: dave.account.id, amount: 5n, idempotencyKey: idemKey() });

    const [delivery] = await waitForDeliveries(dave.actor, hook.webhook.id, (d) => d[0]?.status === 'delivered');
    expect(delivery!.attempts).toBe(2);
    expect(delivery!.attemptLog[0]).toMatchObject({ statusCode: null, error: expect.stringContaining(`timed out after ${TIMEOUT_MS} ms`) });
    expect(delivery!.attemptLog[1]).toMatchObject({ statusCode: 200, error: null });
    receiver.answer(() => ({ status: 200 }));
  });

  it('does not follow a redirect: a 3xx is a failed attempt, and nothing reaches the redirect target', async () => {
    const erin = await holder();
    const hook = await subscribe(erin.actor, { eventTypes: ['transfer.posted'] });
    receiver.answer((request) => (request.path === hook.path ? { status: 302, headers: { location: `${receiver.url}/redirect-target` } } : { status: 200 }));
    await ledger.deposit(erin.actor, { accountId: erin.account.id, amount: 5n, idempotencyKey: idemKey() });

    const [delivery] = await waitForDeliveries(erin.actor, hook.webhook.id, (d) => (d[0]?.attemptLog.length ?? 0) >= 2);
    expect(delivery!.status).not.toBe('delivered');
    expect(delivery!.attemptLog[0]).toMatchObject({ statusCode: 302, error: expect.stringContaining('redirects are not followed') });
    expect(at('/redirect-target')).toHaveLength(0);
    await webhooks.deleteWebhook(erin.actor, hook.webhook.id);
    receiver.answer(() => ({ status: 200 }));
  });

  it('fails a delivery for good once the retry window is used up', async () => {
    const fay = await holder();
    const hook = await subscribe(fay.actor, { eventTypes: ['transfer.posted'] });
    receiver.answer((request) => ({ status: request.path === hook.path ? 503 : 200 }));
    await ledger.deposit(fay.actor, { accountId: fay.account.id, amount: 5n, idempotencyKey: idemKey() });

    const [delivery] = await waitForDeliveries(fay.actor, hook.webhook.id, (d) => d[0]?.status === 'failed');
    expect(delivery).toMatchObject({ attempts: maxAttempts(RETRY), lastStatusCode: 503, nextAttemptAt: null });
    expect(at(hook.path)).toHaveLength(maxAttempts(RETRY));

    // Redeliver: sent again now with the same event id, with a fresh round of retries.
    receiver.answer(() => ({ status: 200 }));
    const redelivered = await webhooks.redeliver(fay.actor, { webhookId: hook.webhook.id, deliveryId: delivery!.id });
    expect(redelivered.status).toBe('pending');
    const [after] = await waitForDeliveries(fay.actor, hook.webhook.id, (d) => d[0]?.status === 'delivered');
    expect(after!.attempts).toBe(maxAttempts(RETRY) + 1);
    expect(at(hook.path).at(-1)!.json.id).toBe(delivery!.eventId);
  });

  it('delivers every event at least once with a stable id under a burst of transfers', async () => {
    const gus = await holder(10_000n);
    const hal = await holder();
    const hook = await subscribe(gus.actor);
    // Every fifth request fails once: those events come again, with the same id.
    receiver.answer((request, n) => ({ status: request.path === hook.path && n % 5 === 0 ? 500 : 200 }));
    await Promise.all(Array.from({ length: 30 }, (_, i) => send(gus, hal, BigInt(i + 1))));
    await ledger.withdraw(gus.actor, { accountId: gus.account.id, amount: 7n, destination: 'DE89370400440532013000', idempotencyKey: idemKey() });

    const expected = await eventIdsOf(gus.account.id);
    // The deposit before the webhook existed is not sent; the 30 transfers and the withdrawal are.
    await waitForDeliveries(gus.actor, hook.webhook.id, (d) => d.length === 31 && d.every((x) => x.status === 'delivered'));
    const ids = new Set(at(hook.path).map((r) => r.json.id));
    expect(ids.size).toBe(31);
    for (const id of ids) expect(expected).toContain(id);
    for (const request of at(hook.path)) expect(verified(request, hook.signingSecret)).toBe(true);
    // The withdrawal came (more than once when its request drew one of the 500s), always as one event.
    const withdrawals = at(hook.path).filter((r) => r.json.type === 'withdrawal.created');
    expect(withdrawals.length).toBeGreaterThanOrEqual(1);
    expect(new Set(withdrawals.map((r) => r.json.id)).size).toBe(1);
    receiver.answer(() => ({ status: 200 }));
  });

  it("sends a banker's all_accounts webhook every account's events, and a user's none of others'", async () => {
    const banker = await holder(0n, 'banker');
    const ida = await holder();
    const jon = await holder();
    const all = await subscribe(banker.actor, { eventTypes: ['account.frozen'], allAccounts: true });
    const own = await subscribe(jon.actor, { eventTypes: ['account.frozen'] });
    await ledger.freezeAccount(banker.actor, { accountId: ida.account.id, reason: 'review' });

    await receiver.waitFor(() => at(all.path).length === 1);
    expect(at(all.path)[0]!.json).toMatchObject({ type: 'account.frozen', data: { id: String(ida.account.id), status: 'ACCOUNT_STATUS_FROZEN', owner: ida.actor.username } });
    await dispatcher.fanOut();
    expect(await deliveriesOf(jon.actor, own.webhook.id)).toHaveLength(0);
  });

  it('two workers running side by side send each delivery once when nothing fails (leases keep them apart)', async () => {
    const second = startWebhookDispatcher({
      pool: db.pool,
      logger: createLogger({ name: 'test', level: 'silent', pretty: false }),
      metrics: createWebhookMetrics(new Registry(), db.pool),
      policy: { requireHttps: false, allowPrivateTargets: true },
      retry: RETRY,
      timeoutMs: TIMEOUT_MS,
      pollIntervalMs: 20,
      concurrency: 4,
    });
    try {
      const kim = await holder(10_000n);
      const lea = await holder();
      const hook = await subscribe(kim.actor, { eventTypes: ['transfer.posted'] });
      receiver.answer(() => ({ status: 200, delayMs: 20 }));
      await Promise.all(Array.from({ length: 40 }, (_, i) => send(kim, lea, BigInt(i + 1))));
      await waitForDeliveries(kim.actor, hook.webhook.id, (d) => d.length === 40 && d.every((x) => x.status === 'delivered'));
      const ids = at(hook.path).map((r) => r.json.id);
      expect(ids).toHaveLength(40);
      expect(new Set(ids).size).toBe(40);
    } finally {
      await second.stop();
      receiver.answer(() => ({ status: 200 }));
    }
  });

  it('counts attempts by outcome and the deliveries still pending', async () => {
    const text = await registry.metrics();
    expect(text).toMatch(/bank_webhook_delivery_attempts_total\{outcome="delivered"\} [1-9]/);
    expect(text).toMatch(/bank_webhook_delivery_attempts_total\{outcome="http_error"\} [1-9]/);
    expect(text).toMatch(/bank_webhook_delivery_attempts_total\{outcome="timeout"\} [1-9]/);
    expect(text).toMatch(/bank_webhook_delivery_attempts_total\{outcome="redirect"\} [1-9]/);
    expect(text).toMatch(/bank_webhook_deliveries_pending \d+/);
    expect(text).toMatch(/bank_webhook_deliveries_failed_total [1-9]/);
  });
});
