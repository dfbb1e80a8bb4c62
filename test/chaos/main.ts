// `npm run chaos`: the project's fault-injection run (issue 12). It starts a private PostgreSQL and
// Redis, the stack as `npm start` does (through a TCP relay to PostgreSQL and one to a private SMTP
// receiver), makes users through the real flow, then runs a mixed storm over HTTP and gRPC with
// client retries on the same keys while it injects, one after another, every named fault (see
// faults.ts), each with its recovery time. After the storm it checks money, emails and errors by
// SQL and by the received emails, and that a login still goes through (see checks.ts), prints a
// table and writes bench/results/chaos.json (a full run) or reports/chaos-subset.json (CHAOS_FAULTS
// naming some of the faults); the exit code is non-zero when a check fails, a fault was not
// injected, had no effect or did not recover.
//
// `--short` is the run inside `npm test` (after the Jest tiers): a subset of the faults, asserting
// only money, emails and "no 5xx but 503" (and that each of its faults was injected); its times are
// printed, never asserted; it writes reports/chaos-short.json. Its storm and recovery have a budget
// of 120 s: the plan computed from its configuration must fit (or it refuses to start), and every
// wait with a ceiling is cut to what is left of it.
//
// Options (env): CHAOS_SECONDS (storm length: 120, short 30), CHAOS_FAULTS (comma list of fault
// names), CHAOS_CONCURRENCY, CHAOS_USERS, CHAOS_REFUSED_SHARE, CHAOS_BUDGET_SECONDS and the
// intervals in chaos-config.ts; stack settings (WORKER_LOCK_DURATION_MS, MAX_INFLIGHT_REQUESTS,
// OUTBOX_SWEEP_*...) pass through.
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { createBankClient } from './bank-client.ts';
import { DeadlockCounter, emailChecks, errorChecks, moneyChecks, readLog, type Check, type CheckGroup } from './checks.ts';
import { chaosConfig, describePlan, planRun, type ChaosConfig } from './chaos-config.ts';
import { startChaosEnvironment, type ChaosEnvironment } from './chaos-environment.ts';
import { runFault, type FaultKit, type FaultReport } from './faults.ts';
import { Journal } from './journal.ts';
import { logIn, retryPolicy, setUpUser, type ChaosUser, type OpsContext } from './operations.ts';
import { machine, printReport, writeReport, type ChaosReport } from './report.ts';
import { startStorm } from './storm.ts';

const FUNDS = 100_000_000n;
/** Kept back from the budget for the checks after the last capped wait. */
const CHECKS_RESERVE_MS = 8_000;
const started = performance.now();
const log = (line: string) => console.log(`[chaos ${((performance.now() - started) / 1_000).toFixed(1).padStart(5)} s] ${line}`);
const sleepUntil = (at: number) => new Promise((resolve) => setTimeout(resolve, Math.max(0, at - Date.now())));

/**
 * The budget of storm and recovery from the storm's start: `cap(ms)` is a wait's ceiling cut to
 * what is left of it, less the checks' reserve (at least 1 s, so a wait still looks once).
 */
function budgetClock(config: ChaosConfig, stormStartedAt: number): (ms: number) => number {
  if (config.budgetSeconds === null) return (ms) => ms;
  const deadline = stormStartedAt + config.budgetSeconds * 1_000 - CHECKS_RESERVE_MS;
  return (ms) => Math.min(ms, Math.max(1_000, deadline - Date.now()));
}

async function setUpUsers(ops: OpsContext, env: ChaosEnvironment, count: number): Promise<ChaosUser[]> {
  const users: ChaosUser[] = [];
  // Four at a time: the set-up is not what is measured.
  for (let i = 0; i < count; i += 4) {
    users.push(...(await Promise.all(Array.from({ length: Math.min(4, count - i) }, () => setUpUser(ops, env.smtp, FUNDS)))));
  }
  return users;
}

async function run(config: ChaosConfig, env: ChaosEnvironment): Promise<ChaosReport> {
  const journal = new Journal();
  const client = createBankClient({ httpUrl: env.httpUrl, grpcAddress: env.grpcAddress });
  const ops: OpsContext = { client, journal, config };
  try {
    log(`making ${config.users} users, a canary and a poor user (no money, every request of its refused) through sign-up, the emailed link and login`);
    const [canaryUser, ...users] = await setUpUsers(ops, env, config.users + 1);
    if (!canaryUser) throw new Error('no users');
    const poor = await setUpUser(ops, env.smtp, 0n);
    journal.untouchableAccounts.push(poor.accountId);
    const deadlocks = new DeadlockCounter();
    await deadlocks.baseline(env.db);

    const plan = planRun(config);
    log(`storm: ${config.concurrency} clients over HTTP and gRPC for at least ${config.stormSeconds} s; faults: ${config.faults.join(', ')}`);
    log(`plan: ${(plan.totalMs / 1_000).toFixed(1)} s of storm and recovery${config.budgetSeconds === null ? '' : ` (budget ${config.budgetSeconds} s)`}: ${describePlan(plan)}`);
    const stormStartedAt = Date.now();
    const cap = budgetClock(config, stormStartedAt);
    const kit: FaultKit = { env, ops, users, canaryUser, config, log, cap };
    const storm = startStorm(ops, { users, poor });
    const slotMs = Math.max(0, (config.stormSeconds * 1_000 - config.warmUpMs) / config.faults.length);
    const faults: FaultReport[] = [];
    const settling: Promise<void>[] = [];
    let readyAt = stormStartedAt + config.warmUpMs;
    for (const [i, name] of config.faults.entries()) {
      await sleepUntil(Math.max(readyAt, stormStartedAt + config.warmUpMs + i * slotMs));
      await deadlocks.sample(env.db).catch(() => undefined);
      const { report, settled } = await runFault(kit, name, stormStartedAt);
      faults.push(report);
      settling.push(settled);
      readyAt = Date.now() + config.gapMs;
    }
    await sleepUntil(Math.max(readyAt, stormStartedAt + config.stormSeconds * 1_000));
    log('storm: stopping (requests in hand finish their retries)');
    await storm.stop();
    const stormSecondsActual = (Date.now() - stormStartedAt) / 1_000;

    // Every login the faults broke must have been given back to the limits (per user, and per
    // address: all of the storm comes from 127.0.0.1).
    const lastLogin = await logIn(ops, 'http', canaryUser, retryPolicy(config, { retryRateLimited: false, giveUpAfterMs: cap(config.giveUpMs) }));

    log('checking money by SQL, emails by what arrived');
    const money = await moneyChecks(env.db, journal, deadlocks, readLog(env.postgres.logFile));
    const [emails] = await Promise.all([emailChecks(env.db, env.smtp, journal, cap(config.emailWaitMs)), ...settling]);
    for (const [i, fault] of faults.entries()) {
      const until = faults[i + 1]?.injectedAt ?? Infinity;
      fault.duplicateEmails = emails.duplicatesFirstArrivedAt.filter((at) => at >= fault.injectedAt && at < until).length;
    }
    const missing = config.faults.filter((name) => !faults.some((f) => f.name === name && f.injected));
    const ineffective = faults.filter((f) => f.failure !== undefined);
    const unrecovered = faults.filter((f) => f.injected && f.recoveryMs === null).map((f) => f.name);
    const stormAndRecoveryMs = Date.now() - stormStartedAt;
    const checks: Check[] = [
      ...money.checks,
      ...emails.checks,
      ...errorChecks(journal),
      {
        group: 'logins',
        name: 'a login after the faults is not refused by the login limits',
        ok: lastLogin.outcome === 'acknowledged',
        detail: lastLogin.outcome === 'acknowledged' ? 'it went through' : `${lastLogin.outcome}${lastLogin.refusal ? ` ${lastLogin.refusal}` : ''}`,
      },
      { group: 'faults', name: 'every named fault injected', ok: missing.length === 0, detail: missing.length === 0 ? config.faults.join(', ') : `not injected: ${missing.join(', ')}` },
      {
        group: 'faults',
        name: 'every fault had its effect (the overload burst was shed with 503 and Retry-After)',
        ok: ineffective.length === 0,
        detail: ineffective.length === 0 ? 'all' : ineffective.map((f) => `${f.name}: ${f.failure}`).join('; '),
      },
      { group: 'recovery', name: 'every fault recovered', ok: unrecovered.length === 0, detail: unrecovered.length === 0 ? 'all' : `not within ${config.recoveryTimeoutMs / 1_000} s: ${unrecovered.join(', ')}` },
      {
        group: 'suite',
        name: 'the suite ran without errors of its own',
        ok: journal.errors.length === 0,
        detail: journal.errors.length === 0 ? 'none' : journal.errors.slice(0, 5).join('; '),
      },
    ];
    const asserted: CheckGroup[] = config.profile === 'short' ? ['money', 'emails', 'errors', 'faults', 'suite'] : ['money', 'emails', 'errors', 'logins', 'faults', 'recovery', 'suite'];
    const requests: Record<string, number> = {};
    for (const a of journal.attempts) requests[a.kind] = (requests[a.kind] ?? 0) + 1;
    const loginsRateLimited = journal.identity.filter((o) => o.kind === 'login' && o.refusal === 'RATE_LIMITED').length;
    return {
      at: new Date().toISOString(),
      profile: config.profile,
      ...machine(),
      faultsRun: config.subset ? 'subset' : 'all',
      stormSeconds: config.stormSeconds,
      stormSecondsActual,
      stormAndRecoverySeconds: stormAndRecoveryMs / 1_000,
      plannedSeconds: plan.totalMs / 1_000,
      budgetSeconds: config.budgetSeconds,
      totalSeconds: (performance.now() - started) / 1_000,
      settings: {
        concurrency: config.concurrency,
        users: config.users,
        requestTimeoutMs: config.requestTimeoutMs,
        impatientShare: config.impatientShare,
        refusedShare: config.refusedShare,
        impatientTimeoutMs: config.impatientTimeoutMs,
        recoveryTimeoutMs: config.recoveryTimeoutMs,
        emailWaitMs: config.emailWaitMs,
        ...config.stackEnv,
      },
      requests,
      facts: { ...money.facts, ...emails.facts, loginsRateLimited },
      faults: faults.map((f) => ({ ...f, recoverySeconds: f.recoveryMs === null ? null : f.recoveryMs / 1_000 })),
      checks,
      asserted,
      passed: checks.every((c) => c.ok || !asserted.includes(c.group)),
    };
  } finally {
    client.close();
  }
}

async function main(): Promise<number> {
  const config = chaosConfig(process.argv.slice(2));
  const env = await startChaosEnvironment(config, log);
  let closing: Promise<void> | null = null;
  const close = () => (closing ??= env.close());
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      log(`${signal}: stopping everything the run started`);
      void close().then(() => process.exit(130));
    });
  }
  try {
    const report = await run(config, env);
    printReport(report);
    writeReport(config.resultsFile, report);
    log(
      `wrote ${path.relative(process.cwd(), config.resultsFile) || config.resultsFile}` +
        (config.subset ? ' (a subset of the faults: bench/results/chaos.json keeps the last full run)' : '') +
        `; logs in ${config.logDir}`,
    );
    log(
      `chaos: done in ${((performance.now() - started) / 1_000).toFixed(1)} s in all; storm and recovery ${report.stormAndRecoverySeconds.toFixed(1)} s` +
        (report.budgetSeconds === null ? '' : ` of the ${report.budgetSeconds} s budget`) +
        ` (planned ${report.plannedSeconds.toFixed(1)} s)`,
    );
    return report.passed ? 0 : 1;
  } finally {
    await close();
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(`[chaos] ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    process.exit(1);
  },
);
