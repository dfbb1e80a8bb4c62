// Statements on the real database: opening and closing balances, the period's entries oldest
// first with their counterparties, the holds pending at the end, and who may read one.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { sql } from 'slonik';
import { createTestDatabase, type TestDatabase } from '../../../test/db.ts';
import { createUser, idemKey } from '../../../test/factories.ts';
import type { Actor } from '../auth/actor.ts';
import type { Account } from './ledger.types.ts';
import { LedgerService } from './ledger.service.ts';
import { statementCsv } from './statement.ts';

let db: TestDatabase;
let ledger: LedgerService;
let banker: Actor;

beforeAll(async () => {
  db = await createTestDatabase();
  ledger = new LedgerService({ pool: db.pool });
  banker = await createUser(db.pool, { role: 'banker' });
});
afterAll(async () => {
  await db?.drop();
});

type Holder = { actor: Actor; account: Account };

async function holder(): Promise<Holder> {
  const actor = await createUser(db.pool);
  return { actor, account: await ledger.openAccount(actor, { currency: 'USD' }) };
}

const pause = () => new Promise((resolve) => setTimeout(resolve, 5));
const dbNow = () => db.pool.oneFirst(sql.unsafe`SELECT clock_timestamp() AS now`) as Promise<Date>;

describe('getStatement', () => {
  it('gives opening balance, the entries in range oldest first, holds at the end and the closing balance', async () => {
    const alice = await holder();
    const bob = await holder();
    await ledger.deposit(alice.actor, { accountId: alice.account.id, amount: 10_000n, idempotencyKey: idemKey() });
    await pause();
    const since = await dbNow();
    await pause();
    await ledger.transfer(alice.actor, { fromAccountId: alice.account.id, toAccountId: bob.account.id, amount: 1_234n, currency: 'USD', idempotencyKey: idemKey(), memo: 'rent', reference: 'INV-1' });
    await ledger.transfer(bob.actor, { fromAccountId: bob.account.id, toAccountId: alice.account.id, amount: 34n, currency: 'USD', idempotencyKey: idemKey() });
    await ledger.withdraw(alice.actor, { accountId: alice.account.id, amount: 100n, destination: 'DE89370400440532013000', idempotencyKey: idemKey() });
    await ledger.transfer(alice.actor, { fromAccountId: alice.account.id, toAccountId: bob.account.id, amount: 500n, currency: 'USD', idempotencyKey: idemKey(), hold: { ttlSeconds: 3_600 } });
    await pause();
    const until = await dbNow();
    await pause();
    await ledger.deposit(alice.actor, { accountId: alice.account.id, amount: 7n, idempotencyKey: idemKey() });

    const statement = await ledger.getStatement(alice.actor, { accountId: alice.account.id, since, until });
    expect(statement.openingBalance).toBe(10_000n);
    expect(statement.lines.map((l) => [l.kind, l.counterparty, l.amount, l.balanceAfter, l.memo, l.reference])).toEqual([
      ['transfer', bob.actor.username, -1_234n, 8_766n, 'rent', 'INV-1'],
      ['transfer', bob.actor.username, 34n, 8_800n, null, null],
      ['withdrawal', 'bank', -100n, 8_700n, null, null],
    ]);
    expect(statement.closingBalance).toBe(8_700n);
    expect(statement.totalIn).toBe(34n);
    expect(statement.totalOut).toBe(-1_334n);
    expect(statement.closingBalance - statement.openingBalance).toBe(statement.totalIn + statement.totalOut);
    expect(statement.pendingHolds).toMatchObject([{ counterparty: bob.actor.username, amount: 500n }]);

    const csv = statementCsv(statement).split('\r\n');
    expect(csv).toHaveLength(5);
    expect(csv[1]).toContain('"rent","INV-1","-12.34","87.66","USD"');

    // Without a range: the month so far, which holds every entry of this new account.
    const month = await ledger.getStatement(alice.actor, { accountId: alice.account.id });
    expect(month.lines.map((l) => l.kind)).toEqual(['deposit', 'transfer', 'transfer', 'withdrawal', 'deposit']);
    expect(month.lines[0]?.counterparty).toBe('bank');
    expect(month.openingBalance).toBe(0n);
    expect(month.closingBalance).toBe(8_707n);
  });

  it('lists every entry of the period in posting order', async () => {
    const alice = await holder();
    for (let i = 0; i < 25; i += 1) await ledger.deposit(alice.actor, { accountId: alice.account.id, amount: 1n, idempotencyKey: idemKey() });
    const statement = await ledger.getStatement(alice.actor, { accountId: alice.account.id });
    expect(statement.lines.map((l) => l.balanceAfter)).toEqual(Array.from({ length: 25 }, (_, i) => BigInt(i + 1)));
  });

  it('lets the owner and a banker read it; another user finds no such account', async () => {
    const alice = await holder();
    const mallory = await holder();
    await expect(ledger.getStatement(banker, { accountId: alice.account.id })).resolves.toMatchObject({ account: { owner: alice.actor.username } });
    await expect(ledger.getStatement(mallory.actor, { accountId: alice.account.id })).rejects.toMatchObject({ code: 'ACCOUNT_NOT_FOUND' });
    await expect(ledger.getStatement(alice.actor, { accountId: alice.account.id, since: new Date('2026-01-02'), until: new Date('2026-01-01') }))
      .rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });
});
