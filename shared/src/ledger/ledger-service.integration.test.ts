import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { sql } from 'slonik';
import { z } from 'zod';
import { createTestDatabase, type TestDatabase } from '../../../test/db.ts';
import { createDatabasePool } from '../db/pool.ts';
import { createUser, idemKey } from '../../../test/factories.ts';
import { checkLedgerInvariants } from '../../../test/ledger-invariants.ts';
import type { Actor } from '../auth/actor.ts';
import { LedgerService } from './ledger.service.ts';
import { MAX_AMOUNT } from './money.ts';

let db: TestDatabase;
let ledger: LedgerService;

beforeAll(async () => {
  db = await createTestDatabase();
  ledger = new LedgerService({ pool: db.pool });
});
afterAll(async () => {
  await db?.drop();
});

async function fundedAccount(actor: Actor, amount: bigint, currency = 'USD') {
  const account = await ledger.openAccount(actor, { currency });
  if (amount > 0n) await ledger.deposit(actor, { accountId: account.id, amount, idempotencyKey: idemKey() });
  return ledger.getAccount(actor, account.id);
}

describe('accounts', () => {
  it('opens one open account per user and currency, and rejects unknown currencies', async () => {
    const alice = await createUser(db.pool);
    const usd = await ledger.openAccount(alice, { currency: 'USD' });
    expect(usd).toMatchObject({ owner: alice.username, currency: 'USD', balance: 0n, status: 'open' });
    await expect(ledger.openAccount(alice, { currency: 'USD' })).rejects.toMatchObject({ code: 'ACCOUNT_ALREADY_EXISTS' });
    await expect(ledger.openAccount(alice, { currency: 'XYZ' })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      fieldViolations: [expect.objectContaining({ field: 'currency' })],
    });
    await expect(ledger.openAccount(alice, { currency: '' })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    const eur = await ledger.openAccount(alice, { currency: 'EUR' });
    expect((await ledger.listAccounts(alice)).map((a) => a.id)).toEqual([usd.id, eur.id]);
  });

  it('hides one depositor’s accounts from another; a banker may read them', async () => {
    const alice = await createUser(db.pool);
    const mallory = await createUser(db.pool);
    const banker = await createUser(db.pool, { role: 'banker' });
    const account = await ledger.openAccount(alice, { currency: 'USD' });
    await expect(ledger.getAccount(mallory, account.id)).rejects.toMatchObject({ code: 'ACCOUNT_NOT_FOUND' });
    await expect(ledger.getAccount(mallory, 999_999_999n)).rejects.toMatchObject({ code: 'ACCOUNT_NOT_FOUND' });
    expect((await ledger.getAccount(banker, account.id)).owner).toBe(alice.username);
    await expect(ledger.listAccounts(mallory, { owner: alice.username })).rejects.toMatchObject({ code: 'PERMISSION_DENIED' });
    expect(await ledger.listAccounts(banker, { owner: alice.username })).toHaveLength(1);
    await expect(ledger.listEntries(mallory, { accountId: account.id })).rejects.toMatchObject({ code: 'ACCOUNT_NOT_FOUND' });
  });

  it('never exposes the system funding accounts as user accounts', async () => {
    const banker = await createUser(db.pool, { role: 'banker' });
    const systemId = await db.pool.oneFirst(sql.type(z.object({ id: z.bigint() }))`SELECT id FROM accounts WHERE is_system AND kind = 'funding' AND currency = 'USD'`);
    await expect(ledger.getAccount(banker, systemId)).rejects.toMatchObject({ code: 'ACCOUNT_NOT_FOUND' });
    const alice = await createUser(db.pool);
    const mine = await fundedAccount(alice, 100n);
    await expect(
      ledger.transfer(alice, { fromAccountId: mine.id, toAccountId: systemId, amount: 1n, currency: 'USD', idempotencyKey: idemKey() }),
    ).rejects.toMatchObject({ code: 'ACCOUNT_NOT_FOUND' });
  });
});

describe('deposit and transfer', () => {
  it('deposits from the funding account and transfers between users, double entry', async () => {
    const alice = await createUser(db.pool);
    const bob = await createUser(db.pool);
    const a = await fundedAccount(alice, 10_000n);
    const b = await ledger.openAccount(bob, { currency: 'USD' });
    expect(a.balance).toBe(10_000n);
    const result = await ledger.transfer(alice, {
      fromAccountId: a.id,
      toAccountId: b.id,
      amount: 2_500n,
      currency: 'USD',
      idempotencyKey: idemKey(),
    });
    expect(result).toMatchObject({ fromBalance: 7_500n, toBalance: 2_500n, replayed: false });
    expect(result.transfer).toMatchObject({ fromAccountId: a.id, toAccountId: b.id, amount: 2_500n, currency: 'USD', kind: 'transfer' });
    expect(result.fromEntry?.amount).toBe(-2_500n);
    expect(result.toEntry?.amount).toBe(2_500n);
    expect((await ledger.getAccount(bob, b.id)).balance).toBe(2_500n);
    expect(await ledger.getTransfer(alice, result.transfer.id)).toEqual(result.transfer);
    expect(await ledger.getTransfer(bob, result.transfer.id)).toEqual(result.transfer);
    expect(await checkLedgerInvariants(db.pool, { acknowledged: [result.transfer.id] })).toEqual([]);
  });

  it('gives each bad movement its specific domain error and moves nothing', async () => {
    const alice = await createUser(db.pool);
    const bob = await createUser(db.pool);
    const banker = await createUser(db.pool, { role: 'banker' });
    const a = await fundedAccount(alice, 1_000n);
    const aEur = await fundedAccount(alice, 1_000n, 'EUR');
    const b = await ledger.openAccount(bob, { currency: 'USD' });
    const bEur = await ledger.openAccount(bob, { currency: 'EUR' });
    const move = (actor: Actor, over: Partial<Parameters<LedgerService['transfer']>[1]>) =>
      ledger.transfer(actor, { fromAccountId: a.id, toAccountId: b.id, amount: 1n, currency: 'USD', idempotencyKey: idemKey(), ...over });

    await expect(move(alice, { amount: 1_001n })).rejects.toMatchObject({ code: 'INSUFFICIENT_FUNDS' });
    await expect(move(alice, { toAccountId: bEur.id })).rejects.toMatchObject({ code: 'CURRENCY_MISMATCH' });
    await expect(move(alice, { fromAccountId: aEur.id, currency: 'USD' })).rejects.toMatchObject({ code: 'CURRENCY_MISMATCH' });
    await expect(move(alice, { currency: 'EUR' })).rejects.toMatchObject({ code: 'CURRENCY_MISMATCH' });
    await expect(move(alice, { amount: 0n })).rejects.toMatchObject({ code: 'INVALID_AMOUNT', message: expect.stringMatching(/got 0/) });
    await expect(move(alice, { amount: -5n })).rejects.toMatchObject({ code: 'INVALID_AMOUNT', message: expect.stringMatching(/negative/) });
    await expect(move(alice, { amount: MAX_AMOUNT + 1n })).rejects.toMatchObject({ code: 'AMOUNT_OUT_OF_RANGE' });
    await expect(move(alice, { amount: 2n ** 64n })).rejects.toMatchObject({ code: 'AMOUNT_OUT_OF_RANGE' });
    await expect(move(alice, { amount: 1.5 as unknown as bigint })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(move(alice, { toAccountId: a.id })).rejects.toMatchObject({ code: 'SAME_ACCOUNT' });
    await expect(move(alice, { toAccountId: 987_654_321n })).rejects.toMatchObject({ code: 'ACCOUNT_NOT_FOUND' });
    await expect(move(alice, { idempotencyKey: '' })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      fieldViolations: [expect.objectContaining({ field: 'idempotency_key' })],
    });
    await expect(move(alice, { idempotencyKey: 'has space' })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    // Foreign account: a depositor is told it does not exist; a banker that it may not move it.
    await expect(move(bob, {})).rejects.toMatchObject({ code: 'ACCOUNT_NOT_FOUND' });
    await expect(move(banker, {})).rejects.toMatchObject({ code: 'PERMISSION_DENIED' });
    // A banker's credit needs a memo for the audit trail.
    await expect(ledger.deposit(banker, { accountId: a.id, amount: 5n, idempotencyKey: idemKey() })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      fieldViolations: [{ field: 'memo' }],
    });
    await expect(ledger.deposit(bob, { accountId: a.id, amount: 5n, idempotencyKey: idemKey() })).rejects.toMatchObject({
      code: 'ACCOUNT_NOT_FOUND',
    });
    await expect(ledger.deposit(alice, { accountId: a.id, amount: 0n, idempotencyKey: idemKey() })).rejects.toMatchObject({
      code: 'INVALID_AMOUNT',
    });
    expect((await ledger.getAccount(alice, a.id)).balance).toBe(1_000n);
    expect((await ledger.getAccount(bob, b.id)).balance).toBe(0n);
    expect(await checkLedgerInvariants(db.pool)).toEqual([]);
  });

  it('keeps the no-negative rule in the database itself, and history append-only', async () => {
    const alice = await createUser(db.pool);
    const a = await fundedAccount(alice, 10n);
    await expect(db.pool.query(sql.unsafe`UPDATE accounts SET balance = -1 WHERE id = ${a.id}`)).rejects.toMatchObject({
      constraint: 'accounts_balance_nonnegative',
    });
    await expect(db.pool.query(sql.unsafe`UPDATE entries SET amount = 1 WHERE account_id = ${a.id}`)).rejects.toThrow(/append-only/);
    await expect(db.pool.query(sql.unsafe`DELETE FROM transfers WHERE to_account_id = ${a.id}`)).rejects.toThrow(/append-only/);
    await expect(db.pool.query(sql.unsafe`UPDATE accounts SET currency = 'XYZ' WHERE id = ${a.id}`)).rejects.toMatchObject({
      constraint: 'accounts_currency_check',
    });
  });
});

describe('idempotency', () => {
  it('replays the first result for the same key and request, and refuses a different request', async () => {
    const alice = await createUser(db.pool);
    const bob = await createUser(db.pool);
    const a = await fundedAccount(alice, 1_000n);
    const b = await ledger.openAccount(bob, { currency: 'USD' });
    const key = idemKey();
    const request = { fromAccountId: a.id, toAccountId: b.id, amount: 300n, currency: 'USD', idempotencyKey: key };
    const first = await ledger.transfer(alice, request);
    const again = await ledger.transfer(alice, request);
    expect(again).toEqual({ ...first, replayed: true });
    expect((await ledger.getAccount(alice, a.id)).balance).toBe(700n);
    await expect(ledger.transfer(alice, { ...request, amount: 301n })).rejects.toMatchObject({ code: 'IDEMPOTENCY_CONFLICT' });
    await expect(ledger.deposit(alice, { accountId: a.id, amount: 300n, idempotencyKey: key })).rejects.toMatchObject({
      code: 'IDEMPOTENCY_CONFLICT',
    });
    // Keys belong to a user: bob may use the same key string for his own request.
    await ledger.deposit(bob, { accountId: b.id, amount: 1n, idempotencyKey: key });
  });

  it('moves money once when the same key is fired 10 times at once', async () => {
    const alice = await createUser(db.pool);
    const bob = await createUser(db.pool);
    const a = await fundedAccount(alice, 1_000n);
    const b = await ledger.openAccount(bob, { currency: 'USD' });
    const request = { fromAccountId: a.id, toAccountId: b.id, amount: 100n, currency: 'USD', idempotencyKey: idemKey() };
    const results = await Promise.all(Array.from({ length: 10 }, () => ledger.transfer(alice, request)));
    expect(new Set(results.map((r) => r.transfer.id)).size).toBe(1);
    expect(results.filter((r) => !r.replayed)).toHaveLength(1);
    expect((await ledger.getAccount(alice, a.id)).balance).toBe(900n);
    expect((await ledger.getAccount(bob, b.id)).balance).toBe(100n);
    const deposits = await Promise.all(
      Array.from({ length: 10 }, () => ledger.deposit(bob, { accountId: b.id, amount: 7n, idempotencyKey: 'same-deposit' })),
    );
    expect(new Set(deposits.map((r) => r.transfer.id)).size).toBe(1);
    expect((await ledger.getAccount(bob, b.id)).balance).toBe(107n);
    expect(await checkLedgerInvariants(db.pool)).toEqual([]);
  });

  it('lets a key whose first attempt failed be used again once the failure is gone', async () => {
    const alice = await createUser(db.pool);
    const bob = await createUser(db.pool);
    const a = await fundedAccount(alice, 50n);
    const b = await ledger.openAccount(bob, { currency: 'USD' });
    const request = { fromAccountId: a.id, toAccountId: b.id, amount: 80n, currency: 'USD', idempotencyKey: idemKey() };
    await expect(ledger.transfer(alice, request)).rejects.toMatchObject({ code: 'INSUFFICIENT_FUNDS' });
    await ledger.deposit(alice, { accountId: a.id, amount: 50n, idempotencyKey: idemKey() });
    expect((await ledger.transfer(alice, request)).replayed).toBe(false);
    expect((await ledger.getAccount(alice, a.id)).balance).toBe(20n);
  });
});

describe('refusals', () => {
  it('answers a refused movement without costing the pool its connection', async () => {
    const single = await createDatabasePool(db.url, { maximumPoolSize: 1 });
    try {
      const narrow = new LedgerService({ pool: single });
      const backend = () => single.oneFirst(sql.type(z.object({ pid: z.number() }))`SELECT pg_backend_pid() AS pid`);
      const alice = await createUser(db.pool);
      const a = await fundedAccount(alice, 5n);
      const before = await backend();
      for (let i = 0; i < 20; i++) {
        await expect(
          narrow.transfer(alice, { fromAccountId: a.id, toAccountId: 987_654n, amount: 1n, currency: 'USD', idempotencyKey: idemKey() }),
        ).rejects.toMatchObject({ code: 'ACCOUNT_NOT_FOUND' });
        await expect(narrow.deposit(alice, { accountId: 987_654n, amount: 1n, idempotencyKey: idemKey() })).rejects.toMatchObject({
          code: 'ACCOUNT_NOT_FOUND',
        });
      }
      expect(await backend()).toBe(before);
    } finally {
      await single.end();
    }
  });

  it('reports each movement to the observer with outcome ok or the refusal name', async () => {
    const events: { operation: string; currency: string; outcome: string; replayed: boolean }[] = [];
    const observed = new LedgerService({ pool: db.pool, observer: { moved: (event) => events.push(event) } });
    const alice = await createUser(db.pool);
    const bob = await createUser(db.pool);
    const a = await observed.openAccount(alice, { currency: 'USD' });
    const b = await observed.openAccount(bob, { currency: 'USD' });
    const bEur = await observed.openAccount(bob, { currency: 'EUR' });
    const key = idemKey();
    await observed.deposit(alice, { accountId: a.id, amount: 10n, idempotencyKey: key });
    await observed.deposit(alice, { accountId: a.id, amount: 10n, idempotencyKey: key });
    const move = (over: Partial<Parameters<LedgerService['transfer']>[1]>) =>
      observed.transfer(alice, { fromAccountId: a.id, toAccountId: b.id, amount: 1n, currency: 'USD', idempotencyKey: idemKey(), ...over }).catch(() => undefined);
    await move({ amount: 11n });
    await move({ toAccountId: bEur.id });
    await move({ toAccountId: 987_654_321n });
    await move({ idempotencyKey: key });
    await move({ amount: 0n }); // refused by validation before the ledger: not a movement
    expect(events).toEqual([
      { operation: 'deposit', currency: 'USD', outcome: 'ok', replayed: false },
      { operation: 'deposit', currency: 'USD', outcome: 'ok', replayed: true },
      { operation: 'transfer', currency: 'USD', outcome: 'insufficient_funds', replayed: false },
      { operation: 'transfer', currency: 'USD', outcome: 'currency_mismatch', replayed: false },
      { operation: 'transfer', currency: 'USD', outcome: 'account_not_found', replayed: false },
      { operation: 'transfer', currency: 'USD', outcome: 'idempotency_conflict', replayed: false },
    ]);
  });

  it('leaves no idempotency record behind for refused requests, even when duplicates race', async () => {
    const alice = await createUser(db.pool);
    const bob = await createUser(db.pool);
    const a = await fundedAccount(alice, 10n);
    const b = await ledger.openAccount(bob, { currency: 'USD' });
    const request = { fromAccountId: a.id, toAccountId: b.id, amount: 11n, currency: 'USD', idempotencyKey: idemKey() };
    const results = await Promise.allSettled(Array.from({ length: 10 }, () => ledger.transfer(alice, request)));
    expect(results.map((r) => (r.status === 'rejected' ? (r.reason as { code: string }).code : 'moved'))).toEqual(Array(10).fill('INSUFFICIENT_FUNDS'));
    const records = await db.pool.oneFirst(sql.type(z.object({ n: z.number() }))`
      SELECT count(*)::int AS n FROM idempotency_keys WHERE username = ${alice.username} AND key = ${request.idempotencyKey}`);
    expect(records).toBe(0);
    expect((await ledger.getAccount(alice, a.id)).balance).toBe(10n);
  });
});

describe('closing', () => {
  it('closes only empty accounts, keeps history, and refuses money afterwards', async () => {
    const alice = await createUser(db.pool);
    const bob = await createUser(db.pool);
    const banker = await createUser(db.pool, { role: 'banker' });
    const a = await fundedAccount(alice, 500n);
    const b = await fundedAccount(bob, 500n);
    await expect(ledger.closeAccount(alice, a.id)).rejects.toMatchObject({ code: 'ACCOUNT_NOT_EMPTY' });
    await expect(ledger.closeAccount(bob, a.id)).rejects.toMatchObject({ code: 'ACCOUNT_NOT_FOUND' });
    await expect(ledger.closeAccount(banker, a.id)).rejects.toMatchObject({ code: 'PERMISSION_DENIED' });
    await ledger.transfer(alice, { fromAccountId: a.id, toAccountId: b.id, amount: 500n, currency: 'USD', idempotencyKey: idemKey() });
    const closed = await ledger.closeAccount(alice, a.id);
    expect(closed).toMatchObject({ status: 'closed', balance: 0n });
    expect(closed.closedAt).toBeInstanceOf(Date);
    await expect(ledger.closeAccount(alice, a.id)).rejects.toMatchObject({ code: 'ACCOUNT_CLOSED' });
    await expect(ledger.deposit(alice, { accountId: a.id, amount: 1n, idempotencyKey: idemKey() })).rejects.toMatchObject({
      code: 'ACCOUNT_CLOSED',
    });
    await expect(
      ledger.transfer(bob, { fromAccountId: b.id, toAccountId: a.id, amount: 1n, currency: 'USD', idempotencyKey: idemKey() }),
    ).rejects.toMatchObject({ code: 'ACCOUNT_CLOSED' });
    expect((await ledger.listEntries(alice, { accountId: a.id })).items).toHaveLength(2);
    // A new account in the same currency may be opened after closing.
    await expect(ledger.openAccount(alice, { currency: 'USD' })).resolves.toMatchObject({ status: 'open' });
  });
});

describe('history', () => {
  it('pages entries and transfers newest first with an opaque cursor and a time range', async () => {
    const alice = await createUser(db.pool);
    const bob = await createUser(db.pool);
    const a = await fundedAccount(alice, 0n);
    const b = await fundedAccount(bob, 1_000n);
    for (let i = 1; i <= 12; i++) {
      await ledger.deposit(alice, { accountId: a.id, amount: BigInt(i), idempotencyKey: idemKey() });
    }
    for (let i = 1; i <= 13; i++) {
      await ledger.transfer(bob, { fromAccountId: b.id, toAccountId: a.id, amount: 1n, currency: 'USD', idempotencyKey: idemKey() });
    }
    const seen: bigint[] = [];
    let token = '';
    let pages = 0;
    do {
      const page = await ledger.listEntries(alice, { accountId: a.id, pageSize: 10, pageToken: token });
      seen.push(...page.items.map((e) => e.id));
      token = page.nextPageToken;
      pages++;
    } while (token);
    expect(pages).toBe(3);
    expect(seen).toHaveLength(25);
    expect([...seen].sort((x, y) => (x > y ? -1 : 1))).toEqual(seen);
    expect(new Set(seen).size).toBe(25);

    const transfers = await ledger.listTransfers(alice, { accountId: a.id, pageSize: 20 });
    expect(transfers.items).toHaveLength(20);
    expect(transfers.items.every((t) => t.toAccountId === a.id)).toBe(true);
    const rest = await ledger.listTransfers(alice, { accountId: a.id, pageSize: 20, pageToken: transfers.nextPageToken });
    expect(rest.items).toHaveLength(5);
    expect(rest.nextPageToken).toBe('');
    const bobs = await ledger.listTransfers(bob, { accountId: b.id });
    expect(bobs.items).toHaveLength(14);

    const future = new Date(Date.now() + 60_000);
    expect((await ledger.listEntries(alice, { accountId: a.id, since: future })).items).toHaveLength(0);
    expect((await ledger.listEntries(alice, { accountId: a.id, until: future })).items).toHaveLength(25);
    expect((await ledger.listEntries(alice, { accountId: a.id, until: new Date(0) })).items).toHaveLength(0);

    await expect(ledger.listEntries(alice, { accountId: a.id, pageToken: 'garbage!' })).rejects.toMatchObject({
      fieldViolations: [expect.objectContaining({ field: 'page_token' })],
    });
    const entriesToken = (await ledger.listEntries(alice, { accountId: a.id, pageSize: 1 })).nextPageToken;
    await expect(ledger.listTransfers(alice, { accountId: a.id, pageToken: entriesToken })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    await expect(ledger.listEntries(alice, { accountId: a.id, pageSize: -1 })).rejects.toMatchObject({
      fieldViolations: [expect.objectContaining({ field: 'page_size' })],
    });
    await expect(ledger.listEntries(alice, { accountId: a.id, since: future, until: new Date() })).rejects.toMatchObject({
      fieldViolations: [expect.objectContaining({ field: 'until' })],
    });
  });

  it('shows a transfer only to its two sides and to bankers', async () => {
    const alice = await createUser(db.pool);
    const bob = await createUser(db.pool);
    const eve = await createUser(db.pool);
    const banker = await createUser(db.pool, { role: 'banker' });
    const a = await fundedAccount(alice, 10n);
    const b = await ledger.openAccount(bob, { currency: 'USD' });
    const { transfer } = await ledger.transfer(alice, { fromAccountId: a.id, toAccountId: b.id, amount: 10n, currency: 'USD', idempotencyKey: idemKey() });
    await expect(ledger.getTransfer(eve, transfer.id)).rejects.toMatchObject({ code: 'TRANSFER_NOT_FOUND' });
    await expect(ledger.getTransfer(eve, 123_456_789n)).rejects.toMatchObject({ code: 'TRANSFER_NOT_FOUND' });
    expect((await ledger.getTransfer(banker, transfer.id)).id).toBe(transfer.id);
  });
});
