// npm run bench:edge — the HTTP and gRPC edges against the database's own ceiling, side by side
// in one run (issue 10, item 6). Starts the stack as `npm start` does on a fresh database,
// makes users through the real flow (sign-up, emailed link, login with the emailed code, account,
// deposit), then, one after the other, never overlapping:
//   - pgbench on the same database: a minimal one-call plpgsql transfer and ledger_move() itself;
//   - POST /v1/transfers with wrk and CreateTransfer with a grpc-js client, at c1 and c32,
//     uniform over the accounts and on one hot pair (both directions);
//   - the newest history page with wrk and the same SELECT with pgbench, at c32;
//   - hold then capture (issue 11): a hold and its capture per unit, pairs/s at c32 from a Node
//     client (the capture needs the hold's answer), beside pgbench doing the pair itself;
//   - the login burst probe: p99 of GET /v1/accounts before and during 64 logins at bcrypt cost 12;
//   - GetBalance (issue 11) at an instant in the middle of an account's history, on an account of
//     10k entries and one of 5M (built by bulk SQL first), with wrk and the same SELECT with pgbench.
// Prints a table and the goals' ratios; writes bench/results/edge.json and edge.svg.
// Needs wrk (apt-get install wrk) and pgbench (apt-get install postgresql-client), PostgreSQL
// (DATABASE_URL names the server; a database bank_bench_<random> is made and dropped) and Redis.
// Options (env): BENCH_SECONDS (per run, default 10), BENCH_USERS (default 64),
// BENCH_BALANCE_LARGE_ENTRIES (the long history, default 5000000, about 2 minutes to build on two
// cores; 0 skips it and measures GetBalance on the 10k account only).
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { ANALYZE_NOTE, analyzeDatabase, autovacuumOn } from './edge/autovacuum.ts';
import { buildBalanceAccounts, type BalanceAccount } from './edge/balance.ts';
import { runGrpcTransfers } from './edge/grpc-load.ts';
import { runHoldCapture } from './edge/hold-capture.ts';
import { describeIntegrations, integrationCounts, startWebhookReceiver, subscribe } from './edge/integrations.ts';
import { runLoginProbe } from './edge/login-probe.ts';
import { createMinimalLedger, runPgbench, type PgbenchResult } from './edge/pgbench.ts';
import { waitForIdleWorker } from './edge/idle.ts';
import { backendNames, cpuBudget, cpuDelta, cpuSnapshot, postgresDelta } from './edge/process-cpu.ts';
import { metricsDelta, scrape } from './edge/prometheus.ts';
import { pgScenario, printReport, reportChart, reportJson, type BenchReport, type EdgeRun } from './edge/report.ts';
import { BENCH_MONEY_LIMIT, missingTool, startBenchStack, type BenchStack } from './edge/stack.ts';
import { createUsers, type BenchUsers } from './edge/users.ts';
import { runWrk, type LoadResult } from './edge/wrk.ts';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const USERS = Number(process.env.BENCH_USERS ?? 64);
/** Users (the last ones, never the hot pair) with a webhook for every event of their accounts. */
const WEBHOOK_USERS = Number(process.env.BENCH_WEBHOOK_USERS ?? 4);
const BALANCE_SMALL_ENTRIES = 10_000;
const BALANCE_LARGE_ENTRIES = Number(process.env.BENCH_BALANCE_LARGE_ENTRIES ?? 5_000_000);
/** Bulk-built entries per second into the indexed tables on two cores (5M took 125 s), for the estimate. */
const BUILD_ENTRIES_PER_SECOND = 40_000;
const WARM_UP_SECONDS = Math.min(3, SECONDS);
const PROBE_CONCURRENCY = 4;
const RESULTS = path.resolve(import.meta.dirname, 'results');

const log = (line: string) => console.log(`[bench:edge] ${line}`);

const missing = missingTool();
if (missing) {
  console.error(missing);
  process.exit(2);
}
if (!(Number.isFinite(SECONDS) && SECONDS >= 1 && Number.isInteger(USERS) && USERS >= 2)) {
  console.error('bench:edge: BENCH_SECONDS must be >= 1 and BENCH_USERS an integer >= 2');
  process.exit(2);
}
if (!(Number.isInteger(WEBHOOK_USERS) && WEBHOOK_USERS >= 0 && WEBHOOK_USERS <= USERS - 2)) {
  console.error('bench:edge: BENCH_WEBHOOK_USERS must be an integer from 0 to BENCH_USERS - 2 (the hot pair never subscribes)');
  process.exit(2);
}
if (!(Number.isInteger(BALANCE_LARGE_ENTRIES) && (BALANCE_LARGE_ENTRIES === 0 || BALANCE_LARGE_ENTRIES > BALANCE_SMALL_ENTRIES))) {
  console.error(`bench:edge: BENCH_BALANCE_LARGE_ENTRIES must be 0 (skip) or an integer above ${BALANCE_SMALL_ENTRIES}`);
  process.exit(2);
}
const BALANCE_SIZES = BALANCE_LARGE_ENTRIES > 0 ? [BALANCE_SMALL_ENTRIES, BALANCE_LARGE_ENTRIES] : [BALANCE_SMALL_ENTRIES];

/** Set once the stack runs: the server has autovacuum off, so the bench runs ANALYZE itself (bench/edge/autovacuum.ts). */
let analyzeBeforeRuns = false;

/**
 * Waits until the worker has caught up (bench/edge/idle.ts); says so when that took a while or
 * did not happen within its bound. On a server with autovacuum off, then runs ANALYZE as
 * autovacuum would have. Returns the seconds it waited.
 */
async function settle(stack: BenchStack, before: string): Promise<number> {
  const { seconds, leftOver } = await waitForIdleWorker(stack.databaseUrl);
  if (leftOver) log(`worker still busy after ${seconds.toFixed(1)} s before ${before} (${JSON.stringify(leftOver)}); going on`);
  else if (seconds >= 1) log(`worker caught up in ${seconds.toFixed(1)} s before ${before}`);
  if (analyzeBeforeRuns) await analyzeDatabase(stack.databaseUrl);
  return seconds;
}

/**
 * Measures one edge run with both servers' /metrics and every process's CPU (/proc) read before
 * and after. The run starts with the worker caught up, and its CPU is read once the worker has
 * done what the run gave it (emails, webhooks), so each run is charged its own work and nothing
 * of the run before; the cores busy are over the run and that drain. `loadInBench`: the load
 * generator is this process (gRPC, hold+capture), not wrk.
 */
async function measured(stack: BenchStack, protocol: 'http' | 'grpc', run: () => Promise<LoadResult>, loadInBench = protocol === 'grpc') {
  await settle(stack, 'a run');
  const snapshot = async () => cpuSnapshot(stack.databaseName, await backendNames(stack.databaseUrl), { rootPid: stack.rootPid });
  const [apiBefore, grpcBefore, cpuBefore] = await Promise.all([scrape(stack.apiMetricsUrl), scrape(stack.grpcMetricsUrl), snapshot()]);
  const result = await run();
  const drain = await waitForIdleWorker(stack.databaseUrl);
  if (drain.leftOver) log(`the worker had not caught up ${drain.seconds.toFixed(1)} s after the run (${JSON.stringify(drain.leftOver)}); its CPU so far is counted`);
  const [apiAfter, grpcAfter, cpuAfter] = await Promise.all([scrape(stack.apiMetricsUrl), scrape(stack.grpcMetricsUrl), snapshot()]);
  const api = metricsDelta(apiBefore, apiAfter);
  const grpc = metricsDelta(grpcBefore, grpcAfter);
  const server = protocol === 'http' ? api : grpc;
  const ok = result.requests - result.errors;
  return {
    result,
    apiCpuSeconds: Number(api.cpuSeconds.toFixed(3)),
    grpcCpuSeconds: Number(grpc.cpuSeconds.toFixed(3)),
    serverCpuMsPerRequest: ok > 0 ? (server.cpuSeconds * 1_000) / ok : NaN,
    meanBatchSize: server.meanBatchSize,
    drainSeconds: Number(drain.seconds.toFixed(2)),
    cpu: cpuBudget(cpuDelta(cpuBefore, cpuAfter), result.clientCpuSeconds, ok, result.seconds + drain.seconds, loadInBench, postgresDelta(cpuBefore, cpuAfter)),
  };
}

function describe(run: LoadResult): string {
  const errors = run.errors > 0 ? `, ${run.errors} errors (first: ${run.firstError.slice(0, 160)})` : '';
  return `${Math.round(run.okPerSecond)} req/s, p50 ${run.p50Ms.toFixed(1)} ms, p99 ${run.p99Ms.toFixed(1)} ms${errors}`;
}

async function main(): Promise<void> {
  const startedAt = performance.now();
  const runTag = randomBytes(3).toString('hex');
  // Long runs outlive the default 15-minute access token; the bench's tokens must not expire mid-run.
  const estimatedSeconds = Math.ceil(70 + SECONDS * (22 + 2 * BALANCE_SIZES.length) + BALANCE_SIZES.reduce((sum, n) => sum + n, 0) / BUILD_ENTRIES_PER_SECOND);
  log(`starting the stack on a fresh database (each run ${SECONDS} s, ${USERS} users; a full run takes about ${Math.max(1, Math.round(estimatedSeconds / 60))} min)`);
  const stack = await startBenchStack({
    NODE_ENV: 'development',
    LOG_LEVEL: 'warn',
    BCRYPT_COST: '12',
    LOGIN_RATE_LIMIT_MAX: '100000',
    LOGIN_EMAIL_RATE_LIMIT_MAX: '100000',
    SIGNUP_RATE_LIMIT_PER_ADDRESS: '100000',
    SIGNUP_RATE_LIMIT_GLOBAL: '100000',
    OUTBOX_SWEEP_INTERVAL_MS: undefined,
    // The webhook receiver listens on 127.0.0.1, in this process.
    WEBHOOK_ALLOW_PRIVATE_TARGETS: 'true',
    // The bench funds each user with 10^11 and moves money all run long: limits at their maximum,
    // so every run measures speed, not LIMIT_EXCEEDED refusals (which would count as errors).
    DEPOSIT_MAX_AMOUNT: String(BENCH_MONEY_LIMIT),
    DEPOSIT_DAILY_LIMIT: String(BENCH_MONEY_LIMIT),
    OUTGOING_DAILY_LIMIT: String(BENCH_MONEY_LIMIT),
    ...(estimatedSeconds * 2 > 900 ? { ACCESS_TOKEN_TTL_SECONDS: String(estimatedSeconds * 2) } : {}),
  });
  let interrupted = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (interrupted) return;
    interrupted = true;
    log(`${signal}: stopping the stack and dropping ${stack.databaseName}`);
    void stack.stop().finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const scriptDir = await mkdtemp(path.join(os.tmpdir(), 'bank-bench-edge-'));
  const receiver = await startWebhookReceiver();
  try {
    log(`stack ready (${stack.httpUrl}, gRPC ${stack.grpcAddress}, database ${stack.databaseName}); creating ${USERS} users through the real flow at bcrypt cost 12`);
    analyzeBeforeRuns = !(await autovacuumOn(stack.databaseUrl));
    if (analyzeBeforeRuns) log(ANALYZE_NOTE);
    const setupStarted = performance.now();
    const accounts: BenchUsers = await createUsers({ httpUrl: stack.httpUrl, inboxUrl: stack.inboxUrl, count: USERS, concurrency: 8 });
    await createMinimalLedger(stack.databaseUrl, accounts.firstAccountId, USERS);
    const setupSeconds = (performance.now() - setupStarted) / 1_000;
    const { users } = accounts;
    log(`${USERS} users signed up, verified, logged in and funded in ${setupSeconds.toFixed(1)} s (accounts ${accounts.firstAccountId}..${accounts.firstAccountId + BigInt(USERS - 1)})`);
    const subscribers = await subscribe(stack.httpUrl, users, WEBHOOK_USERS, receiver);
    log(`notifications on for every user; ${subscribers.length} users (${subscribers.map((u) => u.username).join(', ') || 'none'}) have a webhook for every event of their accounts (${receiver.url})`);

    log(`warming up both servers (${WARM_UP_SECONDS} s each, not reported)`);
    await runWrk({ baseUrl: stack.httpUrl, mode: 'uniform', users, tag: `warm-${runTag}`, connections: 8, seconds: WARM_UP_SECONDS, scriptDir });
    await runGrpcTransfers({ address: stack.grpcAddress, mode: 'uniform', users, tag: `gwarm-${runTag}`, concurrency: 8, seconds: WARM_UP_SECONDS });

    const pgbench: PgbenchResult[] = [];
    const ceiling = async (script: PgbenchResult['script'], mode: 'uniform' | 'hot', clients: number) => {
      await settle(stack, `pgbench ${script}`);
      const result = await runPgbench({
        databaseUrl: stack.databaseUrl,
        script,
        mode,
        clients,
        seconds: SECONDS,
        firstAccountId: accounts.firstAccountId,
        count: USERS,
        prefix: accounts.prefix,
      });
      pgbench.push(result);
      log(`${pgScenario(result).padEnd(36)} ${Math.round(result.tps)} tps, p50 ${result.p50Ms.toFixed(2)} ms, p99 ${result.p99Ms.toFixed(2)} ms${result.failed > 0 ? `, ${result.failed} failed` : ''}`);
      return result;
    };
    const edge: EdgeRun[] = [];
    for (const concurrency of [32, 1]) {
      for (const mode of ['uniform', 'hot'] as const) {
        const minimal = await ceiling('minimal', mode, concurrency);
        const ledgerMove = await ceiling('ledger_move', mode, concurrency);
        for (const protocol of ['http', 'grpc'] as const) {
          const scenario = `${protocol === 'http' ? 'HTTP' : 'gRPC'} c${concurrency} ${mode === 'hot' ? 'hot pair' : 'uniform'}`;
          const tag = `${protocol[0]}${concurrency}${mode[0]}-${runTag}`;
          const m = await measured(stack, protocol, () =>
            protocol === 'http'
              ? runWrk({ baseUrl: stack.httpUrl, mode, users, tag, connections: concurrency, seconds: SECONDS, scriptDir })
              : runGrpcTransfers({ address: stack.grpcAddress, mode, users, tag, concurrency, seconds: SECONDS }),
          );
          edge.push({
            scenario,
            protocol,
            what: 'transfer',
            mode,
            concurrency,
            ...m,
            ceiling: { scenario: pgScenario(minimal), tps: minimal.tps, p99Ms: minimal.p99Ms },
            ledgerMove: { scenario: pgScenario(ledgerMove), tps: ledgerMove.tps },
          });
          log(`${scenario.padEnd(36)} ${describe(m.result)}`);
        }
      }
    }
    const history = await measured(stack, 'http', () =>
      runWrk({ baseUrl: stack.httpUrl, mode: 'history', users, tag: `hist-${runTag}`, connections: 32, seconds: SECONDS, scriptDir }),
    );
    log(`${'HTTP c32 history page'.padEnd(36)} ${describe(history.result)}`);
    const select = await ceiling('history_select', 'uniform', 32);
    edge.push({
      scenario: 'HTTP c32 history page',
      protocol: 'http',
      what: 'history',
      mode: 'uniform',
      concurrency: 32,
      ...history,
      ceiling: { scenario: pgScenario(select), tps: select.tps, p99Ms: select.p99Ms },
      ledgerMove: null,
    });

    log(`hold then capture: warming up (${WARM_UP_SECONDS} s, not reported), then pgbench and HTTP at c32`);
    await runHoldCapture({ baseUrl: stack.httpUrl, users, tag: `hcwarm-${runTag}`, concurrency: 8, seconds: WARM_UP_SECONDS });
    const minimalPair = await ceiling('minimal_pair', 'uniform', 32);
    const holdCapture = await ceiling('hold_capture', 'uniform', 32);
    const pairs = await measured(stack, 'http', () => runHoldCapture({ baseUrl: stack.httpUrl, users, tag: `hc-${runTag}`, concurrency: 32, seconds: SECONDS }), true);
    edge.push({
      scenario: 'HTTP c32 hold+capture pair',
      protocol: 'http',
      what: 'hold_capture',
      mode: 'uniform',
      concurrency: 32,
      ...pairs,
      ceiling: { scenario: pgScenario(minimalPair), tps: minimalPair.tps, p99Ms: minimalPair.p99Ms },
      ledgerMove: { scenario: pgScenario(holdCapture), tps: holdCapture.tps },
    });
    log(`${'HTTP c32 hold+capture pair'.padEnd(36)} ${describe(pairs.result).replace('req/s', 'pairs/s')}`);

    log(`login burst probe: GET /v1/accounts at c${PROBE_CONCURRENCY} for ${SECONDS} s, then during ${USERS} concurrent logins`);
    await settle(stack, 'the login probe');
    const loginProbe = await runLoginProbe({ baseUrl: stack.httpUrl, users, concurrency: PROBE_CONCURRENCY, seconds: SECONDS });

    // Last, so that no run before it sees the bulk-built rows in the ledger's tables.
    log(`GetBalance: building accounts of ${BALANCE_SIZES.map((n) => n.toLocaleString('en')).join(' and ')} entries by bulk SQL${BALANCE_LARGE_ENTRIES > 0 ? ' (BENCH_BALANCE_LARGE_ENTRIES=0 skips the long one)' : ''}`);
    const built = await buildBalanceAccounts({
      databaseUrl: stack.databaseUrl,
      httpUrl: stack.httpUrl,
      inboxUrl: stack.inboxUrl,
      prefix: accounts.prefix,
      passwordOf: users[0]!.username,
      sizes: BALANCE_SIZES,
      log,
    });
    const balanceRun = async (account: BalanceAccount) => {
      const reader = [{ accountId: account.accountId, accessToken: account.accessToken }];
      await runWrk({ baseUrl: stack.httpUrl, mode: 'balance', users: reader, tag: `bwarm-${account.entries}-${runTag}`, connections: 8, seconds: 1, scriptDir, balanceAt: account.at });
      const select = await runPgbench({
        databaseUrl: stack.databaseUrl,
        script: 'balance_select',
        mode: 'uniform',
        clients: 32,
        seconds: SECONDS,
        firstAccountId: accounts.firstAccountId,
        count: USERS,
        prefix: accounts.prefix,
        balance: { accountId: account.accountId, owner: account.owner, at: account.at, label: `${account.label} entries` },
      });
      pgbench.push(select);
      log(`${pgScenario(select).padEnd(36)} ${Math.round(select.tps)} tps, p50 ${select.p50Ms.toFixed(2)} ms, p99 ${select.p99Ms.toFixed(2)} ms`);
      const scenario = `HTTP c32 GetBalance ${account.label}`;
      const m = await measured(stack, 'http', () =>
        runWrk({ baseUrl: stack.httpUrl, mode: 'balance', users: reader, tag: `bal-${account.entries}-${runTag}`, connections: 32, seconds: SECONDS, scriptDir, balanceAt: account.at }),
      );
      edge.push({
        scenario,
        protocol: 'http',
        what: 'balance',
        mode: 'uniform',
        concurrency: 32,
        ...m,
        ceiling: { scenario: pgScenario(select), tps: select.tps, p99Ms: select.p99Ms },
        ledgerMove: null,
        entries: account.entries,
      });
      log(`${scenario.padEnd(36)} ${describe(m.result)}`);
    };
    for (const account of built.accounts) await balanceRun(account);

    const integrations = await integrationCounts(stack.databaseUrl, subscribers.length, receiver);
    log(describeIntegrations(integrations));
    const report: BenchReport = {
      at: new Date().toISOString(),
      node: process.version,
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model.trim() ?? 'unknown',
      secondsPerRun: SECONDS,
      users: USERS,
      setupSeconds: Number(setupSeconds.toFixed(1)),
      totalSeconds: 0,
      notes: [
        `wrk and the gRPC client (grpc-js, one channel, in this bench's own Node process) share the ${os.cpus().length} cores with the API, the gRPC server, the worker and PostgreSQL; so does pgbench.`,
        'req/s counts 2xx answers only; errors are non-2xx answers, socket errors and timeouts.',
        'ceiling: pgbench -n -M prepared on the same database, one run after the other (never at the same time as the edge load); minimal = one plpgsql call (2 ordered UPDATEs, 1 transfer row, 2 entries) on copies of the same accounts in schema bench.',
        'server CPU ms/req: process_cpu_seconds_total of the process that served the run (api for HTTP, grpc for gRPC) over its 2xx answers; client CPU ms/req: what the load generator itself used (wrk, or this process for gRPC).',
        'CPU by process: utime + stime from /proc of every process before the run and after it once the worker has finished what the run gave it (drain s: how long that took), per 2xx answer: the API, gRPC and worker processes, PostgreSQL (this database\'s backends and the server\'s own processes; split by whose backends: the API\'s, the gRPC server\'s and the worker\'s pools by their application_name, the rest), Redis, the load generator (wrk, or this process when it is the client), the bench\'s webhook receiver (this process, during wrk runs), other (npm start\'s supervisor and the development inbox); cores busy = their sum over the run\'s and the drain\'s seconds, out of the machine\'s cores.',
        'worker caught up: every run, every pgbench ceiling and the login probe start once the worker has no events, emails or webhook deliveries left to do (money-received digests, due a minute later by design, are not waited for), so none shares the cores with the worker catching up on the run before.',
        'mean batch: bank_ledger_batch_size (histogram sum/count) of the serving process during the run; n/a when the process has no such metric.',
        ...(analyzeBeforeRuns ? [ANALYZE_NOTE] : []),
        `limits: the stack runs with DEPOSIT_MAX_AMOUNT, DEPOSIT_DAILY_LIMIT and OUTGOING_DAILY_LIMIT at ${BENCH_MONEY_LIMIT} (their maximum), so no run is refused by a limit; pgbench's ledger_apply() pair passes the same limits, ledger_move() none (its wrapper never did).`,
        'hold+capture pair: POST /v1/transfers with hold {ttlSeconds: 300}, then POST /v1/transfers/{id}/capture (full) of the id it answered, by one of 32 loops in this bench\'s own Node process (node:http, keep-alive; wrk times single requests and cannot carry one answer into the next request of the same connection); per s counts pairs whose hold answered 201 and capture 200, p50/p99 is the pair from the hold sent to the capture answered. Ceilings: pgbench minimal pair = two minimal one-call transfers, one round trip each; ledger_apply() pair = the hold and its capture through the real function (\\gset carries the id), two round trips.',
        `notifications and webhooks: on, as a deployment runs them (every user's money-received emails, coalesced per minute; ${WEBHOOK_USERS} users, the last ones, never the hot pair, with a webhook for every event of their accounts to a receiver in this bench's own process that answers 204 and checks each Bank-Signature); integrations: what the worker had done by the end of the last run.`,
        `GetBalance: GET /v1/accounts/{id}/balance?at=<the middle of the account's history> by the account's owner, with wrk at c32 on one account at a time; the accounts (${BALANCE_SIZES.map((n) => n.toLocaleString('en')).join(' and ')} entries over two years, each entry a transfer in or out) are built by bulk SQL (test/history-builder.ts) after every other run, then VACUUM (ANALYZE); pgbench runs the repository's own SELECT on the same account and instant.`,
      ],
      edge,
      pgbench,
      loginProbe,
      integrations,
      balance: {
        accounts: built.accounts.map((a) => ({ label: a.label, entries: a.entries, accountId: String(a.accountId), at: a.at.toISOString(), buildSeconds: a.buildSeconds })),
        vacuumSeconds: built.vacuumSeconds,
        note: BALANCE_LARGE_ENTRIES > 0 ? '' : 'BENCH_BALANCE_LARGE_ENTRIES=0: the long history was skipped',
      },
    };
    report.totalSeconds = Number(((performance.now() - startedAt) / 1_000).toFixed(0));
    console.log('');
    console.log(printReport(report));
    await mkdir(RESULTS, { recursive: true });
    await writeFile(path.join(RESULTS, 'edge.json'), reportJson(report));
    await writeFile(path.join(RESULTS, 'edge.svg'), reportChart(report));
    log(`wrote bench/results/edge.json and bench/results/edge.svg (${report.totalSeconds} s so far; stopping the stack)`);
  } finally {
    await rm(scriptDir, { recursive: true, force: true });
    await receiver.close();
    if (!interrupted) await stack.stop();
  }
  log(`done in ${((performance.now() - startedAt) / 1_000).toFixed(0)} s`);
}

try {
  await main();
} catch (error) {
  console.error(`bench:edge failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  process.exitCode = 1;
}
