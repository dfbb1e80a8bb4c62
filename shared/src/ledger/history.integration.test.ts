import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { sql } from 'slonik';
import { z } from 'zod';
import { createCountingPool, createTestDatabase, type TestDatabase } from '../../../test/db.ts';
import { createUser, idemKey } from '../../../test/factories.ts';
import type { Actor } from '../auth/actor.ts';
import { AccountNotFound } from '../errors/domain-error.ts';
import { LedgerService } from './ledger.service.ts';
import type { Account, Page } from './ledger.types.ts';
import { encodePageToken } from './page-token.ts';

// History pages run newest first in (created_at, id) order with the id of the last row shown as
// the cursor (ledger.repository.ts, migration 0005). These tests page through histories while
// money keeps moving, across rows whose ids and created_at disagree, and across range bounds.

let db: TestDatabase;
let ledger: LedgerService;

beforeAll(async () => {
  db = await createTestDatabase();
  ledger = new LedgerService({ pool: db.pool });
});
afterAll(async () => {
  await db?.drop();
});

type Listing<T> = (pageToken: string) => Promise<Page<T>>;

/** Every page of a listing in turn; `between` runs after each page that has a next one. */
async function pageThrough<T>(list: Listing<T>, between: () => Promise<void> = async () => {}): Promise<{ items: T[]; pages: number }> {
  const items: T[] = [];
  let token = '';
  let pages = 0;
  do {
    const page = await list(token);
    items.push(...page.items);
    token = page.nextPageToken;
    pages++;
    if (token) await between();
  } while (token && pages < 100);
  return { items, pages };
}

/** The ids in the order the history promises, read from the rows' exact (microsecond) created_at. */
async function newestFirst(table: 'entries' | 'transfers', ids: readonly bigint[]): Promise<readonly bigint[]> {
  return db.pool.manyFirst(sql.type(z.object({ id: z.bigint() }))`
    SELECT id FROM ${sql.identifier([table])} WHERE id = ANY (${sql.array(ids, 'int8')}) ORDER BY created_at DESC, id DESC`);
}

async function accountIds(table: 'entries' | 'transfers', accountId: bigint): Promise<readonly bigint[]> {
  return table === 'entries'
    ? db.pool.anyFirst(sql.type(z.object({ id: z.bigint() }))`SELECT id FROM entries WHERE account_id = ${accountId}`)
    : db.pool.anyFirst(sql.type(z.object({ id: z.bigint() }))`
        SELECT id FROM transfers WHERE ${accountId} IN (from_account_id, to_account_id)`);
}

describe('paging while transfers keep arriving', () => {
  let alice: Actor;
  let bob: Actor;
  let a: Account;
  let b: Account;

  beforeAll(async () => {
    alice = await createUser(db.pool);
    bob = await createUser(db.pool);
    a = await ledger.openAccount(alice, { currency: 'USD' });
    b = await ledger.openAccount(bob, { currency: 'USD' });
    await ledger.deposit(alice, { accountId: a.id, amount: 1_000_000n, idempotencyKey: idemKey() });
    await ledger.deposit(bob, { accountId: b.id, amount: 1_000_000n, idempotencyKey: idemKey() });
    for (let i = 0; i < 20; i++) await moveBothWays(1);
  });

  /** `n` transfers each way between a and b at once (they may share a batch and its created_at). */
  async function moveBothWays(n: number): Promise<void> {
    await Promise.all(
      Array.from({ length: n }, () => [
        ledger.transfer(alice, { fromAccountId: a.id, toAccountId: b.id, amount: 3n, currency: 'USD', idempotencyKey: idemKey() }),
        ledger.transfer(bob, { fromAccountId: b.id, toAccountId: a.id, amount: 5n, currency: 'USD', idempotencyKey: idemKey() }),
      ]).flat(),
    );
  }

  it('shows every entry that existed before paging once, newest first, while new ones arrive between pages', async () => {
    const before = await accountIds('entries', a.id);
    const { items, pages } = await pageThrough(
      (pageToken) => ledger.listEntries(alice, { accountId: a.id, pageSize: 7, pageToken }),
      () => moveBothWays(3),
    );
    const seen = items.map((e) => e.id);
    expect(pages).toBeGreaterThanOrEqual(6);
    expect((await accountIds('entries', a.id)).length).toBeGreaterThan(before.length);
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen).toEqual(expect.arrayContaining([...before]));
    expect(seen).toEqual(await newestFirst('entries', seen));
    expect(items.every((e) => e.accountId === a.id)).toBe(true);
  });

  it('shows every transfer that existed before paging once, newest first, while new ones arrive between pages', async () => {
    const before = await accountIds('transfers', a.id);
    const { items, pages } = await pageThrough(
      (pageToken) => ledger.listTransfers(alice, { accountId: a.id, pageSize: 7, pageToken }),
      () => moveBothWays(3),
    );
    const seen = items.map((t) => t.id);
    expect(pages).toBeGreaterThanOrEqual(6);
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen).toEqual(expect.arrayContaining([...before]));
    expect(seen).toEqual(await newestFirst('transfers', seen));
    expect(items.every((t) => t.fromAccountId === a.id || t.toAccountId === a.id)).toBe(true);
  });
});

describe('rows whose ids and created_at disagree, and time ranges', () => {
  // Movements written by SQL at chosen times, as overlapping transactions write them: created_at
  // is the transaction's start, the id is drawn when it writes. Each is labelled by its amount.
  // Label 4 started before label 3 but wrote after it; labels 6 and 7 are one transaction.
  // Odd labels go from b to a, even ones from a to b, so both sides of the transfers list are used.
  const T0 = Date.parse('2024-03-01T12:00:00.000Z');
  const at = (seconds: number) => new Date(T0 + seconds * 1_000);
  const WRITTEN: readonly (readonly [label: number, seconds: number])[] = [
    [1, 1], [2, 2], [3, 3], [4, 2.5], [5, 4], [6, 5], [7, 5],
  ];
  const NEWEST_FIRST = [7, 6, 5, 3, 4, 2, 1];

  let alice: Actor;
  let a: Account;
  const entryOf = new Map<number, bigint>();
  const transferOf = new Map<number, bigint>();

  beforeAll(async () => {
    alice = await createUser(db.pool);
    const bob = await createUser(db.pool);
    a = await ledger.openAccount(alice, { currency: 'USD' });
    const b = await ledger.openAccount(bob, { currency: 'USD' });
    for (const [label, seconds] of WRITTEN) {
      const [from, to, initiatedBy] = label % 2 === 1 ? [b.id, a.id, bob.username] : [a.id, b.id, alice.username];
      // History rows only (balances untouched): this suite checks no ledger invariant.
      const row = await db.pool.one(sql.type(z.object({ transfer_id: z.bigint(), entry_id: z.bigint() }))`
        WITH t AS (
          INSERT INTO transfers (from_account_id, to_account_id, amount, currency, kind, initiated_by, created_at)
          VALUES (${from}, ${to}, ${label}, 'USD', 'transfer', ${initiatedBy}, ${sql.timestamp(at(seconds))})
          RETURNING id, created_at),
        e AS (
          INSERT INTO entries (account_id, transfer_id, amount, created_at, balance_after)
          SELECT x.account_id, t.id, x.amount, t.created_at, x.amount
            FROM t, (VALUES (${from}::bigint, ${-label}::bigint), (${to}::bigint, ${label}::bigint)) x (account_id, amount)
          RETURNING id, account_id)
        SELECT (SELECT id FROM t) AS transfer_id, (SELECT id FROM e WHERE account_id = ${a.id}) AS entry_id`);
      entryOf.set(label, row.entry_id);
      transferOf.set(label, row.transfer_id);
    }
  });

  const labelsOfEntries = (items: { amount: bigint }[]) => items.map((e) => Math.abs(Number(e.amount)));
  const labelsOfTransfers = (items: { amount: bigint }[]) => items.map((t) => Number(t.amount));
  type Range = { since?: Date; until?: Date };
  const entries = (range: Range, pageSize: number): Listing<{ amount: bigint }> => (pageToken) =>
    ledger.listEntries(alice, { accountId: a.id, pageSize, pageToken, ...range });
  const transfers = (range: Range, pageSize: number): Listing<{ amount: bigint }> => (pageToken) =>
    ledger.listTransfers(alice, { accountId: a.id, pageSize, pageToken, ...range });

  it('orders by created_at, then id, and pages across every boundary without repeating or skipping a row', async () => {
    expect([...entryOf.values()]).toEqual([...entryOf.values()].sort((x, y) => (x < y ? -1 : 1)));
    for (const pageSize of [1, 2, 3, 4, 7]) {
      const byEntries = await pageThrough(entries({}, pageSize));
      expect(labelsOfEntries(byEntries.items)).toEqual(NEWEST_FIRST);
      expect(byEntries.pages).toBe(Math.ceil(NEWEST_FIRST.length / pageSize));
      expect(labelsOfTransfers((await pageThrough(transfers({}, pageSize))).items)).toEqual(NEWEST_FIRST);
    }
  });

  it('takes since as inclusive and until as exclusive, also where a bound falls on a page boundary', async () => {
    // [2 s, 4 s): label 2 sits exactly on since, label 5 exactly on until.
    for (const pageSize of [1, 2, 3]) {
      expect(labelsOfEntries((await pageThrough(entries({ since: at(2), until: at(4) }, pageSize))).items)).toEqual([3, 4, 2]);
      expect(labelsOfTransfers((await pageThrough(transfers({ since: at(2), until: at(4) }, pageSize))).items)).toEqual([3, 4, 2]);
    }
    // [2.5 s, 5 s): label 4 is the out-of-order row on since; the one transaction at 5 s is out.
    for (const pageSize of [1, 2]) {
      expect(labelsOfEntries((await pageThrough(entries({ since: at(2.5), until: at(5) }, pageSize))).items)).toEqual([5, 3, 4]);
      expect(labelsOfTransfers((await pageThrough(transfers({ since: at(2.5), until: at(5) }, pageSize))).items)).toEqual([5, 3, 4]);
    }
    // Only since, only until: the one transaction at 5 s is split by a page of one.
    expect(labelsOfEntries((await pageThrough(entries({ since: at(4) }, 1))).items)).toEqual([7, 6, 5]);
    expect(labelsOfTransfers((await pageThrough(transfers({ until: at(2.5) }, 1))).items)).toEqual([2, 1]);
  });

  it('continues after the row a page token names, whichever page or range it came from', async () => {
    // The token is the id of the last row shown, in the format tokens always had.
    const afterFive = { pageToken: encodePageToken('entries', entryOf.get(5)!) };
    expect(labelsOfEntries((await ledger.listEntries(alice, { accountId: a.id, ...afterFive })).items)).toEqual([3, 4, 2, 1]);
    const afterSixTransfer = { pageToken: encodePageToken('transfers', transferOf.get(6)!) };
    expect(labelsOfTransfers((await ledger.listTransfers(alice, { accountId: a.id, ...afterSixTransfer })).items)).toEqual([5, 3, 4, 2, 1]);

    // A token from an unranged first page, reused with a range that ends below it: the range's rows.
    const first = await ledger.listEntries(alice, { accountId: a.id, pageSize: 2 });
    expect(labelsOfEntries(first.items)).toEqual([7, 6]);
    const below = await ledger.listEntries(alice, { accountId: a.id, pageToken: first.nextPageToken, until: at(3) });
    expect(labelsOfEntries(below.items)).toEqual([4, 2, 1]);
    // ... with a range that ends above it: the rows after the token, within the range.
    const within = await ledger.listEntries(alice, { accountId: a.id, pageToken: first.nextPageToken, since: at(2), until: at(60) });
    expect(labelsOfEntries(within.items)).toEqual([5, 3, 4, 2]);
    // ... with a range that starts above it: nothing left.
    const afterTwo = encodePageToken('transfers', transferOf.get(2)!);
    const none = await ledger.listTransfers(alice, { accountId: a.id, pageToken: afterTwo, since: at(3) });
    expect(none).toEqual({ items: [], nextPageToken: '' });
  });

  it('gives the pages asked for at one moment, read by one statement, as each alone', async () => {
    const token = (label: number) => encodePageToken('entries', entryOf.get(label)!);
    const inputs = [
      { pageSize: 1 }, { pageSize: 2 }, { pageSize: 7 }, { pageSize: 3, since: at(2), until: at(4) },
      { pageSize: 2, since: at(2.5), until: at(5) }, { pageSize: 1, since: at(4) }, { pageSize: 2, until: at(2.5) },
      { pageToken: token(5) }, { pageToken: token(6), until: at(3) }, { pageToken: token(6), since: at(2), until: at(60) },
      { pageToken: token(4), pageSize: 1 }, { pageToken: token(2), since: at(3) },
    ];
    const alone = [];
    for (const input of inputs) alone.push(await ledger.listEntries(alice, { accountId: a.id, ...input }));
    expect(alone.map((page) => labelsOfEntries(page.items))).toEqual([
      [7], [7, 6], NEWEST_FIRST, [3, 4, 2], [5, 3], [7], [2, 1], [3, 4, 2, 1], [4, 2, 1], [5, 3, 4, 2], [2], [],
    ]);
    // The first leaves at once; the others wait for it and go together.
    const together = await Promise.all([ledger.listEntries(alice, { accountId: a.id }), ...inputs.map((input) => ledger.listEntries(alice, { accountId: a.id, ...input }))]);
    expect(together.slice(1)).toEqual(alone);
  });

  it('gives the transfer pages asked for at one moment, read by one statement, as each alone', async () => {
    const token = (label: number) => encodePageToken('transfers', transferOf.get(label)!);
    const inputs = [
      { pageSize: 1 }, { pageSize: 3 }, { pageSize: 7 }, { pageSize: 3, since: at(2), until: at(4) },
      { pageSize: 2, since: at(2.5), until: at(5) }, { pageSize: 2, until: at(2.5) },
      { pageToken: token(6) }, { pageToken: token(6), until: at(3) }, { pageToken: token(7), since: at(2), until: at(60) },
      { pageToken: token(2), since: at(3) },
    ];
    const alone = [];
    for (const input of inputs) alone.push(await ledger.listTransfers(alice, { accountId: a.id, ...input }));
    expect(alone.map((page) => labelsOfTransfers(page.items))).toEqual([
      [7], [7, 6, 5], NEWEST_FIRST, [3, 4, 2], [5, 3], [2, 1], [5, 3, 4, 2, 1], [4, 2, 1], [6, 5, 3, 4, 2], [],
    ]);
    const together = await Promise.all([ledger.listTransfers(alice, { accountId: a.id }), ...inputs.map((input) => ledger.listTransfers(alice, { accountId: a.id, ...input }))]);
    expect(together.slice(1)).toEqual(alone);
  });
});

describe('pages asked for at one moment', () => {
  it('go to the database in fewer statements than pages, each page its own, a refused one failing alone', async () => {
    const owners: { actor: Actor; account: Account }[] = [];
    for (let i = 0; i < 6; i++) {
      const actor = await createUser(db.pool);
      const account = await ledger.openAccount(actor, { currency: 'USD' });
      await ledger.deposit(actor, { accountId: account.id, amount: 1_000n + BigInt(i), idempotencyKey: idemKey() });
      await ledger.deposit(actor, { accountId: account.id, amount: 2_000n + BigInt(i), idempotencyKey: idemKey() });
      owners.push({ actor, account });
    }
    const counting = await createCountingPool(db.url, { pages: 'FROM unnest(' });
    try {
      const service = new LedgerService({ pool: counting.pool });
      const alone = [];
      for (const { actor, account } of owners) alone.push(await service.listEntries(actor, { accountId: account.id, pageSize: 1 }));
      counting.reset();
      // 12 pages in one tick: each owner's first page twice, and one owner asking for another's account.
      const stranger = owners[0]!.actor;
      const asked = [
        ...owners.map(({ actor, account }) => service.listEntries(actor, { accountId: account.id, pageSize: 1 })),
        ...owners.map(({ actor, account }) => service.listEntries(actor, { accountId: account.id, pageSize: 1 })),
        service.listEntries(stranger, { accountId: owners[1]!.account.id, pageSize: 1 }),
      ];
      const settled = await Promise.allSettled(asked);
      expect(settled.slice(0, 12).map((s) => (s.status === 'fulfilled' ? s.value : s.reason))).toEqual([...alone, ...alone]);
      expect(settled[12]).toMatchObject({ status: 'rejected', reason: expect.any(AccountNotFound) });
      // The first page leaves at once; the ones asked for meanwhile go together (plus the
      // stranger's empty page, whose account is then looked up by another statement).
      expect(counting.counts.pages).toBeLessThan(asked.length);
      expect(counting.counts.pages).toBeLessThanOrEqual(2);
      expect(alone.map((page) => page.items[0]!.amount)).toEqual(owners.map((_, i) => 2_000n + BigInt(i)));
      expect(alone.every((page) => page.nextPageToken !== '')).toBe(true);
    } finally {
      await counting.pool.end();
    }
  });
});
