// npm run bench:ledger — transfers per second and latency through LedgerService.transfer on the
// real PostgreSQL, at concurrency 1, 8 and 32, spread uniformly over 1,000 accounts and on a
// hot spot of 2 accounts. Prints a table; writes bench/results/ledger.json.
// Options (env): BENCH_SECONDS (per run, default 5), DATABASE_URL (server to create a scratch db in).
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'slonik';
import { z } from 'zod';
import { LedgerService } from '../shared/src/ledger/ledger.service.ts';
import type { Actor } from '../shared/src/auth/actor.ts';
import { createTestDatabase } from '../test/db.ts';
import { ANALYZE_NOTE, analyzeDatabase, autovacuumOn } from './edge/autovacuum.ts';
import { checkLedgerInvariants, deadlockCount } from '../test/ledger-invariants.ts';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const CONCURRENCY = [1, 8, 32];
const ACCOUNTS = 1_000;

type Holder = { actor: Actor; accountId: bigint };
type Run = { scenario: string; concurrency: number; transfers: number; failed: number; seconds: number; tps: number; p50Ms: number; p99Ms: number };

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;

async function main() {
  const db = await createTestDatabase({ poolSize: 32 });
  try {
    // Limits far above what the bench moves: it measures speed, not refusals.
    const unlimited = 1_000_000_000_000_000n;
    const ledger = new LedgerService({ pool: db.pool, limits: { depositMaxAmount: unlimited, depositDailyLimit: unlimited, outgoingDailyLimit: unlimited } });
    // Users and accounts in bulk by SQL (setup is not what is measured), funded through deposits.
    await db.pool.query(sql.unsafe`
      INSERT INTO users (username, email, full_name, hashed_password)
      SELECT 'bench_' || i, 'bench_' || i || '@example.test', 'Bench ' || i, 'x' FROM generate_series(1, ${ACCOUNTS}) i`);
    const ids = await db.pool.manyFirst(sql.type(z.object({ id: z.bigint() }))`
      INSERT INTO accounts (owner, currency) SELECT 'bench_' || i, 'USD' FROM generate_series(1, ${ACCOUNTS}) i RETURNING id`);
    const holders: Holder[] = ids.map((accountId, i) => ({ actor: { username: `bench_${i + 1}`, role: 'depositor' }, accountId }));
    for (const h of holders) {
      await ledger.deposit(h.actor, { accountId: h.accountId, amount: 1_000_000_000n, idempotencyKey: `fund-${h.accountId}` });
    }
    const analyzeBeforeRuns = !(await autovacuumOn(db.url));
    if (analyzeBeforeRuns) console.log(`bench:ledger: ${ANALYZE_NOTE}`);
    const deadlocksBefore = await deadlockCount(db.pool);
    let keySeq = 0;
    const runs: Run[] = [];

    for (const scenario of ['uniform-1000', 'hotspot-2'] as const) {
      for (const concurrency of CONCURRENCY) {
        const pick = (): [Holder, Holder] => {
          if (scenario === 'hotspot-2') return keySeq % 2 === 0 ? [holders[0]!, holders[1]!] : [holders[1]!, holders[0]!];
          const a = Math.floor(Math.random() * ACCOUNTS);
          const b = (a + 1 + Math.floor(Math.random() * (ACCOUNTS - 1))) % ACCOUNTS;
          return [holders[a]!, holders[b]!];
        };
        if (analyzeBeforeRuns) await analyzeDatabase(db.url);
        const latencies: number[] = [];
        let failed = 0;
        const started = performance.now();
        const deadline = started + SECONDS * 1_000;
        await Promise.all(
          Array.from({ length: concurrency }, async () => {
            while (performance.now() < deadline) {
              const [from, to] = pick();
              const t0 = performance.now();
              try {
                await ledger.transfer(from.actor, {
                  fromAccountId: from.accountId,
                  toAccountId: to.accountId,
                  amount: 1n + BigInt(keySeq % 100),
                  currency: 'USD',
                  idempotencyKey: `bench-${keySeq++}`,
                });
                latencies.push(performance.now() - t0);
              } catch {
                failed++;
              }
            }
          }),
        );
        const seconds = (performance.now() - started) / 1_000;
        latencies.sort((x, y) => x - y);
        const run: Run = {
          scenario,
          concurrency,
          transfers: latencies.length,
          failed,
          seconds: Number(seconds.toFixed(2)),
          tps: Math.round(latencies.length / seconds),
          p50Ms: Number(percentile(latencies, 50).toFixed(2)),
          p99Ms: Number(percentile(latencies, 99).toFixed(2)),
        };
        runs.push(run);
        console.log(
          `${run.scenario.padEnd(13)} c=${String(concurrency).padStart(2)}  ${String(run.tps).padStart(6)} transfers/s  p50 ${run.p50Ms.toFixed(2).padStart(6)} ms  p99 ${run.p99Ms.toFixed(2).padStart(7)} ms  (${run.transfers} ok, ${failed} failed)`,
        );
      }
    }
    const deadlocks = (await deadlockCount(db.pool)) - deadlocksBefore;
    const problems = await checkLedgerInvariants(db.pool);
    console.log(`deadlocks during the runs: ${deadlocks}; ledger invariants: ${problems.length === 0 ? 'all hold' : problems.join('; ')}`);
    const out = path.resolve(import.meta.dirname, 'results/ledger.json');
    await mkdir(path.dirname(out), { recursive: true });
    await writeFile(
      out,
      `${JSON.stringify(
        {
          at: new Date().toISOString(),
          node: process.version,
          cpus: os.cpus().length,
          secondsPerRun: SECONDS,
          path: 'LedgerService.transfer -> one ledger_move() round trip',
          runs,
          deadlocks: Number(deadlocks),
          invariantsHold: problems.length === 0,
        },
        null,
        2,
      )}\n`,
    );
    console.log(`wrote ${path.relative(process.cwd(), out)}`);
    if (problems.length > 0 || deadlocks > 0n) process.exitCode = 1;
  } finally {
    await db.drop();
  }
}

await main();
