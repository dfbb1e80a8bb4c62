// The database's own ceiling, measured with pgbench on the bench database in the same run:
// a minimal one-call plpgsql transfer on a copy of the 64 accounts in schema `bench` (the real
// ledger's tables stay untouched), the real ledger_move() on the real accounts, and the SELECT
// the history page runs.
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import type { CommonQueryMethods } from 'slonik';
import { ledgerRepository } from '../../shared/src/ledger/ledger.repository.ts';
import { percentile } from './grpc-load.ts';

export type PgbenchScript = 'minimal' | 'ledger_move' | 'history_select';

export type PgbenchResult = {
  script: PgbenchScript;
  mode: 'uniform' | 'hot';
  clients: number;
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
async function countRows(databaseUrl: string, table: string): Promise<number> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const result = await client.query<{ n: string }>(`SELECT count(*) AS n FROM ${table}`);
    return Number(result.rows[0]?.n ?? 0);
  } finally {
    await client.end();
  }
}

/**
 * The pgbench script. Accounts are `first + 0..count-1`, owned by `<prefix><i>`; each
 * ledger_move() call has its own key (client id and a random 63-bit number).
 */
export function pgbenchScript(script: PgbenchScript, mode: 'uniform' | 'hot', first: bigint, count: number, prefix: string): string {
  const pick =
    mode === 'hot'
      ? ['\\set a random(0, 1)', '\\set b 1 - :a']
      : [`\\set a random(0, ${count - 1})`, `\\set b (:a + random(1, ${count - 1})) % ${count}`];
  const ids = [`\\set from ${first} + :a`, `\\set to ${first} + :b`];
  switch (script) {
    case 'minimal':
      return [...pick, ...ids, 'SELECT bench.minimal_transfer(:from, :to, 1);', ''].join('\n');
    case 'ledger_move':
      return [
        ...pick,
        ...ids,
        '\\set r random(1, 9223372036854775806)',
        `SELECT error_code FROM ledger_move('${prefix}' || :a::text, 'depositor', 'pgb-' || :client_id::text || '-' || :r::text, 'pgbench', 'transfer', :from, :to, 1, 'USD');`,
        '',
      ].join('\n');
    case 'history_select':
      return [`\\set id ${first} + random(0, ${count - 1})`, `${historySelect()};`, ''].join('\n');
  }
}

/**
 * The SELECT the newest history page of 20 runs (one extra row tells whether more follow), taken
 * from ledgerRepository.listEntries itself so the ceiling follows the repository's query as it
 * changes; the account id becomes the pgbench variable `:id`, other values literals.
 */
export function historySelect(): string {
  const marker = -4242n;
  let token: { sql: string; values: readonly unknown[] } | null = null;
  const capture = {
    any: (query: { sql: string; values: readonly unknown[] }) => {
      token = query;
      return Promise.resolve([]);
    },
  };
  void ledgerRepository.listEntries(capture as unknown as CommonQueryMethods, { accountId: marker, viewer: { username: 'bench_viewer', isBanker: true }, beforeId: null, since: null, until: null, limit: 21 });
  const captured = token as { sql: string; values: readonly unknown[] } | null;
  if (!captured) throw new Error('ledgerRepository.listEntries ran no query');
  return captured.sql
    .replace(/\$slonik_(\d+)/g, (_, n: string) => {
      const value = captured.values[Number(n) - 1];
      if (value === marker) return ':id';
      if (typeof value === 'number' || typeof value === 'bigint') return String(value);
      if (typeof value === 'boolean') return value ? 'TRUE' : 'FALSE';
      if (typeof value === 'string' && /^[a-z_]+$/.test(value)) return `'${value}'`;
      throw new Error(`listEntries has a parameter the bench cannot inline: ${String(value)}`);
    })
    .replace(/\s+/g, ' ')
    .trim();
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
}): Promise<PgbenchResult> {
  const dir = await mkdtemp(path.join(process.env.TMPDIR ?? '/tmp', 'bank-pgbench-'));
  try {
    const file = path.join(dir, `${options.script}-${options.mode}.sql`);
    await writeFile(file, pgbenchScript(options.script, options.mode, options.firstAccountId, options.count, options.prefix));
    const table = options.script === 'minimal' ? 'bench.transfers' : options.script === 'ledger_move' ? 'transfers' : null;
    const before = table ? await countRows(options.databaseUrl, table) : 0;
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
    const moved = table ? (await countRows(options.databaseUrl, table)) - before : parsed.transactions;
    const latencies = await loggedLatencies(dir);
    return {
      script: options.script,
      mode: options.mode,
      clients: options.clients,
      tps: parsed.tps,
      transactions: parsed.transactions,
      failed: parsed.failed + Math.max(0, parsed.transactions - moved),
      seconds: options.seconds,
      p50Ms: percentile(latencies, 50),
      p99Ms: percentile(latencies, 99),
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
