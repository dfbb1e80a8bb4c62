// npm run bench:overload — a burst at 10x the sustainable concurrency (issue 12, "Show"). Starts
// the stack as `npm start` does on a fresh database, makes users through the real flow, then with
// wrk on POST /v1/transfers (uniform over the accounts, one new idempotency key per request):
//   - c32 (BENCH_CONCURRENCY: what bench:edge measures the HTTP edge at) for BENCH_SECONDS;
//   - the burst, 10x that (c320), for BENCH_SECONDS, clients waiting Retry-After after a 503;
//   - the same burst with clients that send again at once (the harshest closed loop);
// while probing GET /healthz (every 20 ms) and /readyz (every 100 ms) on the API's port, the
// process under the burst. It reports the share shed with 503, the p99 of the accepted calls (each
// answer timed on its own status, see overload/burst.ts), the probes' p99, and where the calls
// were shed (admission, the database pool, the ledger's queue), then checks that no key answered
// 503 moved money and that every ledger invariant holds. By default it does it all twice: with
// the shedding limits as configured (their defaults, or what the environment says) and with every
// limit at its maximum (the queueing this replaces); BENCH_OVERLOAD_COMPARE=0 runs the first only.
// Writes bench/results/overload.json. Needs wrk, PostgreSQL (DATABASE_URL names the server; a
// database bank_bench_<random> is made and dropped per stack) and Redis.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'slonik';
import { z } from 'zod';
import { configSchema } from '@bank/shared/config/config.schema';
import { createDatabasePool } from '@bank/shared/db/pool';
import { checkLedgerInvariants } from '../test/ledger-invariants.ts';
import { ANALYZE_NOTE, analyzeDatabase, autovacuumOn } from './edge/autovacuum.ts';
import { BENCH_MONEY_LIMIT, startBenchStack } from './edge/stack.ts';
import { createUsers } from './edge/users.ts';
import { runBurst, type BurstResult } from './overload/burst.ts';
import { startProbe, type ProbeResult } from './overload/probe.ts';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const USERS = Number(process.env.BENCH_USERS ?? 64);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 32);
const BURST = CONCURRENCY * 10;
const COMPARE = process.env.BENCH_OVERLOAD_COMPARE !== '0';
const WARM_UP_SECONDS = Math.min(3, SECONDS);
const RESULTS = path.resolve(import.meta.dirname, 'results');

const LIMIT_KEYS = [
  'MAX_INFLIGHT_REQUESTS',
  'MAX_QUEUED_REQUESTS',
  'REQUEST_QUEUE_TIMEOUT_MS',
  'DATABASE_POOL_SIZE',
  'DATABASE_POOL_QUEUE_LIMIT',
  'DATABASE_POOL_WAIT_TIMEOUT_MS',
  'LEDGER_QUEUE_LIMIT',
] as const;
type Limits = Record<(typeof LIMIT_KEYS)[number], number>;

/** Every shedding limit at the most the schema allows: calls queue as they did before issue 12. */
const UNBOUNDED: Partial<Record<keyof Limits, string>> = {
  MAX_INFLIGHT_REQUESTS: '100000',
  MAX_QUEUED_REQUESTS: '100000',
  REQUEST_QUEUE_TIMEOUT_MS: '60000',
  DATABASE_POOL_QUEUE_LIMIT: '100000',
  DATABASE_POOL_WAIT_TIMEOUT_MS: '60000',
  LEDGER_QUEUE_LIMIT: '100000',
};

const log = (line: string) => console.log(`[bench:overload] ${line}`);

if (!(Number.isFinite(SECONDS) && SECONDS >= 1 && Number.isInteger(USERS) && USERS >= 2 && Number.isInteger(CONCURRENCY) && CONCURRENCY >= 1)) {
  console.error('bench:overload: BENCH_SECONDS must be >= 1, BENCH_USERS an integer >= 2, BENCH_CONCURRENCY an integer >= 1');
  process.exit(2);
}
if (spawnSync('sh', ['-c', 'command -v wrk'], { stdio: 'ignore' }).status !== 0) {
  console.error('bench:overload needs wrk: sudo apt-get install wrk');
  process.exit(2);
}

/** The effective limits: the environment over the schema's defaults, as the stack's processes parse them. */
function limitsOf(env: Record<string, string | undefined>): Limits {
  const shape = configSchema.shape;
  return Object.fromEntries(LIMIT_KEYS.map((key) => [key, shape[key].parse(env[key])])) as Limits;
}

/** One labelled sample of a Prometheus text exposition (0 when absent). */
function sampleOf(text: string, name: string, labels: Record<string, string>): number {
  const wanted = Object.entries(labels).map(([key, value]) => `${key}="${value}"`);
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && wanted.every((w) => l.includes(w)));
  return line === undefined ? 0 : Number(line.split(' ').at(-1));
}

/**
 * Calls refused by admission, calls refused waiting for a database connection (a refused batch
 * counts once), and money movements answered OVERLOADED (past the ledger's queue, or in a batch
 * the pool refused).
 */
type ShedCounts = { admission: number; databasePool: number; movements: number };

async function shedCounts(metricsUrl: string): Promise<ShedCounts> {
  const text = await (await fetch(metricsUrl, { signal: AbortSignal.timeout(10_000) })).text();
  const both = (name: string) => sampleOf(text, name, { reason: 'queue_full' }) + sampleOf(text, name, { reason: 'queue_timeout' });
  return {
    admission: both('bank_admission_shed_total'),
    databasePool: both('bank_db_pool_shed_total'),
    movements: sampleOf(text, 'bank_money_movements_total', { operation: 'transfer', outcome: 'overloaded' }),
  };
}

const minus = (a: ShedCounts, b: ShedCounts): ShedCounts => ({
  admission: a.admission - b.admission,
  databasePool: a.databasePool - b.databasePool,
  movements: a.movements - b.movements,
});

type PhaseName = 'sustained' | 'burst' | 'burst, no pause';

type Phase = {
  name: PhaseName;
  load: Omit<BurstResult, 'shedKeys' | 'keyPrefix'>;
  healthz: ProbeResult;
  readyz: ProbeResult;
  shedBy: ShedCounts;
  /** Transfers stored under this phase's keys: the 2xx answers plus those cut off in flight at the end. */
  transfersStored: number;
};

type Scenario = {
  name: 'shedding' | 'unbounded';
  limits: Limits;
  phases: Phase[];
  money: { shedKeysChecked: number; shedKeysThatMovedMoney: number; invariantViolations: string[] };
};

/** One wrk run with both probes running beside it and the shed counters read before and after. */
async function phase(stack: { httpUrl: string; apiMetricsUrl: string }, run: () => Promise<BurstResult>): Promise<{ result: BurstResult; rest: Omit<Phase, 'name' | 'load' | 'transfersStored'> }> {
  const before = await shedCounts(stack.apiMetricsUrl);
  const healthz = startProbe(`${stack.httpUrl}/healthz`, 20);
  const readyz = startProbe(`${stack.httpUrl}/readyz`, 100);
  const result = await run();
  const [healthzResult, readyzResult] = [await healthz.stop(), await readyz.stop()];
  return { result, rest: { healthz: healthzResult, readyz: readyzResult, shedBy: minus(await shedCounts(stack.apiMetricsUrl), before) } };
}

async function scenario(name: Scenario['name'], overrides: Partial<Record<keyof Limits, string>>): Promise<Scenario> {
  const runTag = randomBytes(3).toString('hex');
  log(`${name}: starting the stack on a fresh database`);
  const stack = await startBenchStack({
    NODE_ENV: 'development',
    LOG_LEVEL: 'warn',
    // Sign-up and login are not measured here: the lowest cost makes the set-up quick.
    BCRYPT_COST: '4',
    LOGIN_RATE_LIMIT_MAX: '100000',
    LOGIN_EMAIL_RATE_LIMIT_MAX: '100000',
    SIGNUP_RATE_LIMIT_PER_ADDRESS: '100000',
    SIGNUP_RATE_LIMIT_GLOBAL: '100000',
    OUTBOX_SWEEP_INTERVAL_MS: undefined,
    DEPOSIT_MAX_AMOUNT: String(BENCH_MONEY_LIMIT),
    DEPOSIT_DAILY_LIMIT: String(BENCH_MONEY_LIMIT),
    OUTGOING_DAILY_LIMIT: String(BENCH_MONEY_LIMIT),
    ...overrides,
  });
  const limits = limitsOf({ ...process.env, ...overrides });
  const scriptDir = await mkdtemp(path.join(os.tmpdir(), 'bank-bench-overload-'));
  const stop = async () => {
    await stack.stop();
    await rm(scriptDir, { recursive: true, force: true });
  };
  const onSignal = () => void stop().finally(() => process.exit(130));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    log(`${name}: limits ${LIMIT_KEYS.map((key) => `${key}=${limits[key]}`).join(' ')}`);
    const { users } = await createUsers({ httpUrl: stack.httpUrl, inboxUrl: stack.inboxUrl, count: USERS, concurrency: 8 });
    log(`${name}: ${USERS} users signed up, verified, logged in and funded; warming up (${WARM_UP_SECONDS} s at c${CONCURRENCY}, not reported)`);
    const common = { baseUrl: stack.httpUrl, users, seconds: SECONDS, scriptDir };
    const analyzeBeforeRuns = !(await autovacuumOn(stack.databaseUrl));
    if (analyzeBeforeRuns) log(`${name}: ${ANALYZE_NOTE}`);
    await runBurst({ ...common, tag: `warm-${runTag}`, connections: CONCURRENCY, seconds: WARM_UP_SECONDS, honourRetryAfter: true });

    // Without shedding nothing is refused, so the clients' answer to a refusal changes nothing.
    const plan: { name: PhaseName; connections: number; honourRetryAfter: boolean }[] = [
      { name: 'sustained', connections: CONCURRENCY, honourRetryAfter: true },
      { name: 'burst', connections: BURST, honourRetryAfter: true },
      ...(name === 'shedding' ? [{ name: 'burst, no pause' as const, connections: BURST, honourRetryAfter: false }] : []),
    ];
    const pool = await createDatabasePool(stack.databaseUrl, { maximumPoolSize: 2 });
    try {
      const phases: Phase[] = [];
      const shedKeys: string[] = [];
      for (const [i, step] of plan.entries()) {
        const clients = step.honourRetryAfter ? 'clients wait Retry-After after a 503' : 'clients send again at once after a 503';
        if (analyzeBeforeRuns) await analyzeDatabase(stack.databaseUrl);
        log(`${name}: ${step.name}: c${step.connections} for ${SECONDS} s, ${clients}`);
        const { result, rest } = await phase(stack, () => runBurst({ ...common, tag: `p${i}-${runTag}`, connections: step.connections, honourRetryAfter: step.honourRetryAfter }));
        const { shedKeys: keys, keyPrefix, ...load } = result;
        shedKeys.push(...keys);
        const transfersStored = await pool.oneFirst(sql.type(z.object({ n: z.number() }))`
          SELECT count(*)::int AS n FROM idempotency_keys WHERE key LIKE ${`${keyPrefix}%`} AND transfer_id IS NOT NULL`);
        const done: Phase = { name: step.name, load, ...rest, transfersStored };
        phases.push(done);
        log(`${name}: ${step.name}: ${describe(done)}`);
      }

      log(`${name}: checking that no call answered 503 moved money, and the ledger invariants`);
      let moved = 0;
      for (let i = 0; i < shedKeys.length; i += 10_000) {
        moved += await pool.oneFirst(sql.type(z.object({ n: z.number() }))`
          SELECT count(*)::int AS n FROM idempotency_keys
           WHERE key = ANY(${sql.array(shedKeys.slice(i, i + 10_000), 'text')}) AND transfer_id IS NOT NULL`);
      }
      const money = { shedKeysChecked: shedKeys.length, shedKeysThatMovedMoney: moved, invariantViolations: await checkLedgerInvariants(pool) };
      log(`${name}: ${moved} of ${shedKeys.length} keys answered 503 moved money; ledger invariants: ${money.invariantViolations.length === 0 ? 'all hold' : money.invariantViolations.join('; ')}`);
      return { name, limits, phases, money };
    } finally {
      await pool.end();
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await stop();
  }
}

function describe(p: Phase): string {
  const { load } = p;
  const other = load.other + load.socketErrors > 0 ? `, ${load.other} other statuses and ${load.socketErrors} socket errors (first: ${load.firstOther.slice(0, 160)})` : '';
  return (
    `${load.answered} answered: ${load.ok} ok (${load.okPerSecond}/s, p50 ${load.okP50Ms} ms, p99 ${load.okP99Ms} ms), ` +
    `${load.shed} shed with 503 (${(load.shedShare * 100).toFixed(1)}%, p99 ${load.shedP99Ms ?? '-'} ms)${other}; ` +
    `/healthz p99 ${p.healthz.p99Ms} ms (${p.healthz.count} probes, ${p.healthz.failures} failed), /readyz p99 ${p.readyz.p99Ms} ms (${p.readyz.failures} of ${p.readyz.count} not 200); ` +
    `shed by admission ${p.shedBy.admission}, at the database pool ${p.shedBy.databasePool}, transfers answered OVERLOADED by the ledger ${p.shedBy.movements}; ` +
    `${p.transfersStored} transfers stored for ${load.ok} answered 2xx (the rest were cut off in flight when wrk stopped)`
  );
}

function printTable(scenarios: readonly Scenario[]): void {
  const rows = scenarios.flatMap((s) =>
    s.phases.map((p) => ({
      scenario: s.name,
      phase: p.name,
      load: `c${p.load.connections}`,
      'ok/s': p.load.okPerSecond,
      'shed 503': `${(p.load.shedShare * 100).toFixed(1)}%`,
      'ok p99 ms': p.load.okP99Ms,
      'ok max ms': p.load.okMaxMs,
      'shed p99 ms': p.load.shedP99Ms,
      'healthz p99 ms': p.healthz.p99Ms,
      'readyz p99 ms': p.readyz.p99Ms,
      'readyz not 200': p.readyz.failures,
      other: p.load.other + p.load.socketErrors,
    })),
  );
  console.table(rows);
}

async function main(): Promise<void> {
  const startedAt = performance.now();
  log(`POST /v1/transfers at c${CONCURRENCY} then c${BURST}, ${SECONDS} s each, ${USERS} users${COMPARE ? '; with shedding, then with every limit at its maximum' : ''}`);
  const scenarios = [await scenario('shedding', {})];
  if (COMPARE) scenarios.push(await scenario('unbounded', UNBOUNDED));
  printTable(scenarios);
  const [shedding] = scenarios as [Scenario];
  const [sustained, burst, noPause] = shedding.phases as [Phase, Phase, Phase];
  log(
    `burst at 10x (c${BURST}, clients waiting Retry-After): ${(burst.load.shedShare * 100).toFixed(1)}% shed with 503, accepted p99 ${burst.load.okP99Ms} ms ` +
      `(c${CONCURRENCY}: ${sustained.load.okP99Ms} ms), /healthz p99 ${burst.healthz.p99Ms} ms during the burst; ` +
      `clients sending again at once: ${(noPause.load.shedShare * 100).toFixed(1)}% shed, accepted p99 ${noPause.load.okP99Ms} ms, /healthz p99 ${noPause.healthz.p99Ms} ms`,
  );
  const failed = scenarios.filter((s) => s.money.shedKeysThatMovedMoney > 0 || s.money.invariantViolations.length > 0);
  await mkdir(RESULTS, { recursive: true });
  const file = path.join(RESULTS, 'overload.json');
  await writeFile(
    file,
    `${JSON.stringify(
      {
        measuredAt: new Date().toISOString(),
        machine: { cpus: os.cpus().length, node: process.version },
        request: 'POST /v1/transfers (1 cent, uniform over the accounts, a new idempotency key each)',
        seconds: SECONDS,
        users: USERS,
        sustainedConcurrency: CONCURRENCY,
        burstConcurrency: BURST,
        scenarios,
      },
      null,
      2,
    )}\n`,
  );
  log(`wrote ${path.relative(process.cwd(), file)} in ${Math.round((performance.now() - startedAt) / 1_000)} s`);
  if (failed.length > 0) {
    console.error(`bench:overload: money check failed in ${failed.map((s) => s.name).join(', ')}`);
    process.exitCode = 1;
  }
}

await main();
