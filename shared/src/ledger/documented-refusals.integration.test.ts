// Answers the API documents (proto error lists and comments) that ordinary traffic rarely shows,
// on the real database: the deposit refused because the funding account would pass int64 (the
// bound that keeps every other balance from overflowing, which is why ReverseTransfer documents no
// AMOUNT_OUT_OF_RANGE), a void allowed while its sender is frozen and its receiver closed, and an
// empty frozen account that cannot be closed.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { sql } from 'slonik';
import { z } from 'zod';
import { createTestDatabase, type TestDatabase } from '../../../test/db.ts';
import { balanceOf, createUser, fundedHolder, idemKey } from '../../../test/factories.ts';
import { checkLedgerInvariants } from '../../../test/ledger-invariants.ts';
import type { Actor } from '../auth/actor.ts';
import { LedgerService } from './ledger.service.ts';

const INT64_MAX = 9_223_372_036_854_775_807n;

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

const holder = (currency = 'USD', funds = 0n) => fundedHolder(db.pool, ledger, funds, currency);
const balance = (id: bigint) => balanceOf(db.pool, id);

describe('documented refusals', () => {
  it('refuses a deposit that would take the funding account past -(2^63 - 1) with AMOUNT_OUT_OF_RANGE; one reaching it exactly passes, and a reversal there still fits', async () => {
    const alice = await holder('CHF');
    const funding = await db.pool.oneFirst(sql.type(z.object({ id: z.bigint() }))`
      SELECT id FROM accounts WHERE is_system AND kind = 'funding' AND currency = 'CHF'`);
    // No API call moves 2^63 at once (at most 10^15 a movement): the history of ~9,200 maximal
    // credits is written as one posted credit, with its entries, so every invariant still holds.
    const credited = INT64_MAX - 50n;
    await db.pool.transaction(async (tx) => {
      const transferId = await tx.oneFirst(sql.type(z.object({ id: z.bigint() }))`
        INSERT INTO transfers (from_account_id, to_account_id, amount, currency, kind, initiated_by, memo)
        VALUES (${funding}, ${alice.account.id}, ${credited}, 'CHF', 'deposit', ${banker.username}, 'years of credits')
        RETURNING id`);
      await tx.query(sql.type(z.object({}))`
        INSERT INTO entries (account_id, transfer_id, amount, balance_after)
        VALUES (${funding}, ${transferId}, ${-credited}, ${-credited}), (${alice.account.id}, ${transferId}, ${credited}, ${credited})`);
      await tx.query(sql.type(z.object({}))`
        UPDATE accounts SET balance = balance + CASE WHEN id = ${funding} THEN ${-credited}::bigint ELSE ${credited}::bigint END
         WHERE id IN (${funding}, ${alice.account.id})`);
    });
    expect(await checkLedgerInvariants(db.pool)).toEqual([]);

    const credit = (amount: bigint, idempotencyKey = idemKey()) =>
      ledger.deposit(banker, { accountId: alice.account.id, amount, memo: 'counter', idempotencyKey });
    const key = idemKey();
    await expect(credit(51n, key)).rejects.toMatchObject({ code: 'AMOUNT_OUT_OF_RANGE' });
    expect([await balance(funding), await balance(alice.account.id)]).toEqual([-credited, credited]);
    // The refusal gave the key back: the same key with an amount that fits moves money once.
    expect((await credit(50n, key)).replayed).toBe(false);
    expect([await balance(funding), await balance(alice.account.id)]).toEqual([-INT64_MAX, INT64_MAX]);
    await expect(credit(1n)).rejects.toMatchObject({ code: 'AMOUNT_OUT_OF_RANGE' });
    // At that extreme a reversal still fits: it gives back only what left, to INT64_MAX at most.
    const withdrawal = await ledger.withdraw(alice.actor, { accountId: alice.account.id, amount: 10n, destination: 'CH93 0076 2011 6238 5295 7', idempotencyKey: idemKey() });
    const reversal = await ledger.reverseTransfer(banker, { transferId: withdrawal.transfer.id, memo: 'returned', idempotencyKey: idemKey() });
    expect(reversal.toBalance).toBe(INT64_MAX);
    expect(await checkLedgerInvariants(db.pool)).toEqual([]);
  });

  it('voids a hold while its sender is frozen and its receiver closed: it moves nothing and frees the reservation', async () => {
    const alice = await holder('USD', 1_000n);
    const bob = await holder('USD');
    const held = await ledger.transfer(alice.actor, {
      fromAccountId: alice.account.id, toAccountId: bob.account.id, amount: 400n, currency: 'USD', idempotencyKey: idemKey(), hold: { ttlSeconds: 600 },
    });
    await ledger.closeAccount(bob.actor, bob.account.id);
    await ledger.freezeAccount(banker, { accountId: alice.account.id, reason: 'review' });
    expect((await ledger.getAccount(alice.actor, alice.account.id)).availableBalance).toBe(600n);

    const voided = await ledger.voidTransfer(alice.actor, { transferId: held.transfer.id, idempotencyKey: idemKey() });
    expect(voided.transfer.status).toBe('voided');
    expect(await ledger.getAccount(alice.actor, alice.account.id)).toMatchObject({ status: 'frozen', balance: 1_000n, availableBalance: 1_000n });
    expect(await checkLedgerInvariants(db.pool)).toEqual([]);
  });

  it('refuses to close a frozen account with ACCOUNT_FROZEN even when it is empty', async () => {
    const alice = await holder('USD');
    await ledger.freezeAccount(banker, { accountId: alice.account.id, reason: 'review' });
    await expect(ledger.closeAccount(alice.actor, alice.account.id)).rejects.toMatchObject({ code: 'ACCOUNT_FROZEN' });
    await ledger.unfreezeAccount(banker, { accountId: alice.account.id, reason: 'cleared' });
    expect((await ledger.closeAccount(alice.actor, alice.account.id)).status).toBe('closed');
  });
});
