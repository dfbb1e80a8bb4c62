// npm run bench:history — goal P3 of issue 10: a history page keeps its p99 within 1.5x from
// 10k to 5M entries in the account. In a scratch database it builds one account with 10k and one
// with 5M transfers (each a transfer row and two entries, by bulk SQL: test/history-builder.ts),
// then times the repository's own list calls (ledgerRepository.listEntries / listTransfers, one
// default page) for the newest page, a middle page from a cursor, a since/until range over the
// oldest 1% and a range in the middle, one call at a time, the two accounts' calls interleaved
// so both see the same machine. It does so twice in one run: first with the code and migrations
// as they were before the history indexes (the commit before migration 0005, read from git),
// then after applying the pending migrations, with the code of this tree. Prints a table of the
// p99s side by side with their ratios and the verdict; writes bench/results/history.json.
// After, each case is also timed as a batch of BATCH pages in one statement (listEntriesMany /
// listTransfersMany: how the service reads the pages asked for at one moment), for P3 too.
// A p99 of sub-millisecond calls is mostly the machine's scheduling noise, so each case takes up to
// 5000 calls per account and the table shows the p50 ratio beside it.
// Options (env): BENCH_HISTORY_BIG (5000000), BENCH_HISTORY_SMALL (10000), BENCH_HISTORY_SAMPLES
// (most calls per case and account, 5000), BENCH_HISTORY_SECONDS (time per case, 8; at least 3
// calls each), BENCH_HISTORY_BEFORE (0 skips the before run), BENCH_HISTORY_BEFORE_REF (git ref of
// the code before), DATABASE_URL (the server to create the scratch database in).
import { execFileSync } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { sql, type DatabasePool } from 'slonik';
import { z } from 'zod';
import { migrateUp } from '../services/migrator/src/migrator.ts';
import { createDatabasePool } from '../shared/src/db/pool.ts';
import { ledgerRepository, type HistoryQuery } from '../shared/src/ledger/ledger.repository.ts';
import { DEFAULT_PAGE_SIZE } from '../shared/src/ledger/page-token.ts';
import { createEmptyDatabase } from '../test/db.ts';
import { buildHistory, type BuiltHistory } from '../test/history-builder.ts';

const ROOT = path.resolve(import.meta.dirname, '..');
const BIG = Number(process.env.BENCH_HISTORY_BIG ?? 5_000_000);
const SMALL = Number(process.env.BENCH_HISTORY_SMALL ?? 10_000);
const SAMPLES = Number(process.env.BENCH_HISTORY_SAMPLES ?? 5_000);
const SECONDS = Number(process.env.BENCH_HISTORY_SECONDS ?? 8);
const MIN_SAMPLES = 3;
const P3_RATIO = 1.5;
/** What LedgerService asks for: a default page and one row to tell whether another follows. */
const LIMIT = DEFAULT_PAGE_SIZE + 1;

type Repository = Pick<typeof ledgerRepository, 'listEntries' | 'listTransfers'> &
  Partial<Pick<typeof ledgerRepository, 'listEntriesMany' | 'listTransfersMany'>>;
/** The pages of one batched call (the same page BATCH times). */
const BATCH = 8;
type List = 'entries' | 'transfers';
type CaseName = 'newest page' | 'middle page (cursor)' | 'oldest 1% (range)' | 'middle 1% (range)';
type Stats = { samples: number; p50Ms: number; p99Ms: number; rows: number };
/**
 * ratio: the big account's p99 over the small one's (what P3 bounds); p50Ratio the same for p50.
 * batch: pages per call (1, or BATCH in one statement).
 */
type Row = { list: List; case: CaseName; batch: number; small: Stats; big: Stats; ratio: number; p50Ratio: number };

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
const round = (ms: number) => Number(ms.toFixed(3));

function stats(latencies: number[], rows: number): Stats {
  const sorted = [...latencies].sort((x, y) => x - y);
  return { samples: sorted.length, p50Ms: round(percentile(sorted, 50)), p99Ms: round(percentile(sorted, 99)), rows };
}

function git(args: string[]): string {
  return execFileSync('git', args, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
}

/** The commit before the one that added migration 0005: the history code as it was. */
function beforeRef(): string {
  if (process.env.BENCH_HISTORY_BEFORE_REF) return git(['rev-parse', '--verify', process.env.BENCH_HISTORY_BEFORE_REF]);
  const added = git(['log', '--diff-filter=A', '--format=%H', '--', 'services/migrator/migrations/0005_history_indexes.sql']).split('\n').at(-1);
  return git(['rev-parse', '--verify', added ? `${added}^` : 'HEAD']);
}

/**
 * The shared library and the migrations of `ref`, unpacked into a temporary directory (with this
 * tree's node_modules), so the before run executes that commit's own repository code.
 */
async function checkout(ref: string): Promise<{ dir: string; repository: Repository; migrations: string }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'bank-history-before-'));
  execFileSync('sh', ['-c', `git archive --format=tar "$1" package.json shared services/migrator/migrations | tar -x -C "$2"`, 'sh', ref, dir], { cwd: ROOT });
  // The schema before 0005 as this tree has it (0004 gained entries.balance_after after that
  // commit): the before run differs only in the history indexes and the code, and this tree's
  // migrator then sees the same files up to 0004 and applies the rest.
  const migrationsDir = path.join(dir, 'services/migrator/migrations');
  const current = path.join(ROOT, 'services/migrator/migrations');
  for (const file of await readdir(migrationsDir)) if (file < '0005') await rm(path.join(migrationsDir, file));
  for (const file of await readdir(current)) if (file < '0005') await copyFile(path.join(current, file), path.join(migrationsDir, file));
  await symlink(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'));
  const module = (await import(pathToFileURL(path.join(dir, 'shared/src/ledger/ledger.repository.ts')).href)) as { ledgerRepository: Repository };
  return { dir, repository: module.ledgerRepository, migrations: path.join(dir, 'services/migrator/migrations') };
}

/** The four page shapes of P3 on one account; cursors are the account's middle transfer and its entry. */
async function casesFor(pool: DatabasePool, history: BuiltHistory): Promise<Record<List, Record<CaseName, HistoryQuery>>> {
  const middleTransfer = history.firstTransferId + BigInt(Math.floor(history.transfers / 2));
  const middleEntry = await pool.oneFirst(sql.type(z.object({ id: z.bigint() }))`
    SELECT id FROM entries WHERE transfer_id = ${middleTransfer} AND account_id = ${history.accountId}`);
  const span = history.end.getTime() - history.start.getTime();
  const at = (fraction: number) => new Date(history.start.getTime() + fraction * span);
  const page = (beforeId: bigint | null, since: Date | null, until: Date | null): HistoryQuery => ({
    accountId: history.accountId,
    // The account's owner reads it (the code before the viewer check ignores this field).
    viewer: { username: history.owner, isBanker: false },
    beforeId,
    since,
    until,
    limit: LIMIT,
  });
  const shapes = (cursor: bigint): Record<CaseName, HistoryQuery> => ({
    'newest page': page(null, null, null),
    'middle page (cursor)': page(cursor, null, null),
    // The builder's created_at may step back up to 1.5 steps before `start`.
    'oldest 1% (range)': page(null, at(-0.001), at(0.01)),
    'middle 1% (range)': page(null, at(0.5), at(0.51)),
  });
  return { entries: shapes(middleEntry), transfers: shapes(middleTransfer) };
}

/**
 * Each case on both accounts, calls interleaved (small, big, small, ...), until SAMPLES calls each
 * or SECONDS have passed (at least MIN_SAMPLES each), after one untimed call each to warm up.
 */
async function measure(pool: DatabasePool, repository: Repository, label: string, small: BuiltHistory, big: BuiltHistory): Promise<Row[]> {
  const smallCases = await casesFor(pool, small);
  const bigCases = await casesFor(pool, big);
  const rows: Row[] = [];
  const { listEntriesMany, listTransfersMany } = repository;
  const batches = listEntriesMany && listTransfersMany ? [1, BATCH] : [1];
  for (const batch of batches) {
    for (const list of ['entries', 'transfers'] as const) {
      for (const name of Object.keys(smallCases[list]) as CaseName[]) {
        const call = async (query: HistoryQuery): Promise<unknown[]> => {
          if (batch === 1) return list === 'entries' ? repository.listEntries(pool, query) : repository.listTransfers(pool, query);
          const many = list === 'entries' ? listEntriesMany! : listTransfersMany!;
          return (await many(pool, Array.from({ length: batch }, () => query))).flat();
        };
        const timings = { small: [] as number[], big: [] as number[] };
        const rowsOf = { small: 0, big: 0 };
        for (const size of ['small', 'big'] as const) rowsOf[size] = (await call((size === 'small' ? smallCases : bigCases)[list][name])).length;
        const deadline = performance.now() + SECONDS * 1_000;
        while (timings.big.length < SAMPLES && (timings.big.length < MIN_SAMPLES || performance.now() < deadline)) {
          for (const size of ['small', 'big'] as const) {
            const query = (size === 'small' ? smallCases : bigCases)[list][name];
            const t0 = performance.now();
            await call(query);
            timings[size].push(performance.now() - t0);
          }
        }
        const [smallStats, bigStats] = [stats(timings.small, rowsOf.small), stats(timings.big, rowsOf.big)];
        const ratio = (of: (s: Stats) => number) => Number((of(bigStats) / of(smallStats)).toFixed(2));
        const row: Row = { list, case: name, batch, small: smallStats, big: bigStats, ratio: ratio((s) => s.p99Ms), p50Ratio: ratio((s) => s.p50Ms) };
        rows.push(row);
        console.log(
          `[${label}] ${list.padEnd(9)} ${name.padEnd(20)}${batch > 1 ? ` x${batch} in one statement` : ''} p99 ${fmt(row.small.p99Ms)} / ${fmt(row.big.p99Ms)} ms (x${row.ratio}), p50 ${fmt(row.small.p50Ms)} / ${fmt(row.big.p50Ms)} ms (x${row.p50Ratio}); ${row.big.samples} calls, ${row.big.rows} rows`,
        );
      }
    }
  }
  return rows;
}

const fmt = (ms: number) => (ms >= 100 ? ms.toFixed(0) : ms.toFixed(2)).padStart(7);

function printTable(before: Row[] | null, after: Row[]): void {
  const k = (n: number) => (n >= 1_000_000 ? `${n / 1_000_000}M` : `${n / 1_000}k`);
  const title = (when: string) => `${when} p99 ${k(SMALL)} / ${k(BIG)} (ratio; p50 ratio)`.padEnd(43);
  const head = `${'list'.padEnd(9)} ${'page'.padEnd(31)}  ${before ? `${title('before')}  ` : ''}${title('after')}  P3`;
  console.log(`\n${head}\n${'-'.repeat(head.length)}`);
  const cell = (r: Row) => `${fmt(r.small.p99Ms)} / ${fmt(r.big.p99Ms)} ms (x${r.ratio.toFixed(2)}; x${r.p50Ratio.toFixed(2)})`.padEnd(43);
  for (const [i, row] of after.entries()) {
    const old = row.batch === 1 ? before?.[i] : undefined;
    const page = row.batch > 1 ? `${row.case}, ${row.batch} at once` : row.case;
    console.log(`${row.list.padEnd(9)} ${page.padEnd(31)}  ${before ? `${old ? cell(old) : ''.padEnd(43)}  ` : ''}${cell(row)}  ${row.ratio <= P3_RATIO ? 'ok' : 'MISSED'}`);
  }
}

async function main() {
  const runStarted = performance.now();
  const scratch = await createEmptyDatabase('bank_bench_history');
  const withBefore = process.env.BENCH_HISTORY_BEFORE !== '0';
  const ref = withBefore ? beforeRef() : null;
  const before = ref ? await checkout(ref) : null;
  let pool: DatabasePool | null = null;
  try {
    await migrateUp(scratch.url, before ? { dir: before.migrations } : {});
    pool = await createDatabasePool(scratch.url, { maximumPoolSize: 2, statementTimeoutMs: 120_000 });
    console.log(`building: ${BIG.toLocaleString('en')} and ${SMALL.toLocaleString('en')} transfers, twice as many entries ...`);
    const big = await buildHistory(pool, { owner: 'history_big', transfers: BIG });
    const small = await buildHistory(pool, { owner: 'history_small', transfers: SMALL });
    const analyze = performance.now();
    await pool.query(sql.unsafe`ANALYZE accounts, transfers, entries`);
    const build = { bigSeconds: round(big.seconds), smallSeconds: round(small.seconds), analyzeSeconds: round((performance.now() - analyze) / 1_000) };
    console.log(`built in ${build.bigSeconds.toFixed(1)} s (${BIG.toLocaleString('en')}) + ${build.smallSeconds.toFixed(1)} s (${SMALL.toLocaleString('en')}), ANALYZE ${build.analyzeSeconds.toFixed(1)} s`);

    const beforeRows = before ? await measure(pool, before.repository, `before ${ref!.slice(0, 7)}`, small, big) : null;

    const migrating = performance.now();
    const migrated = await migrateUp(scratch.url);
    await pool.query(sql.unsafe`ANALYZE accounts, transfers, entries`);
    const migrateSeconds = round((performance.now() - migrating) / 1_000);
    console.log(`applied ${migrated.applied.join(', ') || 'nothing'} in ${migrateSeconds.toFixed(1)} s (index builds on the tables above)`);

    const afterRows = await measure(pool, ledgerRepository, 'after', small, big);
    printTable(beforeRows, afterRows);
    const missed = afterRows.filter((r) => r.ratio > P3_RATIO);
    const verdict = missed.length === 0 ? 'met' : 'missed';
    console.log(
      `\nP3 (every after ratio <= ${P3_RATIO}): ${verdict}${missed.length ? ` (${missed.map((r) => `${r.list} ${r.case} x${r.ratio}`).join(', ')})` : ''}; whole run ${((performance.now() - runStarted) / 1_000).toFixed(0)} s`,
    );

    const out = path.resolve(import.meta.dirname, 'results/history.json');
    await mkdir(path.dirname(out), { recursive: true });
    await writeFile(
      out,
      `${JSON.stringify(
        {
          at: new Date().toISOString(),
          node: process.version,
          cpus: os.cpus().length,
          postgres: await pool.oneFirst(sql.type(z.object({ v: z.string() }))`SELECT current_setting('server_version') AS v`),
          path: `ledgerRepository.listEntries / listTransfers, one call at a time, page size ${DEFAULT_PAGE_SIZE}; after, also listEntriesMany / listTransfersMany with the same page ${BATCH} times in one call`,
          accounts: { small: SMALL, big: BIG },
          build: { ...build, migrateSeconds, applied: migrated.applied },
          samplesPerCase: SAMPLES,
          secondsPerCase: SECONDS,
          before: beforeRows ? { ref, rows: beforeRows } : null,
          after: { rows: afterRows },
          p3: { limit: P3_RATIO, verdict, worstRatio: Math.max(...afterRows.map((r) => r.ratio)) },
        },
        (_key, value: unknown) => (typeof value === 'bigint' ? value.toString() : value),
        2,
      )}\n`,
    );
    console.log(`wrote ${path.relative(process.cwd(), out)}`);
  } finally {
    await pool?.end();
    await scratch.drop();
    if (before) await rm(before.dir, { recursive: true, force: true });
  }
}

await main();
