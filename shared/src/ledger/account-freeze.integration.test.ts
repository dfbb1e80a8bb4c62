// Freezing on the real database: only a banker freezes or unfreezes, with a reason, recorded in
// the audit trail in the same transaction; a frozen account is readable but moves no money, cannot
// be closed, and still holds its currency's place for its owner.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { sql } from 'slonik';
import { z } from 'zod';
import { createTestDatabase, type TestDatabase } from '../../../test/db.ts';
import { createUser, idemKey } from '../../../test/factories.ts';
import { checkLedgerInvariants } from '../../../test/ledger-invariants.ts';
import type { Actor } from '../auth/actor.ts';
import { LedgerService } from './ledger.service.ts';

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

async function funded(amount: bigint) {
  const actor = await createUser(db.pool);
  const account = await ledger.openAccount(actor, { currency: 'USD' });
  if (amount > 0n) await ledger.deposit(actor, { accountId: account.id, amount, idempotencyKey: idemKey() });
  return { actor, account };
}

const auditRows = (target: string) =>
  db.pool.any(sql.type(z.object({ actor: z.string(), action: z.string(), reason: z.string().nullable() }))`
    SELECT actor, action, reason FROM audit_events WHERE target = ${target} ORDER BY id`);

describe('freezing an account', () => {
  it('lets a banker freeze with a reason: the account reads as frozen and the trail has one row', async () => {
    const alice = await funded(100n);
    const frozen = await ledger.freezeAccount(banker, { accountId: alice.account.id, reason: 'suspected fraud' });
    expect(frozen).toMatchObject({ id: alice.account.id, status: 'frozen', balance: 100n });
    expect(await ledger.getAccount(alice.actor, alice.account.id)).toMatchObject({ status: 'frozen' });
    // Freezing again changes nothing and writes nothing.
    await ledger.freezeAccount(banker, { accountId: alice.account.id, reason: 'again' });
    expect(await auditRows(`account:${alice.account.id}`)).toEqual([{ actor: banker.username, action: 'account_frozen', reason: 'suspected fraud' }]);
  });

  it('refuses every movement in or out of a frozen account, and its closing, until it is unfrozen', async () => {
    const alice = await funded(100n);
    const bob = await funded(100n);
    await ledger.freezeAccount(banker, { accountId: alice.account.id, reason: 'court order' });
    const out = ledger.transfer(alice.actor, { fromAccountId: alice.account.id, toAccountId: bob.account.id, amount: 1n, currency: 'USD', idempotencyKey: idemKey() });
    const into = ledger.transfer(bob.actor, { fromAccountId: bob.account.id, toAccountId: alice.account.id, amount: 1n, currency: 'USD', idempotencyKey: idemKey() });
    const deposit = ledger.deposit(alice.actor, { accountId: alice.account.id, amount: 1n, idempotencyKey: idemKey() });
    await expect(out).rejects.toMatchObject({ code: 'ACCOUNT_FROZEN' });
    await expect(into).rejects.toMatchObject({ code: 'ACCOUNT_FROZEN' });
    await expect(deposit).rejects.toMatchObject({ code: 'ACCOUNT_FROZEN' });
    await expect(ledger.closeAccount(alice.actor, alice.account.id)).rejects.toMatchObject({ code: 'ACCOUNT_FROZEN' });
    // Its place in USD stays taken: no second USD account around the freeze.
    await expect(ledger.openAccount(alice.actor, { currency: 'USD' })).rejects.toMatchObject({ code: 'ACCOUNT_ALREADY_EXISTS' });

    const reopened = await ledger.unfreezeAccount(banker, { accountId: alice.account.id, reason: 'order lifted' });
    expect(reopened.status).toBe('open');
    await ledger.transfer(alice.actor, { fromAccountId: alice.account.id, toAccountId: bob.account.id, amount: 1n, currency: 'USD', idempotencyKey: idemKey() });
    expect((await auditRows(`account:${alice.account.id}`)).map((r) => r.action)).toEqual(['account_frozen', 'account_unfrozen']);
    expect(await checkLedgerInvariants(db.pool)).toEqual([]);
  });

  it('lets only a banker freeze or unfreeze, asks for a reason, and says what it cannot find', async () => {
    const alice = await funded(0n);
    await expect(ledger.freezeAccount(alice.actor, { accountId: alice.account.id, reason: 'mine' })).rejects.toMatchObject({ code: 'PERMISSION_DENIED' });
    await expect(ledger.unfreezeAccount(alice.actor, { accountId: alice.account.id, reason: 'mine' })).rejects.toMatchObject({ code: 'PERMISSION_DENIED' });
    await expect(ledger.freezeAccount(banker, { accountId: alice.account.id, reason: '  ' })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      fieldViolations: [expect.objectContaining({ field: 'reason' })],
    });
    await expect(ledger.freezeAccount(banker, { accountId: 999_999_999n, reason: 'x' })).rejects.toMatchObject({ code: 'ACCOUNT_NOT_FOUND' });
    const systemId = await db.pool.oneFirst(sql.type(z.object({ id: z.bigint() }))`SELECT id FROM accounts WHERE is_system AND kind = 'funding' AND currency = 'USD'`);
    await expect(ledger.freezeAccount(banker, { accountId: systemId, reason: 'x' })).rejects.toMatchObject({ code: 'ACCOUNT_NOT_FOUND' });
    await ledger.closeAccount(alice.actor, alice.account.id);
    await expect(ledger.freezeAccount(banker, { accountId: alice.account.id, reason: 'x' })).rejects.toMatchObject({ code: 'ACCOUNT_CLOSED' });
    expect(await auditRows(`account:${alice.account.id}`)).toEqual([]);
  });
});
