// The hold sweep against the real PostgreSQL: holds placed through the ledger's use case, the
// sweeper run as the worker runs it, the stored rows read back by SQL.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import pg from 'pg';
import { sql } from 'slonik';
import { z } from 'zod';
import type { Actor } from '@bank/shared/auth/actor';
import { createDatabasePool, type DatabasePool } from '@bank/shared/db/pool';
import { LedgerService } from '@bank/shared/ledger/ledger.service';
import { createLogger, type Logger } from '@bank/shared/logging/logger';
import { createCountingPool, createTestDatabase, type TestDatabase } from '../../../test/db.ts';
import { createUser, idemKey } from '../../../test/factories.ts';
import { TEST_DATABASE_URL } from '../../../test/services.ts';
import { startHoldSweeper, type HoldSweeper } from './hold-sweeper.ts';

// Long enough that no test's own timer fires a round; tests call sweep() themselves.
const NEVER = 3_600_000;

let db: TestDatabase;
let ledger: LedgerService;
const sweepers = new Set<HoldSweeper>();
const pools = new Set<DatabasePool>();

beforeAll(async () => {
  db = await createTestDatabase();
  ledger = new LedgerService({ pool: db.pool });
});

afterAll(async () => {
  for (const sweeper of sweepers) await sweeper.stop();
  for (const pool of pools) await pool.end();
  await db?.drop();
});

type LogLine = { level: string; msg: string; [key: string]: unknown };

/** A logger whose JSON lines the test reads back. */
function capturedLogger(): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const logger = createLogger({
    name: 'worker',
    level: 'debug',
    pretty: false,
    destination: { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) },
  });
  return { logger, lines };
}

function sweeper(options: { pool?: DatabasePool; batchSize?: number; intervalMs?: number; logger?: Logger }): HoldSweeper {
  const started = startHoldSweeper({
    pool: options.pool ?? db.pool,
    intervalMs: options.intervalMs ?? NEVER,
    batchSize: options.batchSize ?? 100,
    logger: options.logger ?? capturedLogger().logger,
  });
  sweepers.add(started);
  return started;
}

/** A pool that counts the ledger_expire_holds() statements it runs (one per batch). */
async function countingPool(): Promise<{ pool: DatabasePool; batches: () => number }> {
  const counted = await createCountingPool(db.url, { batches: 'ledger_expire_holds' });
  pools.add(counted.pool);
  return { pool: counted.pool, batches: () => counted.counts.batches };
}

type Parties = { alice: Actor; from: bigint; to: bigint };

async function parties(ledgerOn: LedgerService = ledger, pool: DatabasePool = db.pool): Promise<Parties> {
  const alice = await createUser(pool);
  const bob = await createUser(pool);
  const from = (await ledgerOn.openAccount(alice, { currency: 'USD' })).id;
  const to = (await ledgerOn.openAccount(bob, { currency: 'USD' })).id;
  await ledgerOn.deposit(alice, { accountId: from, amount: 100_000n, idempotencyKey: idemKey() });
  return { alice, from, to };
}

async function placeHolds(p: Parties, count: number, ttlSeconds: number, ledgerOn: LedgerService = ledger): Promise<bigint[]> {
  const results = await Promise.all(
    Array.from({ length: count }, () =>
      ledgerOn.transfer(p.alice, { fromAccountId: p.from, toAccountId: p.to, amount: 10n, currency: 'USD', idempotencyKey: idemKey(), hold: { ttlSeconds } }),
    ),
  );
  return results.map((result) => result.transfer.id);
}

const holdRow = z.object({ id: z.bigint(), status: z.string(), expires_at: z.date(), resolved_at: z.date().nullable(), captured_amount: z.bigint().nullable() });

const holdRows = (ids: readonly bigint[], pool: DatabasePool = db.pool) =>
  pool.any(sql.type(holdRow)`
    SELECT id, status, expires_at, resolved_at, captured_amount FROM transfers
     WHERE id = ANY(${sql.array(ids, 'int8')}) ORDER BY id`);

/** Waits, by the database's clock, until every one of the holds is past its deadline. */
async function untilDue(ids: readonly bigint[], pool: DatabasePool = db.pool): Promise<void> {
  const waitMs = await pool.oneFirst(sql.type(z.object({ ms: z.number() }))`
    SELECT greatest(0, ceil(extract(epoch FROM max(expires_at) - clock_timestamp()) * 1000))::float8 AS ms
      FROM transfers WHERE id = ANY(${sql.array(ids, 'int8')})`);
  await new Promise((resolve) => setTimeout(resolve, waitMs + 20));
}

async function until(condition: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

describe('hold sweeper', () => {
  it('marks holds past their deadline expired at their deadline, and logs how many', async () => {
    const p = await parties();
    const due = await placeHolds(p, 3, 1);
    await untilDue(due);
    const { logger, lines } = capturedLogger();
    const swept = sweeper({ logger });
    // The round at start already ran (or is running); this one waits for it.
    await swept.sweep();

    const rows = await holdRows(due);
    expect(rows.map((row) => row.status)).toEqual(['expired', 'expired', 'expired']);
    for (const row of rows) expect(row.resolved_at).toEqual(row.expires_at);
    const reported = lines.filter((line) => line.msg === 'holds expired').reduce((sum, line) => sum + Number(line.expired), 0);
    expect(reported).toBe(3);
    expect((await ledger.getAccount(p.alice, p.from)).availableBalance).toBe(100_000n);
  });

  it('leaves an active hold and a captured hold alone', async () => {
    const p = await parties();
    const [active] = await placeHolds(p, 1, 3_600);
    const [captured] = await placeHolds(p, 1, 1);
    await ledger.captureTransfer(p.alice, { transferId: captured!, amount: 4n, idempotencyKey: idemKey() });
    const before = await holdRows([active!, captured!]);
    await untilDue([captured!]);

    await sweeper({}).sweep();

    const after = await holdRows([active!, captured!]);
    expect(after).toEqual(before);
    expect(after.map((row) => [row.status, row.resolved_at === null, row.captured_amount])).toEqual([
      ['pending', true, null],
      ['posted', false, 4n],
    ]);
  });

  it('drains a backlog larger than the batch size in one round, a batch at a time', async () => {
    await sweeper({}).sweep(); // nothing else due in this database
    const p = await parties();
    const due = await placeHolds(p, 25, 1);
    await untilDue(due);
    const { pool, batches } = await countingPool();
    const { logger, lines } = capturedLogger();
    const swept = sweeper({ pool, batchSize: 10, logger });
    await swept.sweep(); // after the round at start, which drained it

    // 10 + 10 + 5 in the first round, then the explicit round's one empty batch.
    expect(batches()).toBe(4);
    expect(lines.filter((line) => line.msg === 'holds expired').map((line) => [line.expired, line.batches])).toEqual([[25, 3]]);
    expect((await holdRows(due)).every((row) => row.status === 'expired')).toBe(true);
  });

  it('two sweepers at once expire each hold exactly once', async () => {
    await sweeper({}).sweep();
    const p = await parties();
    const due = await placeHolds(p, 60, 1);
    await untilDue(due);
    const first = await countingPool();
    const second = await countingPool();
    const logsA = capturedLogger();
    const logsB = capturedLogger();
    // Each starts its first round at once, on its own pool: the two race over the same 60 rows.
    const a = sweeper({ pool: first.pool, batchSize: 5, logger: logsA.logger });
    const b = sweeper({ pool: second.pool, batchSize: 5, logger: logsB.logger });
    await Promise.all([a.sweep(), b.sweep()]);

    const reported = [...logsA.lines, ...logsB.lines].filter((line) => line.msg === 'holds expired');
    expect(reported.reduce((sum, line) => sum + Number(line.expired), 0)).toBe(60);
    const rows = await holdRows(due);
    expect(rows.filter((row) => row.status === 'expired')).toHaveLength(60);
    expect(rows.every((row) => row.resolved_at?.getTime() === row.expires_at.getTime())).toBe(true);
    const expiredInDatabase = await db.pool.oneFirst(sql.type(z.object({ count: z.number() }))`
      SELECT count(*)::int AS count FROM transfers WHERE status = 'expired' AND from_account_id = ${p.from}`);
    expect(expiredInDatabase).toBe(60);
  });
});

describe('hold sweeper during a database outage', () => {
  let other: TestDatabase;
  const admin = async (statement: string) => {
    const client = new pg.Client({ connectionString: TEST_DATABASE_URL });
    await client.connect();
    try {
      await client.query(statement);
    } finally {
      await client.end();
    }
  };

  beforeAll(async () => {
    other = await createTestDatabase({ poolSize: 2 });
  });
  afterAll(async () => {
    await admin(`ALTER DATABASE ${other.name} ALLOW_CONNECTIONS true`).catch(() => undefined);
    await other?.drop();
  });

  it('logs the failed round and expires the hold once the database is back', async () => {
    const otherLedger = new LedgerService({ pool: other.pool });
    const p = await parties(otherLedger, other.pool);
    const [hold] = await placeHolds(p, 1, 2, otherLedger);
    const pool = await createDatabasePool(other.url, { maximumPoolSize: 2, connectionTimeoutMs: 1_000 });
    pools.add(pool);
    const { logger, lines } = capturedLogger();
    const swept = sweeper({ pool, logger, intervalMs: 100 });
    await until(() => lines.some((line) => line.msg === 'hold sweep: nothing due'), 5_000, 'the round at start');

    // The database goes away (a restart, a failover): every session is cut, none may connect.
    await admin(`ALTER DATABASE ${other.name} ALLOW_CONNECTIONS false`);
    await admin(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '${other.name}'`);
    await until(() => lines.filter((line) => line.msg === 'hold sweep failed; will retry').length >= 2, 10_000, 'two failed rounds');
    await new Promise((resolve) => setTimeout(resolve, 2_100)); // the hold is now past its deadline
    await admin(`ALTER DATABASE ${other.name} ALLOW_CONNECTIONS true`);

    await until(() => lines.some((line) => line.msg === 'holds expired'), 10_000, 'a round after the outage');
    const failure = lines.find((line) => line.msg === 'hold sweep failed; will retry');
    expect(failure).toMatchObject({ level: 'warn', expired: 0, retryInMs: 100, err: { message: expect.any(String) } });
    expect(lines.find((line) => line.msg === 'holds expired')).toMatchObject({ expired: 1 });
    const [row] = await holdRows([hold!], other.pool);
    expect(row).toMatchObject({ status: 'expired', resolved_at: row?.expires_at });
    await swept.stop();
  });
});
