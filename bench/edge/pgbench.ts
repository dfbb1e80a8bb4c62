// The database's own ceiling, measured with pgbench on the bench database in the same run:
// a minimal one-call plpgsql transfer on a copy of the 64 accounts in schema `bench` (the real
// ledger's tables stay untouched), and two of them one after the other (the least a pair of
// calls can do), the real ledger_move() on the real accounts, a hold and its capture through
// ledger_apply() itself, the SELECT the history page runs and the one GetBalance runs.
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import type { CommonQueryMethods } from 'slonik';
import { ledgerRepository } from '../../shared/src/ledger/ledger.repository.ts';
import { percentile } from './grpc-load.ts';
import { BENCH_MONEY_LIMIT } from './stack.ts';

export type PgbenchScript = 'minimal' | 'minimal_pair' | 'ledger_move' | 'hold_capture' | 'history_select' | 'balance_select';

export type PgbenchResult = {
  script: PgbenchScript;
  mode: 'uniform' | 'hot';
  clients: number;
  /** balance_select: which account (e.g. `10k entries`). */
  target?: string;
  tps: number;
  transactions: number;
  /** Failed transactions (pgbench) plus calls that moved no money (refusals). */
  failed: number;
  seconds: number;
  p50Ms: number;
  p99Ms: number;
};

/**
 * Schema `bench`: accounts with the same ids as the bench users' accounts, transfers and entries
 * with the real ones' core columns and per-account indexes (migration 0005), fixed here so the
 * ceiling does not move when the ledger's tables grow, and minimal_transfer(): lock both accounts in ascending
 * id order (the two UPDATEs), one transfer row, two entries. No idempotency, rules or checks:
 * the least a one-call transfer can do.
 */
export async function createMinimalLedger(databaseUrl: string, firstAccountId: bigint, count: number): Promise<void> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    await client.query(`
      CREATE SCHEMA bench;
      CREATE TABLE bench.accounts (id bigint PRIMARY KEY, balance bigint NOT NULL);
      CREATE TABLE bench.transfers (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        from_account_id bigint NOT NULL REFERENCES bench.accounts (id),
        to_account_id bigint NOT NULL REFERENCES bench.accounts (id),
        amount bigint NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now());
      CREATE INDEX ON bench.transfers (from_account_id, created_at, id);
      CREATE INDEX ON bench.transfers (to_account_id, created_at, id);
      CREATE TABLE bench.entries (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        account_id bigint NOT NULL REFERENCES bench.accounts (id),
        transfer_id bigint NOT NULL REFERENCES bench.transfers (id),
        amount bigint NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now());
      CREATE INDEX ON bench.entries (account_id, created_at, id);
      CREATE INDEX ON bench.entries (transfer_id);
      CREATE FUNCTION bench.minimal_transfer(p_from bigint, p_to bigint, p_amount bigint) RETURNS bigint
      LANGUAGE plpgsql AS $$
      DECLARE v_id bigint;
      BEGIN
        UPDATE bench.accounts SET balance = balance + CASE WHEN id = p_from THEN -p_amount ELSE p_amount END
         WHERE id = least(p_from, p_to);
        UPDATE bench.accounts SET balance = balance + CASE WHEN id = p_from THEN -p_amount ELSE p_amount END
         WHERE id = greatest(p_from, p_to);
        INSERT INTO bench.transfers (from_account_id, to_account_id, amount) VALUES (p_from, p_to, p_amount)
        RETURNING id INTO v_id;
        INSERT INTO bench.entries (account_id, transfer_id, amount) VALUES (p_from, v_id, -p_amount), (p_to, v_id, p_amount);
        RETURN v_id;
      END $$;`);
    await client.query(
      `INSERT INTO bench.accounts (id, balance) SELECT $1::bigint + i, 100000000000 FROM generate_series(0, $2::int - 1) i`,
      [String(firstAccountId), count],
    );
  } finally {
    await client.end();
  }
}

/** Counts rows that say how many calls really moved money (refused ones write nothing). */
async function countRows(databaseUrl: string, query: string): Promise<number> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const result = await client.query<{ n: string }>(query);
    return Number(result.rows[0]?.n ?? 0);
  } finally {
    await client.end();
  }
}

/**
 * What tells how many of a script's transactions did their work: a count query and the rows one
 * transaction adds to it. Null for the SELECTs.
 */
const WORK_DONE: Record<PgbenchScript, { query: string; perTransaction: number } | null> = {
  minimal: { query: 'SELECT count(*) AS n FROM bench.transfers', perTransaction: 1 },
  minimal_pair: { query: 'SELECT count(*) AS n FROM bench.transfers', perTransaction: 2 },
  ledger_move: { query: 'SELECT count(*) AS n FROM transfers', perTransaction: 1 },
  hold_capture: { query: 'SELECT count(*) AS n FROM transfers WHERE captured_amount IS NOT NULL', perTransaction: 1 },
  history_select: null,
  balance_select: null,
};

/** One ledger_apply() operation as pgbench SQL, with the limits the bench's stack runs with. */
function ledgerApply(actor: string, key: string, operation: 'transfer' | 'capture', args: { from: string; to: string; amount: string; currency: string; target: string; ttl: string }): string {
  const limit = String(BENCH_MONEY_LIMIT);
  return `ledger_apply(ARRAY[${actor}], ARRAY['depositor'], ARRAY[${key}], ARRAY['pgbench'], ARRAY['${operation}'], ` +
    `ARRAY[${args.from}::bigint], ARRAY[${args.to}::bigint], ARRAY[${args.amount}::bigint], ARRAY[${args.currency}::text], ` +
    `ARRAY[${args.target}::bigint], ARRAY[${args.ttl}::int], ARRAY[NULL::text], ARRAY[NULL::text], ARRAY[NULL::jsonb], ARRAY[NULL::text], ` +
    `${limit}, ${limit}, ${limit})`;
}

/**
 * The pgbench script. Accounts are `first + 0..count-1`, owned by `<prefix><i>`; each
 * ledger_move() and ledger_apply() call has its own key (client id and a random 63-bit number).
 * Statements outside BEGIN/COMMIT are a round trip and a commit each, as the edge's calls are.
 * balance_select reads `balance` (required for it).
 */
export function pgbenchScript(script: PgbenchScript, mode: 'uniform' | 'hot', first: bigint, count: number, prefix: string, balance?: BalanceTarget): string {
  const pick =
    mode === 'hot'
      ? ['\\set a random(0, 1)', '\\set b 1 - :a']
      : [`\\set a random(0, ${count - 1})`, `\\set b (:a + random(1, ${count - 1})) % ${count}`];
  const ids = [`\\set from ${first} + :a`, `\\set to ${first} + :b`];
  switch (script) {
    case 'minimal':
      return [...pick, ...ids, 'SELECT bench.minimal_transfer(:from, :to, 1);', ''].join('\n');
    case 'minimal_pair':
      return [...pick, ...ids, 'SELECT bench.minimal_transfer(:from, :to, 1);', 'SELECT bench.minimal_transfer(:from, :to, 1);', ''].join('\n');
    case 'ledger_move':
      return [
        ...pick,
        ...ids,
        '\\set r random(1, 9223372036854775806)',
        `SELECT error_code FROM ledger_move('${prefix}' || :a::text, 'depositor', 'pgb-' || :client_id::text || '-' || :r::text, 'pgbench', 'transfer', :from, :to, 1, 'USD');`,
        '',
      ].join('\n');
    case 'hold_capture': {
      // The hold's id goes from its answer into the capture (\gset), as the HTTP client's does.
      const actor = `'${prefix}' || :a::text`;
      const key = (kind: string) => `'pg${kind}-' || :client_id::text || '-' || :r::text`;
      const none = { from: 'NULL', to: 'NULL', amount: 'NULL', currency: 'NULL', target: 'NULL', ttl: 'NULL' };
      return [
        ...pick,
        ...ids,
        '\\set r random(1, 9223372036854775806)',
        `SELECT transfer_id AS hold_id FROM ${ledgerApply(actor, key('h'), 'transfer', { ...none, from: ':from', to: ':to', amount: '1', currency: "'USD'", ttl: '300' })} \\gset`,
        `SELECT error_code FROM ${ledgerApply(actor, key('c'), 'capture', { ...none, target: ':hold_id' })};`,
        '',
      ].join('\n');
    }
    case 'history_select':
      return [`\\set id ${first} + random(0, ${count - 1})`, `${historySelect()};`, ''].join('\n');
    case 'balance_select':
      if (!balance) throw new Error('balance_select needs the account to read');
      return [`${balanceSelect(balance)};`, ''].join('\n');
  }
}

type CapturedQuery = { sql: string; values: readonly unknown[] };

/** The one query `run` sends, taken from a stand-in connection that answers nothing. */
function captureQuery(run: (db: CommonQueryMethods) => Promise<unknown>): CapturedQuery {
  let captured: CapturedQuery | null = null;
  const capture = (query: CapturedQuery) => {
    captured = query;
    return Promise.resolve(null);
  };
  void run({ any: (query: CapturedQuery) => capture(query).then(() => []), maybeOne: capture } as unknown as CommonQueryMethods);
  const query = captured as CapturedQuery | null;
  if (!query) throw new Error('the repository ran no query the bench could capture');
  return query;
}

/**
 * The captured query as one line of pgbench script: each parameter inlined as a literal, the
 * `marker` value as the pgbench variable `:id`; SQL comments dropped before the line is joined.
 */
function inlineQuery(query: CapturedQuery, marker?: bigint): string {
  return query.sql
    .replace(/--[^\n]*/g, '')
    .replace(/\$slonik_(\d+)/g, (_, n: string) => {
      const value = query.values[Number(n) - 1];
      if (marker !== undefined && value === marker) return ':id';
      if (typeof value === 'number' || typeof value === 'bigint') return String(value);
      if (typeof value === 'boolean') return value ? 'TRUE' : 'FALSE';
      if (typeof value === 'string' && /^[\w.:-]*$/.test(value)) return `'${value}'`;
      throw new Error(`the query has a parameter the bench cannot inline: ${String(value)}`);
    })
    .replace(/\s+/g, ' ')
    .trim();
}

/**
 * The SELECT the newest history page of 20 runs (one extra row tells whether more follow), taken
 * from ledgerRepository.listEntries itself so the ceiling follows the repository's query as it
 * changes; the account id becomes the pgbench variable `:id`, other values literals.
 */
export function historySelect(): string {
  const marker = -4242n;
  return inlineQuery(
    captureQuery((db) =>
      ledgerRepository.listEntries(db, { accountId: marker, viewer: { username: 'bench_viewer', isBanker: true }, beforeId: null, since: null, until: null, limit: 21 }),
    ),
    marker,
  );
}

/** The account whose balance GetBalance reads, by its owner, at one instant. */
export type BalanceTarget = { accountId: bigint; owner: string; at: Date };

/** The SELECT GetBalance runs (ledgerRepository.balanceAt, its owner reading), every value inlined. */
export function balanceSelect(target: BalanceTarget): string {
  return inlineQuery(
    captureQuery((db) => ledgerRepository.balanceAt(db, { accountId: target.accountId, at: target.at, viewer: { username: target.owner, isBanker: false } })),
  );
}

/** tps as pgbench prints it (15+: "without initial connection time"; older: "excluding connections establishing"). */
export function parsePgbenchOutput(output: string): { tps: number; transactions: number; failed: number } {
  const tps = /^tps = ([\d.]+) \((?:without initial connection time|excluding connections establishing)\)/m.exec(output)?.[1];
  if (!tps) throw new Error(`pgbench printed no tps:\n${output.slice(-2_000)}`);
  return {
    tps: Number(tps),
    transactions: Number(/^number of transactions actually processed: (\d+)/m.exec(output)?.[1] ?? 0),
    failed: Number(/^number of failed transactions: (\d+)/m.exec(output)?.[1] ?? 0),
  };
}

/** Per-transaction latencies (µs, third field) from pgbench's -l logs, in ms, sorted. */
async function loggedLatencies(dir: string): Promise<number[]> {
  const out: number[] = [];
  for (const file of await readdir(dir)) {
    if (!file.startsWith('pgbench_log')) continue;
    for (const line of (await readFile(path.join(dir, file), 'utf8')).split('\n')) {
      const field = line.split(' ')[2];
      if (field !== undefined && /^\d+$/.test(field)) out.push(Number(field) / 1_000);
    }
  }
  return out.sort((a, b) => a - b);
}

/**
 * The balance SELECT answers its account's row with a balance: a ceiling measured on a query that
 * finds nothing (a wrong owner, say) would be no ceiling at all.
 */
async function expectOneBalance(databaseUrl: string, scriptText: string): Promise<void> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const result = await client.query<{ balance: string | null }>(scriptText.trim().replace(/;$/, ''));
    if (result.rows.length !== 1 || result.rows[0]?.balance === null) {
      throw new Error(`the balance SELECT found ${result.rows.length} rows (balance ${String(result.rows[0]?.balance)}), expected one with a balance`);
    }
  } finally {
    await client.end();
  }
}

/** One pgbench run: -n -M prepared, -j up to 2, -T seconds, the script via -f. */
export async function runPgbench(options: {
  databaseUrl: string;
  script: PgbenchScript;
  mode: 'uniform' | 'hot';
  clients: number;
  seconds: number;
  firstAccountId: bigint;
  count: number;
  prefix: string;
  /** balance_select: the account to read and its label. */
  balance?: BalanceTarget & { label: string };
}): Promise<PgbenchResult> {
  const dir = await mkdtemp(path.join(process.env.TMPDIR ?? '/tmp', 'bank-pgbench-'));
  try {
    const file = path.join(dir, `${options.script}-${options.mode}.sql`);
    const scriptText = pgbenchScript(options.script, options.mode, options.firstAccountId, options.count, options.prefix, options.balance);
    await writeFile(file, scriptText);
    if (options.script === 'balance_select') await expectOneBalance(options.databaseUrl, scriptText);
    const work = WORK_DONE[options.script];
    const before = work ? await countRows(options.databaseUrl, work.query) : 0;
    const args = [
      '-n', '-M', 'prepared', '-c', String(options.clients), '-j', String(Math.min(2, options.clients)), '-T', String(options.seconds),
      '-f', file, '-l', '--log-prefix', path.join(dir, 'pgbench_log'), options.databaseUrl,
    ];
    const output = await new Promise<string>((resolve, reject) => {
      const child = spawn('pgbench', args, { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (out += chunk.toString()));
      child.once('error', reject);
      child.once('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`pgbench (${options.script}, ${options.mode}, c${options.clients}) exited ${code}:\n${out.slice(-2_000)}`))));
    });
    const parsed = parsePgbenchOutput(output);
    const done = work ? ((await countRows(options.databaseUrl, work.query)) - before) / work.perTransaction : parsed.transactions;
    const latencies = await loggedLatencies(dir);
    return {
      script: options.script,
      mode: options.mode,
      clients: options.clients,
      ...(options.balance ? { target: options.balance.label } : {}),
      tps: parsed.tps,
      transactions: parsed.transactions,
      failed: parsed.failed + Math.max(0, parsed.transactions - Math.floor(done)),
      seconds: options.seconds,
      p50Ms: percentile(latencies, 50),
      p99Ms: percentile(latencies, 99),
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
