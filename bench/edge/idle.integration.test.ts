// The bench's wait for the worker, on a real migrated database: it sees each kind of work left
// (an event a consumer has not handled, an unsent email, a pending webhook delivery), gives up at
// its bound saying what was left, and returns at once when nothing is.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import pg from 'pg';
import { sql } from 'slonik';
import { LedgerService } from '../../shared/src/ledger/ledger.service.ts';
import { outboxRepository } from '../../shared/src/outbox/outbox.repository.ts';
import { createTestDatabase, type TestDatabase } from '../../test/db.ts';
import { createUser, idemKey } from '../../test/factories.ts';
import { readBacklog, waitForIdleWorker } from './idle.ts';

let db: TestDatabase;
let client: pg.Client;

beforeAll(async () => {
  db = await createTestDatabase();
  client = new pg.Client({ connectionString: db.url });
  await client.connect();
});

afterAll(async () => {
  await client?.end();
  await db?.drop();
});

describe('waitForIdleWorker', () => {
  it('returns at once on a database with nothing left to do', async () => {
    expect(await readBacklog(client)).toEqual({ eventsUnnotified: 0, eventsUnwebhooked: 0, emailsUnsent: 0, deliveriesPending: 0 });
    expect((await waitForIdleWorker(db.url, 5_000)).leftOver).toBeNull();
  });

  it('sees an unhandled event and an unsent email, gives up at its bound saying so, and returns once they are done', async () => {
    const owner = await createUser(db.pool);
    const ledger = new LedgerService({ pool: db.pool });
    const account = await ledger.openAccount(owner, { currency: 'USD' });
    await ledger.deposit(owner, { accountId: account.id, amount: 100n, idempotencyKey: idemKey() });
    await db.pool.query(sql.unsafe`UPDATE events SET notified_at = NULL`); // as if the notifier had not got to it
    const email = await outboxRepository.insert(db.pool, { kind: 'send-login-email', payload: {} });

    // Gives up at its bound and says what was left.
    expect((await waitForIdleWorker(db.url, 300)).leftOver).toMatchObject({ eventsUnnotified: 1, emailsUnsent: 1 });

    const waiting = waitForIdleWorker(db.url, 10_000);
    await db.pool.query(sql.unsafe`UPDATE events SET notified_at = now(), webhooked_at = coalesce(webhooked_at, now())`);
    await outboxRepository.markSentMany(db.pool, [email], []);
    expect((await waiting).leftOver).toBeNull();
  });
});
