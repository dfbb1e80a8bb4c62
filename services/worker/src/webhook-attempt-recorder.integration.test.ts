// Claiming and recording webhook attempts against the real PostgreSQL: a claim brings its event
// along (no query per delivery to read it); recording finished attempts: many in one statement, each
// only while its own claim still holds its delivery, and the delivery loop's recorder grouping
// the attempts that finish together into one write (one commit) instead of one write each.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { sql } from 'slonik';
import { z } from 'zod';
import { LedgerService } from '@bank/shared/ledger/ledger.service';
import { eventsRepository } from '@bank/shared/events/events.repository';
import { webhookRepository, type ClaimedDelivery } from '@bank/shared/webhooks/webhook.repository';
import { WebhookService } from '@bank/shared/webhooks/webhook.service';
import { createCountingPool, createTestDatabase, type CountingPool, type TestDatabase } from '../../../test/db.ts';
import { createUser, idemKey } from '../../../test/factories.ts';
import { attemptRecorder } from './webhook-dispatcher.ts';

let db: TestDatabase;
let ledger: LedgerService;
let webhooks: WebhookService;
/** A pool of its own whose statements that write the attempt log, and that read events, are counted. */
let counted: CountingPool<'attemptWrites' | 'eventReads'>;

beforeAll(async () => {
  db = await createTestDatabase();
  ledger = new LedgerService({ pool: db.pool });
  webhooks = new WebhookService({ pool: db.pool, policy: { requireHttps: false, allowPrivateTargets: true }, limits: { maxPerUser: 10 } });
  // Every event read names the events table as `events e`.
  counted = await createCountingPool(db.url, { attemptWrites: 'INSERT INTO webhook_delivery_attempts', eventReads: /\bevents e\b/ });
});

afterAll(async () => {
  await counted?.pool.end();
  await db?.drop();
});

/** `n` deliveries due now, fanned out from real events, claimed (leased) by this test. */
async function claimed(n: number): Promise<ClaimedDelivery[]> {
  const owner = await createUser(db.pool);
  const account = await ledger.openAccount(owner, { currency: 'USD' });
  await webhooks.createWebhook(owner, { url: 'http://127.0.0.1:9/hooks', eventTypes: ['transfer.posted'], allAccounts: false });
  for (let i = 0; i < n; i++) await ledger.deposit(owner, { accountId: account.id, amount: 10n + BigInt(i), idempotencyKey: idemKey() });
  await webhookRepository.fanOutNext(db.pool, 1_000);
  const claims = await webhookRepository.claimDue(db.pool, 1_000, 60_000);
  const mine = claims.filter((c) => c.url === 'http://127.0.0.1:9/hooks');
  expect(mine).toHaveLength(n);
  return mine;
}

describe('claimDue', () => {
  it('brings each delivery its event as it was written, in the one statement that claims them', async () => {
    const owner = await createUser(db.pool);
    const account = await ledger.openAccount(owner, { currency: 'USD' });
    await webhooks.createWebhook(owner, { url: 'http://127.0.0.1:9/claimed-events', eventTypes: ['transfer.posted'], allAccounts: false });
    for (const amount of [11n, 12n, 13n]) await ledger.deposit(owner, { accountId: account.id, amount, idempotencyKey: idemKey() });
    await webhookRepository.fanOutNext(db.pool, 1_000);
    counted.reset();
    const claims = (await webhookRepository.claimDue(counted.pool, 1_000, 60_000)).filter((c) => c.url.endsWith('/claimed-events'));
    expect(counted.counts.eventReads).toBe(1); // the claim itself, which joins the events
    expect(claims.map((c) => c.event.subject === 'transfer' && c.event.transfer.amount).sort()).toEqual([11n, 12n, 13n]);
    for (const claim of claims) {
      expect(claim.event).toEqual(await eventsRepository.findByPublicId(db.pool, claim.event.publicId));
      expect(claim.event.accounts).toEqual([expect.objectContaining({ owner: null }), { id: account.id, owner: owner.username }]);
    }
  });
});

const deliveryRow = z.object({ id: z.bigint(), status: z.string(), lease_token: z.string().nullable(), last_status_code: z.number().nullable(), due_later: z.boolean().nullable(), delivered: z.boolean() });
const deliveries = (ids: readonly bigint[]) =>
  db.pool.any(sql.type(deliveryRow)`
    SELECT id, status, lease_token::text, last_status_code, next_attempt_at > clock_timestamp() AS due_later, delivered_at IS NOT NULL AS delivered
      FROM webhook_deliveries WHERE id = ANY (${sql.array(ids, 'int8')}) ORDER BY id`);
const attemptsOf = (ids: readonly bigint[]) =>
  db.pool.any(sql.type(z.object({ delivery_id: z.bigint(), attempt: z.number(), status_code: z.number().nullable(), error: z.string().nullable() }))`
    SELECT delivery_id, attempt, status_code, error FROM webhook_delivery_attempts WHERE delivery_id = ANY (${sql.array(ids, 'int8')}) ORDER BY delivery_id`);

describe('webhookRepository.recordAttempts', () => {
  it('writes each attempt whose claim still holds its delivery, in one statement, and says which', async () => {
    const [delivered, stale, retried, failed] = await claimed(4);
    const startedAt = new Date();
    const answers = await webhookRepository.recordAttempts(db.pool, [
      { claim: delivered!, result: { startedAt, durationMs: 12, statusCode: 204, error: null, next: { status: 'delivered' } } },
      // A claim whose lease ran out and was taken again: its token no longer matches.
      { claim: { ...stale!, leaseToken: '00000000-0000-4000-8000-000000000000' }, result: { startedAt, durationMs: 5, statusCode: 204, error: null, next: { status: 'delivered' } } },
      { claim: retried!, result: { startedAt, durationMs: 30, statusCode: 500, error: 'answered 500', next: { status: 'pending', retryInMs: 60_000 } } },
      { claim: failed!, result: { startedAt, durationMs: 40, statusCode: null, error: 'timed out after 300 ms', next: { status: 'failed' } } },
    ]);
    expect(answers).toEqual([true, false, true, true]);
    const ids = [delivered!.id, stale!.id, retried!.id, failed!.id];
    expect(await deliveries(ids)).toEqual([
      { id: delivered!.id, status: 'delivered', lease_token: null, last_status_code: 204, due_later: null, delivered: true },
      // Untouched: still leased by the claim that holds it, no attempt logged.
      { id: stale!.id, status: 'pending', lease_token: stale!.leaseToken, last_status_code: null, due_later: true, delivered: false },
      { id: retried!.id, status: 'pending', lease_token: null, last_status_code: 500, due_later: true, delivered: false },
      { id: failed!.id, status: 'failed', lease_token: null, last_status_code: null, due_later: null, delivered: false },
    ]);
    expect(await attemptsOf(ids)).toEqual([
      { delivery_id: delivered!.id, attempt: 1, status_code: 204, error: null },
      { delivery_id: retried!.id, attempt: 1, status_code: 500, error: 'answered 500' },
      { delivery_id: failed!.id, attempt: 1, status_code: null, error: 'timed out after 300 ms' },
    ]);
  });

  it('records nothing for an empty list', async () => {
    await expect(webhookRepository.recordAttempts(db.pool, [])).resolves.toEqual([]);
  });
});

describe('attemptRecorder', () => {
  it('attempts that finish together are written together: fewer writes than attempts, each with its own answer', async () => {
    const claims = await claimed(12);
    const record = attemptRecorder(counted.pool);
    const before = counted.counts.attemptWrites;
    const stale = claims[5]!;
    const answers = await Promise.all(
      claims.map((claim) =>
        record(claim === stale ? { ...claim, leaseToken: '00000000-0000-4000-8000-000000000000' } : claim, {
          startedAt: new Date(),
          durationMs: 1,
          statusCode: 204,
          error: null,
          next: { status: 'delivered' },
        }),
      ),
    );
    expect(answers).toEqual(claims.map((claim) => claim !== stale));
    // The first goes at once, the eleven that arrive while it is in flight go together after it.
    expect(counted.counts.attemptWrites - before).toBe(2);
    expect((await attemptsOf(claims.map((c) => c.id))).map((a) => a.delivery_id)).toEqual(claims.filter((c) => c !== stale).map((c) => c.id));
  });

  it('a failed write fails each attempt of it, and the next write goes ahead', async () => {
    const claims = await claimed(2);
    const record = attemptRecorder(counted.pool);
    const done = { startedAt: new Date(), durationMs: 1, statusCode: 204, error: null, next: { status: 'delivered' as const } };
    // Not a uuid: the statement fails as a whole.
    await expect(record({ ...claims[0]!, leaseToken: 'not-a-token' }, done)).rejects.toThrow();
    await expect(record(claims[1]!, done)).resolves.toBe(true);
  });
});
