// Event retention (migration 0020) on the real PostgreSQL: events past the retention that both
// consumers handled and no delivery still waits to send are deleted, oldest first, with their
// finished deliveries and delivery logs; everything else stays, and the ledger is never touched.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { sql } from 'slonik';
import { z } from 'zod';
import { createTestDatabase, type TestDatabase } from '../../../test/db.ts';
import { createUser, idemKey } from '../../../test/factories.ts';
import { checkLedgerInvariants } from '../../../test/ledger-invariants.ts';
import { LedgerService } from '../ledger/ledger.service.ts';
import { eventsRepository } from './events.repository.ts';

let db: TestDatabase;
let ledger: LedgerService;
const DAY = 86_400;

beforeAll(async () => {
  db = await createTestDatabase();
  ledger = new LedgerService({ pool: db.pool });
});
afterAll(async () => {
  await db?.drop();
});

const count = (table: 'events' | 'webhook_deliveries' | 'webhook_delivery_attempts' | 'transfers' | 'entries') =>
  db.pool.oneFirst(sql.type(z.object({ n: z.number() }))`SELECT count(*)::int AS n FROM ${sql.identifier([table])}`);
const eventIds = () => db.pool.anyFirst(sql.type(z.object({ id: z.bigint() }))`SELECT id FROM events ORDER BY id`);

/** Eight transfer events, handled by both consumers, the first six dated 40 days back. */
async function eightEvents(): Promise<readonly bigint[]> {
  const alice = await createUser(db.pool);
  const bob = await createUser(db.pool);
  const a = await ledger.openAccount(alice, { currency: 'USD' });
  const b = await ledger.openAccount(bob, { currency: 'USD' });
  await ledger.deposit(alice, { accountId: a.id, amount: 1_000n, idempotencyKey: idemKey() });
  for (let i = 0; i < 7; i++) {
    await ledger.transfer(alice, { fromAccountId: a.id, toAccountId: b.id, amount: 1n, currency: 'USD', idempotencyKey: idemKey() });
  }
  const ids = await eventIds();
  await db.pool.query(sql.unsafe`UPDATE events SET notified_at = coalesce(notified_at, now()), webhooked_at = coalesce(webhooked_at, now())`);
  await db.pool.query(sql.unsafe`UPDATE events SET created_at = now() - interval '40 days' WHERE id = ANY(${sql.array(ids.slice(0, 6).map(String), 'int8')})`);
  return ids;
}

describe('event retention', () => {
  it('deletes handled events past the retention, oldest first, with their finished deliveries; keeps the rest and the ledger', async () => {
    const ids = await eightEvents();
    expect(ids).toHaveLength(8);
    const [, e1, e2, e3, , , e6] = ids as [bigint, bigint, bigint, bigint, bigint, bigint, bigint];
    // e1 not yet notified; e2 with a delivery still retrying; e3 with a delivered one and its log.
    await db.pool.query(sql.unsafe`UPDATE events SET notified_at = NULL WHERE id = ${e1}`);
    const owner = await createUser(db.pool);
    const webhook = await db.pool.oneFirst(sql.type(z.object({ id: z.bigint() }))`
      INSERT INTO webhooks (owner, url, event_types, signing_secret) VALUES (${owner.username}, 'https://hooks.example.test/', '{transfer.posted}', 's') RETURNING id`);
    await db.pool.query(sql.unsafe`INSERT INTO webhook_deliveries (webhook_id, event_id) VALUES (${webhook}, ${e2})`);
    const delivered = await db.pool.oneFirst(sql.type(z.object({ id: z.bigint() }))`
      INSERT INTO webhook_deliveries (webhook_id, event_id, status, next_attempt_at, attempts, delivered_at, last_status_code)
      VALUES (${webhook}, ${e3}, 'delivered', NULL, 1, now(), 204) RETURNING id`);
    await db.pool.query(sql.unsafe`INSERT INTO webhook_delivery_attempts (delivery_id, attempt, started_at, duration_ms, status_code) VALUES (${delivered}, 1, now(), 12, 204)`);
    const [transfers, entries] = [await count('transfers'), await count('entries')];

    // At most `limit` per call, from the oldest: the first two events are e0 (goes) and e1 (stays).
    expect(await eventsRepository.prune(db.pool, 30 * DAY, 2)).toBe(1);
    expect(await eventsRepository.prune(db.pool, 30 * DAY, 1_000)).toBe(3);
    expect(await eventIds()).toEqual([e1, e2, e6, ids[7]]);
    expect(await count('webhook_deliveries')).toBe(1);
    expect(await count('webhook_delivery_attempts')).toBe(0);
    // Nothing more is due; the ledger is what it was.
    expect(await eventsRepository.prune(db.pool, 30 * DAY, 1_000)).toBe(0);
    expect([await count('transfers'), await count('entries')]).toEqual([transfers, entries]);
    expect(await checkLedgerInvariants(db.pool)).toEqual([]);

    // Once handled and delivered they go too; a longer retention keeps them.
    await db.pool.query(sql.unsafe`UPDATE events SET notified_at = now() WHERE id = ${e1}`);
    await db.pool.query(sql.unsafe`UPDATE webhook_deliveries SET status = 'failed', next_attempt_at = NULL WHERE event_id = ${e2}`);
    expect(await eventsRepository.prune(db.pool, 50 * DAY, 1_000)).toBe(0);
    expect(await eventsRepository.prune(db.pool, 30 * DAY, 1_000)).toBe(2);
    expect(await eventIds()).toEqual([e6, ids[7]]);
    expect(await count('webhook_deliveries')).toBe(0);
  });
});
