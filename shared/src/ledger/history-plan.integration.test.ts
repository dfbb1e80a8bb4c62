import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import pg from 'pg';
import { sql, type DatabasePool } from 'slonik';
import { z } from 'zod';
import { createTestDatabase, type TestDatabase } from '../../../test/db.ts';
import { buildHistory } from '../../../test/history-builder.ts';
import { createDatabasePool } from '../db/pool.ts';
import { ledgerRepository, type HistoryQuery } from './ledger.repository.ts';
import { DEFAULT_PAGE_SIZE } from './page-token.ts';

// Goal P3 (issue 10): a history page keeps its cost as the account's history grows. Timing it
// here would be flaky, so this counts the work instead: for the exact statements the repository
// sends, on an account with enough history that the planner's choice matters, PostgreSQL's own
// EXPLAIN ANALYZE must show no sort and index scans on the history indexes (migration 0005) that
// read no more rows than the page and only a handful of blocks. bench:history times the same
// statements at 10k and 5M entries.

const HISTORY = 200_000;
/** What LedgerService asks for: a default page and one row to tell whether another follows. */
const LIMIT = DEFAULT_PAGE_SIZE + 1;
/**
 * Blocks a page's history scan may touch: the btree descent, a leaf or two, the heap pages of
 * its rows (5 to 11 measured). A scan that stepped over the rows between its start and the page,
 * as the (account, id) plans did for a range, reads hundreds or thousands of blocks here.
 */
const BLOCK_BUDGET = 40;

type PlanNode = {
  'Node Type': string;
  'Parent Relationship'?: string;
  'Relation Name'?: string;
  'Index Name'?: string;
  'Scan Direction'?: string;
  Filter?: string;
  'Actual Rows': number;
  'Actual Loops': number;
  'Shared Hit Blocks': number;
  'Shared Read Blocks': number;
  Plans?: PlanNode[];
};

const HISTORY_INDEXES = {
  entries: ['entries_account_created_idx'],
  transfers: ['transfers_from_account_created_idx', 'transfers_to_account_created_idx'],
} as const;

let db: TestDatabase;
/** A pool that records every statement it sends, to EXPLAIN exactly those. */
let recording: DatabasePool;
const sent: { sql: string; values: readonly unknown[] }[] = [];
let accountId: bigint;

beforeAll(async () => {
  db = await createTestDatabase();
  recording = await createDatabasePool(db.url, {
    maximumPoolSize: 1,
    interceptors: [{ name: 'record', beforeQueryExecution: (_context, query) => (sent.push(query), null) }],
  });
  ({ accountId } = await buildHistory(db.pool, { owner: 'plan_big', transfers: HISTORY }));
  // What autovacuum would have done by the time an account has this much history.
  await db.pool.query(sql.unsafe`VACUUM ANALYZE accounts, transfers, entries`);
}, 60_000);
afterAll(async () => {
  await recording?.end();
  await db?.drop();
});

function nodes(plan: PlanNode): PlanNode[] {
  return [plan, ...(plan.Plans ?? []).flatMap(nodes)];
}

/** Runs one repository call, then EXPLAIN ANALYZEs the one statement it sent, with its values. */
async function planOf(call: (pool: DatabasePool) => Promise<unknown[]>): Promise<{ rows: number; plan: PlanNode }> {
  sent.length = 0;
  const rows = (await call(recording)).length;
  expect(sent).toHaveLength(1);
  const [statement] = sent;
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  try {
    const values = statement!.values.map((value) => (typeof value === 'bigint' ? value.toString() : value));
    const result = await client.query<{ 'QUERY PLAN': [{ Plan: PlanNode }] }>(
      `EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) ${statement!.sql}`,
      values,
    );
    return { rows, plan: result.rows[0]!['QUERY PLAN'][0].Plan };
  } finally {
    await client.end();
  }
}

/**
 * The page's scans of the history table: index scans backward on the history indexes, every
 * condition an index condition, no more rows than the page, a bounded number of blocks, once per
 * page of the statement (`pages`: entries are read a batch of pages at a time); the cursor's own
 * row is read by primary key. Nothing sorted but the rows the statement returns (the batch of
 * pages put in order at its top, at most `pages` times the page).
 */
function expectFlatPlan(plan: PlanNode, table: 'entries' | 'transfers', pages = 1): void {
  const all = nodes(plan);
  for (const sort of all.filter((n) => /Sort/.test(n['Node Type']))) {
    expect(sort).toBe(plan);
    expect(sort['Actual Rows']).toBeLessThanOrEqual(LIMIT * pages);
  }
  const onTable = all.filter((n) => n['Relation Name'] === table);
  const lookups = onTable.filter((n) => n['Index Name'] === `${table}_pkey`);
  const scans = onTable.filter((n) => !lookups.includes(n));
  expect(scans.map((n) => n['Index Name']).sort()).toEqual([...HISTORY_INDEXES[table]]);
  for (const scan of scans) {
    expect(scan).toMatchObject({ 'Node Type': expect.stringMatching(/^Index (Only )?Scan$/), 'Scan Direction': 'Backward', 'Actual Loops': pages });
    expect(scan.Filter).toBeUndefined();
    expect(scan['Actual Rows']).toBeLessThanOrEqual(LIMIT);
    expect(scan['Shared Hit Blocks'] + scan['Shared Read Blocks']).toBeLessThanOrEqual(BLOCK_BUDGET * pages);
  }
  for (const lookup of lookups) expect(lookup).toMatchObject({ 'Node Type': 'Index Scan', 'Index Name': `${table}_pkey` });
}

/** The account's row `k` places from its oldest, in list order, for cursors and range bounds. */
async function rowAt(table: 'entries' | 'transfers', k: number): Promise<{ id: bigint; createdAt: Date }> {
  const where =
    table === 'entries'
      ? sql.fragment`account_id = ${accountId}`
      : sql.fragment`${accountId} IN (from_account_id, to_account_id)`;
  const row = await db.pool.one(sql.type(z.object({ id: z.bigint(), created_at: z.date() }))`
    SELECT id, created_at FROM ${sql.identifier([table])} WHERE ${where} ORDER BY created_at, id OFFSET ${k} LIMIT 1`);
  return { id: row.id, createdAt: row.created_at };
}

describe.each(['entries', 'transfers'] as const)('a page of %s on an account with 200k of them', (table) => {
  const viewer = { username: 'plan_big', isBanker: false };
  const list = (pool: DatabasePool, query: Omit<HistoryQuery, 'accountId' | 'limit' | 'viewer'>) =>
    table === 'entries'
      ? ledgerRepository.listEntries(pool, { accountId, limit: LIMIT, viewer, ...query })
      : ledgerRepository.listTransfers(pool, { accountId, limit: LIMIT, viewer, ...query });
  const onePercent = HISTORY / 100;

  it('the newest page reads one page from the top of the index', async () => {
    const { rows, plan } = await planOf((pool) => list(pool, { beforeId: null, since: null, until: null }));
    expect(rows).toBe(LIMIT);
    expectFlatPlan(plan, table);
  });

  it('a page from a cursor in the middle starts at the cursor', async () => {
    const cursor = await rowAt(table, HISTORY / 2);
    const { rows, plan } = await planOf((pool) => list(pool, { beforeId: cursor.id, since: null, until: null }));
    expect(rows).toBe(LIMIT);
    expectFlatPlan(plan, table);
  });

  it('a range over the oldest 1% starts at its until', async () => {
    const [oldest, edge] = [await rowAt(table, 0), await rowAt(table, onePercent)];
    const { rows, plan } = await planOf((pool) => list(pool, { beforeId: null, since: oldest.createdAt, until: edge.createdAt }));
    expect(rows).toBe(LIMIT);
    expectFlatPlan(plan, table);
  });

  it('the second page of a range in the middle starts at its cursor', async () => {
    const [since, cursor, until] = [await rowAt(table, HISTORY / 2), await rowAt(table, HISTORY / 2 + onePercent - LIMIT), await rowAt(table, HISTORY / 2 + onePercent)];
    const { rows, plan } = await planOf((pool) => list(pool, { beforeId: cursor.id, since: since.createdAt, until: until.createdAt }));
    expect(rows).toBe(LIMIT);
    expectFlatPlan(plan, table);
  });

  it('a cursor from the newest page reused with a range over the oldest 1% starts at the range', async () => {
    const [oldest, edge, newest] = [await rowAt(table, 0), await rowAt(table, onePercent), await rowAt(table, HISTORY - 10)];
    const { rows, plan } = await planOf((pool) => list(pool, { beforeId: newest.id, since: oldest.createdAt, until: edge.createdAt }));
    expect(rows).toBe(LIMIT);
    expectFlatPlan(plan, table);
  });
});

describe('a batch of entry pages on an account with 200k entries (pages asked for at one moment, read by one statement)', () => {
  const owner = { username: 'plan_big', isBanker: false };
  const onePercent = HISTORY / 100;
  const page = (viewer: HistoryQuery['viewer'], query: Omit<HistoryQuery, 'accountId' | 'limit' | 'viewer'>, id = accountId): HistoryQuery => ({
    accountId: id, limit: LIMIT, viewer, ...query,
  });

  it('reads each page as it would alone, by one bounded backward scan per page', async () => {
    const [oldest, edge, middle, cursor, rangeEnd, newest] = [
      await rowAt('entries', 0), await rowAt('entries', onePercent), await rowAt('entries', HISTORY / 2),
      await rowAt('entries', HISTORY / 2 + onePercent - LIMIT), await rowAt('entries', HISTORY / 2 + onePercent), await rowAt('entries', HISTORY - 10),
    ];
    const queries = [
      page(owner, { beforeId: null, since: null, until: null }),
      page(owner, { beforeId: middle.id, since: null, until: null }),
      page(owner, { beforeId: null, since: oldest.createdAt, until: edge.createdAt }),
      page(owner, { beforeId: cursor.id, since: middle.createdAt, until: rangeEnd.createdAt }),
      page(owner, { beforeId: newest.id, since: oldest.createdAt, until: edge.createdAt }),
    ];
    const alone = [];
    for (const query of queries) alone.push(await ledgerRepository.listEntries(db.pool, query));
    expect(alone.map((rows) => rows.length)).toEqual(queries.map(() => LIMIT));
    expect(await ledgerRepository.listEntriesMany(db.pool, queries)).toEqual(alone);

    const { rows, plan } = await planOf(async (pool) => (await ledgerRepository.listEntriesMany(pool, queries)).flat());
    expect(rows).toBe(LIMIT * queries.length);
    expectFlatPlan(plan, 'entries', queries.length);
  });

  it('gives a viewer who may not see the account, and a cursor that names no entry, empty pages and leaves the others whole', async () => {
    const newestPage = page(owner, { beforeId: null, since: null, until: null });
    const pages = await ledgerRepository.listEntriesMany(db.pool, [
      newestPage,
      page({ username: 'someone_else', isBanker: false }, { beforeId: null, since: null, until: null }),
      page(owner, { beforeId: 9_000_000_000_000n, since: null, until: null }),
      page(owner, { beforeId: null, since: null, until: null }, 9_000_000_000_000n),
      page({ username: 'a_banker', isBanker: true }, { beforeId: null, since: null, until: null }),
    ]);
    const expected = await ledgerRepository.listEntries(db.pool, newestPage);
    expect(pages).toEqual([expected, [], [], [], expected]);
  });
});

describe('a batch of transfer pages on an account with 200k transfers (one statement)', () => {
  it('reads each page as it would alone, by two bounded backward scans per page', async () => {
    const owner = { username: 'plan_big', isBanker: false };
    const onePercent = HISTORY / 100;
    const [oldest, edge, middle, newest] = [
      await rowAt('transfers', 0), await rowAt('transfers', onePercent), await rowAt('transfers', HISTORY / 2), await rowAt('transfers', HISTORY - 10),
    ];
    const queries: HistoryQuery[] = [
      { beforeId: null, since: null, until: null },
      { beforeId: middle.id, since: null, until: null },
      { beforeId: null, since: oldest.createdAt, until: edge.createdAt },
      { beforeId: newest.id, since: oldest.createdAt, until: edge.createdAt },
    ].map((query) => ({ accountId, limit: LIMIT, viewer: owner, ...query }));
    const alone = [];
    for (const query of queries) alone.push(await ledgerRepository.listTransfers(db.pool, query));
    expect(alone.map((rows) => rows.length)).toEqual(queries.map(() => LIMIT));
    expect(await ledgerRepository.listTransfersMany(db.pool, queries)).toEqual(alone);
    const others = await ledgerRepository.listTransfersMany(db.pool, [queries[0]!, { ...queries[0]!, viewer: { username: 'someone_else', isBanker: false } }]);
    expect(others).toEqual([alone[0], []]);

    const { rows, plan } = await planOf(async (pool) => (await ledgerRepository.listTransfersMany(pool, queries)).flat());
    expect(rows).toBe(LIMIT * queries.length);
    expectFlatPlan(plan, 'transfers', queries.length);
  });

  it('refuses a query with a reference (its page is read by the reference indexes, alone)', async () => {
    const query: HistoryQuery = { accountId, limit: LIMIT, viewer: { username: 'plan_big', isBanker: false }, beforeId: null, since: null, until: null };
    await expect(ledgerRepository.listTransfersMany(db.pool, [query, { ...query, reference: 'inv-1' }])).rejects.toThrow(/reference/);
  });
});

describe('the history built for these plans', () => {
  it('holds 200k transfers and entries of the account, among as many of other accounts', async () => {
    const counts = await db.pool.one(sql.type(z.object({ entries: z.number(), mine: z.number(), transfers: z.number() }))`
      SELECT (SELECT count(*)::int FROM entries) AS entries,
             (SELECT count(*)::int FROM entries WHERE account_id = ${accountId}) AS mine,
             (SELECT count(*)::int FROM transfers WHERE ${accountId} IN (from_account_id, to_account_id)) AS transfers`);
    expect(counts).toEqual({ entries: 2 * HISTORY, mine: HISTORY, transfers: HISTORY });
  });
});

describe('the balance of an account with 200k entries at an instant', () => {
  it.each([
    ['now', () => Promise.resolve(new Date())],
    ['in the middle of its history', async () => (await rowAt('entries', HISTORY / 2)).createdAt],
    // (A Date keeps milliseconds, created_at microseconds: the second entry's time, truncated, still
    // lies after the first's.)
    ['near the start of its history', async () => (await rowAt('entries', 1)).createdAt],
  ])('%s reads one entry by a backward scan of the history index, sorting nothing', async (_name, instant) => {
    const at = await instant();
    const { rows, plan } = await planOf(async (pool) => [await ledgerRepository.balanceAt(pool, { accountId, at, viewer: { username: 'plan_big', isBanker: false } })]);
    expect(rows).toBe(1);
    const all = nodes(plan);
    expect(all.filter((n) => /Sort/.test(n['Node Type']))).toEqual([]);
    const scans = all.filter((n) => n['Relation Name'] === 'entries');
    expect(scans).toHaveLength(1);
    expect(scans[0]).toMatchObject({ 'Index Name': 'entries_account_created_idx', 'Scan Direction': 'Backward', 'Actual Rows': 1 });
    expect(scans[0]!['Shared Hit Blocks'] + scans[0]!['Shared Read Blocks']).toBeLessThanOrEqual(BLOCK_BUDGET);
  });
});

describe('balances of an account with 200k entries asked for at one moment (one statement)', () => {
  it('reads each as it would alone, one bounded backward read of the history index each', async () => {
    const owner = { username: 'plan_big', isBanker: false };
    const instants = [new Date(), (await rowAt('entries', HISTORY / 2)).createdAt, (await rowAt('entries', 1)).createdAt];
    const queries = [
      ...instants.map((at) => ({ accountId, at, viewer: owner })),
      { accountId, at: instants[0]!, viewer: { username: 'someone_else', isBanker: false } },
      { accountId, at: instants[1]!, viewer: { username: 'a_banker', isBanker: true } },
    ];
    const alone = [];
    for (const query of queries) alone.push(await ledgerRepository.balanceAt(db.pool, query));
    expect(alone[3]).toBeNull();
    expect(alone.filter((answer) => answer !== null)).toHaveLength(4);
    expect(await ledgerRepository.balancesAt(db.pool, queries)).toEqual(alone);

    const { rows, plan } = await planOf(async (pool) => (await ledgerRepository.balancesAt(pool, queries)).filter((answer) => answer !== null));
    expect(rows).toBe(4);
    const all = nodes(plan);
    expect(all.filter((n) => /Sort/.test(n['Node Type']))).toEqual([]);
    const scans = all.filter((n) => n['Relation Name'] === 'entries');
    expect(scans).toHaveLength(1);
    expect(scans[0]).toMatchObject({ 'Index Name': 'entries_account_created_idx', 'Scan Direction': 'Backward', 'Actual Rows': 1, 'Actual Loops': 4 });
    expect(scans[0]!['Shared Hit Blocks'] + scans[0]!['Shared Read Blocks']).toBeLessThanOrEqual(BLOCK_BUDGET * 4);
  });
});
