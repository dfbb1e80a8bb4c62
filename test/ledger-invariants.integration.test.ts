// The invariant checker must see what it is for: each money-model invariant (3, 6, 7, 8) is broken
// on purpose in a transaction that is rolled back (triggers off for it, CHECKs still on), and the
// checker must name it. A checker that always answers [] would pass every storm test.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { sql, type DatabaseTransactionConnection } from 'slonik';
import { z } from 'zod';
import { LedgerService } from '@bank/shared/ledger/ledger.service';
import { createTestDatabase, type TestDatabase } from './db.ts';
import { createUser, idemKey } from './factories.ts';
import { checkLedgerInvariants } from './ledger-invariants.ts';

let db: TestDatabase;
let ledger: LedgerService;
let ids: { alice: bigint; bob: bigint; posted: bigint; hold: bigint };

beforeAll(async () => {
  db = await createTestDatabase();
  ledger = new LedgerService({ pool: db.pool });
  const alice = await createUser(db.pool);
  const bob = await createUser(db.pool);
  const a = await ledger.openAccount(alice, { currency: 'USD' });
  const b = await ledger.openAccount(bob, { currency: 'USD' });
  await ledger.deposit(alice, { accountId: a.id, amount: 1_000n, idempotencyKey: idemKey() });
  const posted = await ledger.transfer(alice, { fromAccountId: a.id, toAccountId: b.id, amount: 100n, currency: 'USD', idempotencyKey: idemKey() });
  const hold = await ledger.transfer(alice, { fromAccountId: a.id, toAccountId: b.id, amount: 50n, currency: 'USD', idempotencyKey: idemKey(), hold: { ttlSeconds: 600 } });
  ids = { alice: a.id, bob: b.id, posted: posted.transfer.id, hold: hold.transfer.id };
});
afterAll(async () => {
  await db?.drop();
});

class Rollback extends Error {}

/** The problems the checker finds after `corrupt` ran, in a transaction then rolled back. */
async function problemsAfter(corrupt: (tx: DatabaseTransactionConnection) => Promise<void>): Promise<string[]> {
  let found: string[] = [];
  await db.pool
    .transaction(async (tx) => {
      await tx.query(sql.unsafe`SET LOCAL session_replication_role = replica`);
      await corrupt(tx);
      found = await checkLedgerInvariants(tx);
      throw new Rollback();
    })
    .catch((error: unknown) => {
      if (!(error instanceof Rollback)) throw error;
    });
  return found;
}

const exec = (tx: DatabaseTransactionConnection, query: ReturnType<typeof sql.unsafe>) => tx.query(query);

describe('the ledger invariant checker', () => {
  it('finds nothing wrong in a sound ledger with a posted transfer and an active hold', async () => {
    expect(await checkLedgerInvariants(db.pool)).toEqual([]);
  });

  it('3: sees a pending hold with entries', async () => {
    const problems = await problemsAfter(async (tx) => {
      await exec(tx, sql.unsafe`INSERT INTO entries (account_id, transfer_id, amount, balance_after)
        VALUES (${ids.alice}, ${ids.hold}, -50, 850), (${ids.bob}, ${ids.hold}, 50, 150)`);
    });
    expect(problems.some((p) => p.startsWith(`3: transfer ${ids.hold}: pending transfer has entries`))).toBe(true);
  });

  it('6: sees holds above the balance', async () => {
    const problems = await problemsAfter(async (tx) => {
      await exec(tx, sql.unsafe`INSERT INTO transfers (from_account_id, to_account_id, amount, currency, initiated_by, status, expires_at)
        SELECT ${ids.alice}, ${ids.bob}, 10000, 'USD', owner, 'pending', now() + interval '1 hour' FROM accounts WHERE id = ${ids.alice}`);
    });
    expect(problems.some((p) => p.startsWith(`6: account ${ids.alice}`))).toBe(true);
  });

  it('7: sees a hold settled without a settling call', async () => {
    const problems = await problemsAfter(async (tx) => {
      await exec(tx, sql.unsafe`UPDATE transfers SET status = 'voided', resolved_at = now() WHERE id = ${ids.hold}`);
    });
    expect(problems).toContain(`7: hold ${ids.hold}: settled 0 times as voided`);
  });

  it('8: sees refunds above what the transfer moved', async () => {
    const problems = await problemsAfter(async (tx) => {
      await exec(tx, sql.unsafe`INSERT INTO transfers (from_account_id, to_account_id, amount, currency, kind, initiated_by, refunds_transfer_id)
        SELECT ${ids.bob}::bigint, ${ids.alice}::bigint, 60, 'USD', 'refund', owner, ${ids.posted}::bigint
          FROM accounts, generate_series(1, 2) WHERE id = ${ids.bob}`);
    });
    expect(problems.some((p) => p.startsWith(`8: transfer ${ids.posted} moved 100`))).toBe(true);
  });

  it('the checks above broke nothing for real: the rollbacks left the ledger sound', async () => {
    expect(await checkLedgerInvariants(db.pool)).toEqual([]);
    expect(await db.pool.oneFirst(sql.type(z.object({ n: z.number() }))`SELECT count(*)::int AS n FROM transfers`)).toBe(3);
  });
});
