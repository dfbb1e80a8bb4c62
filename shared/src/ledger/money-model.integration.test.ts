// The money model on the real database (issue 11): holds and their capture, void and expiry,
// withdrawals to the settlement account, limits, reversals, refunds and references, each with its
// refusals, then the invariants of DESIGN.md by SQL. No sweep runs in this file: expiry here is
// the one enforced where a hold is used or read.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { setTimeout as sleep } from 'node:timers/promises';
import { sql } from 'slonik';
import { z } from 'zod';
import { createTestDatabase, type TestDatabase } from '../../../test/db.ts';
import { createUser, idemKey } from '../../../test/factories.ts';
import { checkLedgerInvariants } from '../../../test/ledger-invariants.ts';
import type { Actor } from '../auth/actor.ts';
import { LedgerService } from './ledger.service.ts';
import type { Account } from './ledger.types.ts';

let db: TestDatabase;
/** Limits far above what these tests move, except where a test says otherwise. */
let ledger: LedgerService;
let banker: Actor;

beforeAll(async () => {
  db = await createTestDatabase();
  ledger = new LedgerService({
    pool: db.pool,
    limits: { depositMaxAmount: 10n ** 12n, depositDailyLimit: 10n ** 13n, outgoingDailyLimit: 10n ** 13n },
  });
  banker = await createUser(db.pool, { role: 'banker' });
});
afterAll(async () => {
  await db?.drop();
});

type Holder = { actor: Actor; account: Account };

async function funded(amount: bigint, on: LedgerService = ledger): Promise<Holder> {
  const actor = await createUser(db.pool);
  const account = await on.openAccount(actor, { currency: 'USD' });
  if (amount > 0n) await ledger.deposit(actor, { accountId: account.id, amount, idempotencyKey: idemKey() });
  return { actor, account };
}

const send = (from: Holder, to: Holder, amount: bigint, extra: Partial<Parameters<LedgerService['transfer']>[1]> = {}, on = ledger) =>
  on.transfer(from.actor, { fromAccountId: from.account.id, toAccountId: to.account.id, amount, currency: 'USD', idempotencyKey: idemKey(), ...extra });
const hold = (from: Holder, to: Holder, amount: bigint, ttlSeconds = 3_600) => send(from, to, amount, { hold: { ttlSeconds } });
const balances = async (h: Holder) => {
  const a = await ledger.getAccount(h.actor, h.account.id);
  return { balance: a.balance, available: a.availableBalance };
};
const entriesOf = (transferId: bigint) =>
  db.pool.any(sql.type(z.object({ account_id: z.bigint(), amount: z.bigint() }))`
    SELECT account_id, amount FROM entries WHERE transfer_id = ${transferId} ORDER BY id`);
const storedStatus = (transferId: bigint) =>
  db.pool.oneFirst(sql.type(z.object({ status: z.string() }))`SELECT status FROM transfers WHERE id = ${transferId}`);

describe('holds', () => {
  it('reserves the amount on the sender: available drops, the balance does not, nothing reaches the receiver', async () => {
    const alice = await funded(1_000n);
    const bob = await funded(0n);
    const before = Date.now();
    const placed = await hold(alice, bob, 300n, 600);
    expect(placed.transfer).toMatchObject({ status: 'pending', amount: 300n, capturedAmount: null, kind: 'transfer' });
    expect(placed.transfer.expiresAt!.getTime()).toBeGreaterThanOrEqual(before + 599_000);
    expect(placed.transfer.expiresAt!.getTime()).toBeLessThanOrEqual(Date.now() + 601_000);
    expect(placed).toMatchObject({ fromEntry: null, toEntry: null, fromBalance: 1_000n, replayed: false });
    expect(await balances(alice)).toEqual({ balance: 1_000n, available: 700n });
    expect(await balances(bob)).toEqual({ balance: 0n, available: 0n });
    expect(await entriesOf(placed.transfer.id)).toEqual([]);
    // The reservation is spoken for: neither a transfer nor another hold may use it.
    await expect(send(alice, bob, 701n)).rejects.toMatchObject({ code: 'INSUFFICIENT_FUNDS' });
    await expect(hold(alice, bob, 701n)).rejects.toMatchObject({ code: 'INSUFFICIENT_FUNDS' });
    await send(alice, bob, 700n);
    expect(await balances(alice)).toEqual({ balance: 300n, available: 0n });
    expect(await checkLedgerInvariants(db.pool)).toEqual([]);
  });

  it('captures in full: the amount moves at capture time, with two entries and balance_after', async () => {
    const alice = await funded(1_000n);
    const bob = await funded(50n);
    const placed = await hold(alice, bob, 400n);
    const captured = await ledger.captureTransfer(alice.actor, { transferId: placed.transfer.id, idempotencyKey: idemKey() });
    expect(captured.transfer).toMatchObject({ id: placed.transfer.id, status: 'posted', amount: 400n, capturedAmount: 400n });
    expect(captured.fromEntry).toMatchObject({ accountId: alice.account.id, amount: -400n, balanceAfter: 600n });
    expect(captured.toEntry).toMatchObject({ accountId: bob.account.id, amount: 400n, balanceAfter: 450n });
    expect(captured.fromEntry!.createdAt.getTime()).toBeGreaterThanOrEqual(placed.transfer.createdAt.getTime());
    expect(await balances(alice)).toEqual({ balance: 600n, available: 600n });
    expect(await balances(bob)).toEqual({ balance: 450n, available: 450n });
    expect(await ledger.getTransfer(bob.actor, placed.transfer.id)).toMatchObject({ status: 'posted', capturedAmount: 400n });
    expect(await checkLedgerInvariants(db.pool)).toEqual([]);
  });

  it('captures part: the rest of the reservation is released', async () => {
    const alice = await funded(1_000n);
    const bob = await funded(0n);
    const placed = await hold(alice, bob, 400n);
    const captured = await ledger.captureTransfer(alice.actor, { transferId: placed.transfer.id, amount: 150n, idempotencyKey: idemKey() });
    expect(captured.transfer).toMatchObject({ status: 'posted', amount: 400n, capturedAmount: 150n });
    expect(await entriesOf(placed.transfer.id)).toEqual([
      { account_id: alice.account.id, amount: -150n },
      { account_id: bob.account.id, amount: 150n },
    ]);
    expect(await balances(alice)).toEqual({ balance: 850n, available: 850n });
    expect(await balances(bob)).toEqual({ balance: 150n, available: 150n });
    expect(await checkLedgerInvariants(db.pool)).toEqual([]);
  });

  it('voids: the reservation is released and nothing moves; a hold is settled only once', async () => {
    const alice = await funded(1_000n);
    const bob = await funded(0n);
    const placed = await hold(alice, bob, 400n);
    await expect(ledger.captureTransfer(alice.actor, { transferId: placed.transfer.id, amount: 401n, idempotencyKey: idemKey() }))
      .rejects.toMatchObject({ code: 'AMOUNT_OUT_OF_RANGE', fieldViolations: [{ field: 'amount' }] });
    const voided = await ledger.voidTransfer(alice.actor, { transferId: placed.transfer.id, idempotencyKey: idemKey() });
    expect(voided.transfer).toMatchObject({ status: 'voided', capturedAmount: null });
    expect(voided).toMatchObject({ fromEntry: null, toEntry: null });
    expect(await balances(alice)).toEqual({ balance: 1_000n, available: 1_000n });
    await expect(ledger.voidTransfer(alice.actor, { transferId: placed.transfer.id, idempotencyKey: idemKey() }))
      .rejects.toMatchObject({ code: 'TRANSFER_NOT_PENDING' });
    await expect(ledger.captureTransfer(alice.actor, { transferId: placed.transfer.id, idempotencyKey: idemKey() }))
      .rejects.toMatchObject({ code: 'TRANSFER_NOT_PENDING' });
    // A posted transfer is no hold at all.
    const plain = await send(alice, bob, 1n);
    await expect(ledger.captureTransfer(alice.actor, { transferId: plain.transfer.id, idempotencyKey: idemKey() }))
      .rejects.toMatchObject({ code: 'TRANSFER_NOT_PENDING' });
    expect(await checkLedgerInvariants(db.pool)).toEqual([]);
  });

  it('lets only the sender or a banker settle a hold; a stranger does not see it', async () => {
    const alice = await funded(1_000n);
    const bob = await funded(0n);
    const eve = await funded(0n);
    const placed = await hold(alice, bob, 100n);
    const id = placed.transfer.id;
    await expect(ledger.captureTransfer(bob.actor, { transferId: id, idempotencyKey: idemKey() })).rejects.toMatchObject({ code: 'PERMISSION_DENIED' });
    await expect(ledger.voidTransfer(bob.actor, { transferId: id, idempotencyKey: idemKey() })).rejects.toMatchObject({ code: 'PERMISSION_DENIED' });
    await expect(ledger.captureTransfer(eve.actor, { transferId: id, idempotencyKey: idemKey() })).rejects.toMatchObject({ code: 'TRANSFER_NOT_FOUND' });
    await expect(ledger.captureTransfer(alice.actor, { transferId: 999_999_999n, idempotencyKey: idemKey() })).rejects.toMatchObject({ code: 'TRANSFER_NOT_FOUND' });
    const captured = await ledger.captureTransfer(banker, { transferId: id, amount: 60n, idempotencyKey: idemKey() });
    expect(captured.transfer).toMatchObject({ status: 'posted', capturedAmount: 60n, initiatedBy: alice.actor.username });
    expect(await checkLedgerInvariants(db.pool)).toEqual([]);
  });

  it('replays a capture with its key, and refuses the key with another request', async () => {
    const alice = await funded(1_000n);
    const bob = await funded(0n);
    const placed = await hold(alice, bob, 100n);
    const key = idemKey();
    const first = await ledger.captureTransfer(alice.actor, { transferId: placed.transfer.id, amount: 70n, idempotencyKey: key });
    const again = await ledger.captureTransfer(alice.actor, { transferId: placed.transfer.id, amount: 70n, idempotencyKey: key });
    expect(again).toEqual({ ...first, replayed: true });
    await expect(ledger.captureTransfer(alice.actor, { transferId: placed.transfer.id, amount: 71n, idempotencyKey: key }))
      .rejects.toMatchObject({ code: 'IDEMPOTENCY_CONFLICT' });
    const holdKey = idemKey();
    const placedAgain = await send(alice, bob, 5n, { hold: { ttlSeconds: 60 }, idempotencyKey: holdKey });
    expect(await send(alice, bob, 5n, { hold: { ttlSeconds: 60 }, idempotencyKey: holdKey })).toEqual({ ...placedAgain, replayed: true });
    // The same key for the same transfer without the hold is another request.
    await expect(send(alice, bob, 5n, { idempotencyKey: holdKey })).rejects.toMatchObject({ code: 'IDEMPOTENCY_CONFLICT' });
    expect(await balances(alice)).toEqual({ balance: 930n, available: 925n });
  });

  it('with no sweep running, an expired hold stops counting at once and can be neither captured nor voided', async () => {
    const alice = await funded(1_000n);
    const bob = await funded(0n);
    const placed = await hold(alice, bob, 600n, 1);
    expect(await balances(alice)).toEqual({ balance: 1_000n, available: 400n });
    await sleep(1_100);
    expect(await balances(alice)).toEqual({ balance: 1_000n, available: 1_000n });
    expect(await storedStatus(placed.transfer.id)).toBe('pending');
    expect(await ledger.getTransfer(alice.actor, placed.transfer.id)).toMatchObject({ status: 'expired' });
    // Spendable again before any sweep.
    const spent = await send(alice, bob, 900n);
    expect(spent.fromBalance).toBe(100n);
    await expect(ledger.captureTransfer(alice.actor, { transferId: placed.transfer.id, idempotencyKey: idemKey() }))
      .rejects.toMatchObject({ code: 'HOLD_EXPIRED' });
    // The use found it expired and said so in the row.
    expect(await storedStatus(placed.transfer.id)).toBe('expired');
    await expect(ledger.voidTransfer(alice.actor, { transferId: placed.transfer.id, idempotencyKey: idemKey() }))
      .rejects.toMatchObject({ code: 'TRANSFER_NOT_PENDING' });
    expect(await balances(bob)).toEqual({ balance: 900n, available: 900n });
    expect(await checkLedgerInvariants(db.pool)).toEqual([]);
  });

  it('refuses capture into a frozen or closed account, but a void moves nothing and is allowed on a frozen one', async () => {
    const alice = await funded(1_000n);
    const bob = await funded(0n);
    const first = await hold(alice, bob, 100n);
    const second = await hold(alice, bob, 100n);
    await ledger.freezeAccount(banker, { accountId: bob.account.id, reason: 'review' });
    await expect(ledger.captureTransfer(alice.actor, { transferId: first.transfer.id, idempotencyKey: idemKey() }))
      .rejects.toMatchObject({ code: 'ACCOUNT_FROZEN' });
    await ledger.freezeAccount(banker, { accountId: alice.account.id, reason: 'review' });
    expect((await ledger.voidTransfer(alice.actor, { transferId: first.transfer.id, idempotencyKey: idemKey() })).transfer.status).toBe('voided');
    await ledger.unfreezeAccount(banker, { accountId: alice.account.id, reason: 'cleared' });
    await ledger.unfreezeAccount(banker, { accountId: bob.account.id, reason: 'cleared' });
    await ledger.closeAccount(bob.actor, bob.account.id);
    await expect(ledger.captureTransfer(alice.actor, { transferId: second.transfer.id, idempotencyKey: idemKey() }))
      .rejects.toMatchObject({ code: 'ACCOUNT_CLOSED' });
    expect(await checkLedgerInvariants(db.pool)).toEqual([]);
  });

  /** Alice (1,000) holds 300 for Bob, then captures 200 of it: the instants while held and after. */
  async function heldThenCaptured() {
    const alice = await funded(1_000n);
    const bob = await funded(0n);
    const placed = await hold(alice, bob, 300n);
    const whileHeld = new Date(placed.transfer.createdAt.getTime() + 1);
    await sleep(5);
    const captured = await ledger.captureTransfer(alice.actor, { transferId: placed.transfer.id, amount: 200n, idempotencyKey: idemKey() });
    return { alice, bob, placed, whileHeld, after: new Date(captured.fromEntry!.createdAt.getTime() + 1) };
  }

  it('answers the available balance at an instant from the holds active then', async () => {
    const { alice, whileHeld, after } = await heldThenCaptured();
    expect(await ledger.getBalance(alice.actor, { accountId: alice.account.id, at: whileHeld })).toMatchObject({ balance: 1_000n, availableBalance: 700n });
    expect(await ledger.getBalance(alice.actor, { accountId: alice.account.id, at: after })).toMatchObject({ balance: 800n, availableBalance: 800n });
  });

  it('answers balances asked for at one moment, read by one statement, as each alone', async () => {
    const { alice, bob, placed, whileHeld, after } = await heldThenCaptured();
    const before = new Date(placed.transfer.createdAt.getTime() - 60_000);
    const asked = [
      [alice.actor, alice.account.id, whileHeld], [alice.actor, alice.account.id, after], [bob.actor, bob.account.id, after],
      [bob.actor, bob.account.id, whileHeld], [alice.actor, alice.account.id, before], [alice.actor, bob.account.id, after],
    ] as const;
    const ask = ([actor, accountId, at]: (typeof asked)[number]) =>
      ledger.getBalance(actor, { accountId, at }).then((found) => found, (error: unknown) => error);
    const alone = [];
    for (const question of asked) alone.push(await ask(question));
    expect(alone.slice(0, 5)).toMatchObject([
      { balance: 1_000n, availableBalance: 700n }, { balance: 800n, availableBalance: 800n }, { balance: 200n, availableBalance: 200n },
      { balance: 0n, availableBalance: 0n }, { balance: 0n, availableBalance: 0n },
    ]);
    expect(alone[5]).toMatchObject({ code: 'ACCOUNT_NOT_FOUND' });
    // The first leaves at once; the others wait for it and go together.
    const together = await Promise.all([ask(asked[0]), ...asked.map(ask)]);
    expect(together.slice(1)).toEqual(alone);
  });

  it('keeps transfers append-only except a pending hold’s status columns, changed once', async () => {
    const alice = await funded(100n);
    const bob = await funded(0n);
    const placed = await hold(alice, bob, 10n);
    const posted = await send(alice, bob, 10n);
    const run = (query: ReturnType<typeof sql.unsafe>) => db.pool.query(query);
    await expect(run(sql.unsafe`UPDATE transfers SET status = 'voided' WHERE id = ${posted.transfer.id}`)).rejects.toThrow(/append-only/);
    await expect(run(sql.unsafe`UPDATE transfers SET amount = 5 WHERE id = ${placed.transfer.id}`)).rejects.toThrow(/append-only/);
    await expect(run(sql.unsafe`UPDATE transfers SET status = 'voided', resolved_at = now(), memo = 'x' WHERE id = ${placed.transfer.id}`))
      .rejects.toThrow(/append-only/);
    await expect(run(sql.unsafe`DELETE FROM transfers WHERE id = ${placed.transfer.id}`)).rejects.toThrow(/append-only/);
    // The one change allowed, then no other: in a transaction rolled back, so the hold stays sound.
    const rolledBack = db.pool.transaction(async (tx) => {
      await tx.query(sql.unsafe`UPDATE transfers SET status = 'voided', resolved_at = now() WHERE id = ${placed.transfer.id}`);
      await expect(tx.query(sql.unsafe`UPDATE transfers SET status = 'expired' WHERE id = ${placed.transfer.id}`)).rejects.toThrow(/append-only/);
      throw new Error('roll back');
    });
    await expect(rolledBack).rejects.toThrow('roll back');
    expect(await storedStatus(placed.transfer.id)).toBe('pending');
  });

  it('checks the hold time to live', async () => {
    const alice = await funded(10n);
    const bob = await funded(0n);
    for (const ttlSeconds of [0, -1, 2_592_001, 1.5]) {
      await expect(hold(alice, bob, 1n, ttlSeconds)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', fieldViolations: [{ field: 'hold.ttl_seconds' }] });
    }
    expect((await hold(alice, bob, 1n, 2_592_000)).transfer.status).toBe('pending');
  });
});

describe('withdrawals', () => {
  it('sends money to the settlement account of its currency, so every currency still sums to zero', async () => {
    const alice = await funded(1_000n);
    const result = await ledger.withdraw(alice.actor, {
      accountId: alice.account.id, amount: 250n, destination: 'DE89 3704 0044 0532 0130 00', memo: 'rent', idempotencyKey: idemKey(),
    });
    const settlement = await db.pool.oneFirst(sql.type(z.object({ id: z.bigint() }))`
      SELECT id FROM accounts WHERE is_system AND kind = 'settlement' AND currency = 'USD'`);
    expect(result.transfer).toMatchObject({
      kind: 'withdrawal', status: 'posted', fromAccountId: alice.account.id, toAccountId: settlement, destination: 'DE89 3704 0044 0532 0130 00', memo: 'rent',
    });
    expect(result.fromBalance).toBe(750n);
    await expect(ledger.withdraw(alice.actor, { accountId: alice.account.id, amount: 751n, destination: 'X', idempotencyKey: idemKey() }))
      .rejects.toMatchObject({ code: 'INSUFFICIENT_FUNDS' });
    expect(await checkLedgerInvariants(db.pool)).toEqual([]);
  });

  it('refuses a bad destination, another user’s account, and a banker moving a customer’s money', async () => {
    const alice = await funded(100n);
    const bob = await funded(100n);
    for (const destination of ['', ' leading', 'x'.repeat(65), 'tab\there', 'é']) {
      await expect(ledger.withdraw(alice.actor, { accountId: alice.account.id, amount: 1n, destination, idempotencyKey: idemKey() }))
        .rejects.toMatchObject({ code: 'INVALID_ARGUMENT', fieldViolations: [{ field: 'destination' }] });
    }
    await expect(ledger.withdraw(bob.actor, { accountId: alice.account.id, amount: 1n, destination: 'IBAN', idempotencyKey: idemKey() }))
      .rejects.toMatchObject({ code: 'ACCOUNT_NOT_FOUND' });
    await expect(ledger.withdraw(banker, { accountId: alice.account.id, amount: 1n, destination: 'IBAN', idempotencyKey: idemKey() }))
      .rejects.toMatchObject({ code: 'PERMISSION_DENIED' });
    await ledger.freezeAccount(banker, { accountId: alice.account.id, reason: 'review' });
    await expect(ledger.withdraw(alice.actor, { accountId: alice.account.id, amount: 1n, destination: 'IBAN', idempotencyKey: idemKey() }))
      .rejects.toMatchObject({ code: 'ACCOUNT_FROZEN' });
  });
});

describe('limits', () => {
  const limited = () => new LedgerService({ pool: db.pool, limits: { depositMaxAmount: 500n, depositDailyLimit: 1_000n, outgoingDailyLimit: 1_000n } });

  it('passes a deposit of exactly the cap and refuses one above it, naming the limit', async () => {
    const small = limited();
    const alice = await funded(0n);
    await small.deposit(alice.actor, { accountId: alice.account.id, amount: 500n, idempotencyKey: idemKey() });
    await expect(small.deposit(alice.actor, { accountId: alice.account.id, amount: 501n, idempotencyKey: idemKey() }))
      .rejects.toMatchObject({ code: 'LIMIT_EXCEEDED', limit: 'deposit_max_amount', remaining: 500n });
  });

  it('caps a user’s deposits per rolling day, and a banker’s credit (with its memo) not at all', async () => {
    const small = limited();
    const alice = await funded(0n);
    const deposit = (amount: bigint) => small.deposit(alice.actor, { accountId: alice.account.id, amount, idempotencyKey: idemKey() });
    await deposit(400n);
    await deposit(400n);
    await expect(deposit(300n)).rejects.toMatchObject({ code: 'LIMIT_EXCEEDED', limit: 'deposit_daily_limit', remaining: 200n });
    await deposit(200n);
    await expect(deposit(1n)).rejects.toMatchObject({ code: 'LIMIT_EXCEEDED', limit: 'deposit_daily_limit', remaining: 0n });
    const credit = await small.deposit(banker, { accountId: alice.account.id, amount: 5_000n, memo: 'cash at the counter', idempotencyKey: idemKey() });
    expect(credit.transfer).toMatchObject({ kind: 'deposit', initiatedBy: banker.username, memo: 'cash at the counter' });
    expect(credit.toBalance).toBe(6_000n);
    const audit = await db.pool.any(sql.type(z.object({ actor: z.string(), action: z.string(), reason: z.string() }))`
      SELECT actor, action, reason FROM audit_events WHERE target = ${`account:${alice.account.id}`}`);
    expect(audit).toEqual([{ actor: banker.username, action: 'account_credited', reason: 'cash at the counter' }]);
    // The credit did not use the user's own allowance either.
    await expect(deposit(1n)).rejects.toMatchObject({ code: 'LIMIT_EXCEEDED', limit: 'deposit_daily_limit' });
  });

  it('counts transfers, active holds and withdrawals against the outgoing limit; a released hold gives its amount back', async () => {
    const small = limited();
    const alice = await funded(10_000n);
    const bob = await funded(0n);
    await send(alice, bob, 600n, {}, small);
    const placed = await send(alice, bob, 300n, { hold: { ttlSeconds: 600 } }, small);
    await expect(small.withdraw(alice.actor, { accountId: alice.account.id, amount: 200n, destination: 'IBAN', idempotencyKey: idemKey() }))
      .rejects.toMatchObject({ code: 'LIMIT_EXCEEDED', limit: 'outgoing_daily_limit', remaining: 100n });
    // Captured in part: only what moved still counts, and the capture is not counted again.
    await small.captureTransfer(alice.actor, { transferId: placed.transfer.id, amount: 100n, idempotencyKey: idemKey() });
    await small.withdraw(alice.actor, { accountId: alice.account.id, amount: 300n, destination: 'IBAN', idempotencyKey: idemKey() });
    await expect(send(alice, bob, 1n, {}, small)).rejects.toMatchObject({ code: 'LIMIT_EXCEEDED', limit: 'outgoing_daily_limit', remaining: 0n });
    // A void gives the hold's amount back to the limit.
    const other = await funded(0n);
    await small.deposit(bob.actor, { accountId: bob.account.id, amount: 500n, idempotencyKey: idemKey() });
    const placed2 = await send(bob, other, 400n, { hold: { ttlSeconds: 600 } }, small);
    await expect(send(bob, other, 601n, {}, small)).rejects.toMatchObject({ code: 'LIMIT_EXCEEDED', remaining: 600n });
    await small.voidTransfer(bob.actor, { transferId: placed2.transfer.id, idempotencyKey: idemKey() });
    await send(bob, other, 1_000n, {}, small);
    await expect(send(bob, other, 1n, {}, small)).rejects.toMatchObject({ code: 'LIMIT_EXCEEDED', remaining: 0n });
    expect(await checkLedgerInvariants(db.pool)).toEqual([]);
  });
});

describe('reversals', () => {
  it('lets a banker reverse a transfer once, with a memo, into the audit trail', async () => {
    const alice = await funded(1_000n);
    const bob = await funded(0n);
    const original = await send(alice, bob, 300n);
    await expect(ledger.reverseTransfer(alice.actor, { transferId: original.transfer.id, memo: 'mine', idempotencyKey: idemKey() }))
      .rejects.toMatchObject({ code: 'PERMISSION_DENIED' });
    await expect(ledger.reverseTransfer(banker, { transferId: original.transfer.id, memo: '  ', idempotencyKey: idemKey() }))
      .rejects.toMatchObject({ code: 'INVALID_ARGUMENT', fieldViolations: [{ field: 'memo' }] });
    const reversal = await ledger.reverseTransfer(banker, { transferId: original.transfer.id, memo: 'sent in error', idempotencyKey: idemKey() });
    expect(reversal.transfer).toMatchObject({
      kind: 'reversal', status: 'posted', fromAccountId: bob.account.id, toAccountId: alice.account.id, amount: 300n,
      reversesTransferId: original.transfer.id, memo: 'sent in error', initiatedBy: banker.username,
    });
    expect(await balances(alice)).toEqual({ balance: 1_000n, available: 1_000n });
    await expect(ledger.reverseTransfer(banker, { transferId: original.transfer.id, memo: 'again', idempotencyKey: idemKey() }))
      .rejects.toMatchObject({ code: 'TRANSFER_ALREADY_REVERSED' });
    await expect(ledger.reverseTransfer(banker, { transferId: reversal.transfer.id, memo: 'undo', idempotencyKey: idemKey() }))
      .rejects.toMatchObject({ code: 'TRANSFER_NOT_REVERSIBLE' });
    const audit = await db.pool.any(sql.type(z.object({ actor: z.string(), action: z.string(), reason: z.string() }))`
      SELECT actor, action, reason FROM audit_events WHERE target = ${`transfer:${original.transfer.id}`}`);
    expect(audit).toEqual([{ actor: banker.username, action: 'transfer_reversed', reason: 'sent in error' }]);
    expect(await checkLedgerInvariants(db.pool)).toEqual([]);
  });

  it('works on a frozen account, refuses what would overdraw, and refuses a hold that moved nothing', async () => {
    const alice = await funded(1_000n);
    const bob = await funded(0n);
    const carol = await funded(0n);
    const original = await send(alice, bob, 300n);
    await ledger.freezeAccount(banker, { accountId: bob.account.id, reason: 'fraud' });
    const reversed = await ledger.reverseTransfer(banker, { transferId: original.transfer.id, memo: 'fraud', idempotencyKey: idemKey() });
    expect(reversed.fromBalance).toBe(0n);
    await ledger.unfreezeAccount(banker, { accountId: bob.account.id, reason: 'done' });
    const spent = await send(alice, bob, 100n);
    await send(bob, carol, 60n);
    await expect(ledger.reverseTransfer(banker, { transferId: spent.transfer.id, memo: 'too late', idempotencyKey: idemKey() }))
      .rejects.toMatchObject({ code: 'INSUFFICIENT_FUNDS' });
    const placed = await hold(alice, carol, 10n);
    await expect(ledger.reverseTransfer(banker, { transferId: placed.transfer.id, memo: 'nothing moved', idempotencyKey: idemKey() }))
      .rejects.toMatchObject({ code: 'TRANSFER_NOT_REVERSIBLE' });
    // A deposit and a withdrawal can be reversed: the funding and settlement accounts take part.
    const deposit = await ledger.deposit(carol.actor, { accountId: carol.account.id, amount: 40n, idempotencyKey: idemKey() });
    expect((await ledger.reverseTransfer(banker, { transferId: deposit.transfer.id, memo: 'bounced', idempotencyKey: idemKey() })).toBalance)
      .toBeLessThan(0n);
    const out = await ledger.withdraw(carol.actor, { accountId: carol.account.id, amount: 30n, destination: 'IBAN', idempotencyKey: idemKey() });
    expect((await ledger.reverseTransfer(banker, { transferId: out.transfer.id, memo: 'returned by the bank', idempotencyKey: idemKey() })).toBalance)
      .toBe(60n);
    expect(await checkLedgerInvariants(db.pool)).toEqual([]);
  });
});

describe('refunds', () => {
  it('lets the receiver refund in parts, never above the original', async () => {
    const alice = await funded(1_000n);
    const bob = await funded(0n);
    const original = await send(alice, bob, 300n, { memo: 'order 7' });
    const refund = (actor: Actor, amount?: bigint) =>
      ledger.refundTransfer(actor, { transferId: original.transfer.id, amount, idempotencyKey: idemKey(), memo: 'returned item' });
    await expect(refund(alice.actor, 10n)).rejects.toMatchObject({ code: 'PERMISSION_DENIED' });
    await expect(refund(banker, 10n)).rejects.toMatchObject({ code: 'PERMISSION_DENIED' });
    const first = await refund(bob.actor, 100n);
    expect(first.transfer).toMatchObject({
      kind: 'refund', fromAccountId: bob.account.id, toAccountId: alice.account.id, amount: 100n, refundsTransferId: original.transfer.id, memo: 'returned item',
    });
    await expect(refund(bob.actor, 201n)).rejects.toMatchObject({ code: 'REFUND_EXCEEDS_TRANSFER', remaining: 200n });
    expect((await refund(bob.actor)).transfer.amount).toBe(200n);
    await expect(refund(bob.actor)).rejects.toMatchObject({ code: 'REFUND_EXCEEDS_TRANSFER', remaining: 0n });
    // Nothing is left to reverse either.
    await expect(ledger.reverseTransfer(banker, { transferId: original.transfer.id, memo: 'x', idempotencyKey: idemKey() }))
      .rejects.toMatchObject({ code: 'TRANSFER_NOT_REVERSIBLE' });
    expect(await checkLedgerInvariants(db.pool)).toEqual([]);
  });

  it('refuses a deposit, a reversed transfer and an overdraft; a reversal after a refund returns the rest', async () => {
    const alice = await funded(1_000n);
    const bob = await funded(0n);
    const deposit = await ledger.deposit(alice.actor, { accountId: alice.account.id, amount: 5n, idempotencyKey: idemKey() });
    await expect(ledger.refundTransfer(alice.actor, { transferId: deposit.transfer.id, idempotencyKey: idemKey() }))
      .rejects.toMatchObject({ code: 'TRANSFER_NOT_REFUNDABLE' });
    const original = await send(alice, bob, 300n);
    await ledger.refundTransfer(bob.actor, { transferId: original.transfer.id, amount: 100n, idempotencyKey: idemKey() });
    const reversal = await ledger.reverseTransfer(banker, { transferId: original.transfer.id, memo: 'rest back', idempotencyKey: idemKey() });
    expect(reversal.transfer.amount).toBe(200n);
    await expect(ledger.refundTransfer(bob.actor, { transferId: original.transfer.id, amount: 1n, idempotencyKey: idemKey() }))
      .rejects.toMatchObject({ code: 'TRANSFER_NOT_REFUNDABLE' });
    const second = await send(alice, bob, 50n);
    await ledger.withdraw(bob.actor, { accountId: bob.account.id, amount: 50n, destination: 'IBAN', idempotencyKey: idemKey() });
    await expect(ledger.refundTransfer(bob.actor, { transferId: second.transfer.id, idempotencyKey: idemKey() }))
      .rejects.toMatchObject({ code: 'INSUFFICIENT_FUNDS' });
    expect(await checkLedgerInvariants(db.pool)).toEqual([]);
  });
});

describe('references', () => {
  it('echoes memo, reference and metadata, and finds an account’s transfers by reference', async () => {
    const alice = await funded(1_000n);
    const bob = await funded(0n);
    const metadata = { order: '7', channel: 'web' };
    const made = await send(alice, bob, 10n, { memo: 'Rent – März', reference: 'inv-2026-12', metadata });
    expect(made.transfer).toMatchObject({ memo: 'Rent – März', reference: 'inv-2026-12', metadata });
    await send(alice, bob, 11n, { reference: 'other' });
    await send(alice, bob, 12n);
    const deposit = await ledger.deposit(bob.actor, { accountId: bob.account.id, amount: 13n, reference: 'inv-2026-12', idempotencyKey: idemKey() });
    expect(await ledger.getTransfer(bob.actor, made.transfer.id)).toMatchObject({ memo: 'Rent – März', reference: 'inv-2026-12', metadata });
    const found = await ledger.listTransfers(bob.actor, { accountId: bob.account.id, reference: 'inv-2026-12' });
    expect(found.items.map((t) => t.id)).toEqual([deposit.transfer.id, made.transfer.id]);
    const fromSide = await ledger.listTransfers(alice.actor, { accountId: alice.account.id, reference: 'inv-2026-12' });
    expect(fromSide.items.map((t) => t.id)).toEqual([made.transfer.id]);
    expect((await ledger.listTransfers(alice.actor, { accountId: alice.account.id, reference: 'none' })).items).toEqual([]);
    await expect(ledger.listTransfers(bob.actor, { accountId: alice.account.id, reference: 'inv-2026-12' })).rejects.toMatchObject({ code: 'ACCOUNT_NOT_FOUND' });
  });

  it('names the field of a memo, reference or metadata out of bounds', async () => {
    const alice = await funded(100n);
    const bob = await funded(0n);
    const cases: [Partial<Parameters<LedgerService['transfer']>[1]>, string][] = [
      [{ memo: 'x'.repeat(141) }, 'memo'],
      [{ memo: 'line\nbreak' }, 'memo'],
      [{ reference: 'r'.repeat(65) }, 'reference'],
      [{ metadata: Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, 'v'])) }, 'metadata'],
      [{ metadata: { ['k'.repeat(41)]: 'v' } }, 'metadata'],
      [{ metadata: { k: 'v'.repeat(257) } }, 'metadata.k'],
    ];
    for (const [extra, field] of cases) {
      await expect(send(alice, bob, 1n, extra)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', fieldViolations: [{ field }] });
    }
    const edge = await send(alice, bob, 1n, {
      memo: 'm'.repeat(140), reference: 'r'.repeat(64),
      metadata: Object.fromEntries(Array.from({ length: 16 }, (_, i) => [`${'k'.repeat(38)}${String(i).padStart(2, '0')}`, 'v'.repeat(256)])),
    });
    expect(Object.keys(edge.transfer.metadata)).toHaveLength(16);
  });
});

describe('the previous release’s entry points during a rolling deploy', () => {
  it('answers ledger_move() and ledger_move_batch() through ledger_apply(), holds and settlement accounts respected', async () => {
    const alice = await funded(1_000n);
    const bob = await funded(0n);
    await hold(alice, bob, 900n);
    const legacyMove = (key: string, amount: bigint) => db.pool.one(sql.type(z.object({ transfer_id: z.bigint().nullable(), from_balance: z.bigint().nullable(), error_code: z.string().nullable() }))`
      SELECT transfer_id, from_balance, error_code FROM ledger_move(${alice.actor.username}, 'depositor', ${key}, 'legacy', 'transfer',
        ${alice.account.id}, ${bob.account.id}, ${amount}, 'USD')`);
    // An old process cannot spend held money.
    expect(await legacyMove(idemKey(), 101n)).toMatchObject({ transfer_id: null, error_code: 'insufficient_funds' });
    const key = idemKey();
    const moved = await legacyMove(key, 100n);
    expect(moved).toMatchObject({ from_balance: 900n, error_code: null });
    expect(await legacyMove(key, 100n)).toEqual(moved);
    // The key stays spoken for on this release's path: another request under it is refused, never run.
    const replay = await ledger.transfer(alice.actor, {
      fromAccountId: alice.account.id, toAccountId: bob.account.id, amount: 100n, currency: 'USD', idempotencyKey: key,
    }).catch((error: unknown) => error);
    expect(replay).toMatchObject({ code: 'IDEMPOTENCY_CONFLICT' });
    const batch = await db.pool.any(sql.type(z.object({ idx: z.number(), kind: z.string().nullable(), to_balance: z.bigint().nullable() }))`
      SELECT idx, kind, to_balance FROM ledger_move_batch(
        ARRAY[${bob.actor.username}], ARRAY['depositor'], ARRAY[${idemKey()}], ARRAY['h'], ARRAY['deposit'],
        ARRAY[NULL]::bigint[], ARRAY[${bob.account.id}]::bigint[], ARRAY[5]::bigint[], ARRAY[NULL]::text[])`);
    expect(batch).toEqual([{ idx: 1, kind: 'deposit', to_balance: 105n }]);
    expect(await checkLedgerInvariants(db.pool)).toEqual([]);
  });
});
