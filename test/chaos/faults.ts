// The named faults, injected one after another while the storm runs, and how each one's recovery
// is measured: from the fault's end (the server back, the network healed, the process killed and
// left to its supervisor) until every canary request of the fault succeeds again, retried every
// 100-250 ms. Faults that strand emails (SMTP held while the queue or the worker is hit) also say
// when the last stranded email arrived. A fault that cannot show its effect (a burst that nothing
// shed) fails. With a budget (the short run), every wait is cut to what is left of it.
import { performance } from 'node:perf_hooks';
import { sql } from 'slonik';
import { z } from 'zod';
import { waitFor } from '@bank/dev-tools/start/ports';
import { OVERLOADED, type Protocol, type RetryPolicy } from './bank-client.ts';
import type { ChaosConfig, FaultName } from './chaos-config.ts';
import type { ChaosEnvironment, StackProcess } from './chaos-environment.ts';
import { deliveredOutboxIds } from './emails.ts';
import { deposit, logIn, retryPolicy, signUp, type ChaosUser, type OpsContext } from './operations.ts';

export type FaultKit = {
  env: ChaosEnvironment;
  ops: OpsContext;
  users: readonly ChaosUser[];
  /** A user of its own for the canaries (its deposits are checked like every other). */
  canaryUser: ChaosUser;
  config: ChaosConfig;
  log: (line: string) => void;
  /** A wait's ceiling cut to what is left of the run's budget (unchanged without one). */
  cap: (ms: number) => number;
};

/**
 * `http`/`grpc`: a deposit over that edge; `login`: step 1 of a login (the rate limiter lives in
 * Redis); `email`: a login whose email arrives (the worker is back).
 */
type Canary = 'http' | 'grpc' | 'login' | 'email';

type Injection = {
  /** When the fault ended: recovery is measured from here. */
  endedAt: number;
  notes: string[];
  canaries: readonly Canary[];
  /** Outbox ids of emails requested while SMTP was held, unsent when the fault hit. */
  stranded?: readonly string[];
  /** Notes known only later (a restarted pid). */
  later?: Promise<string[]>;
  /** Why the fault proved nothing although it was injected (a burst nothing shed). */
  failure?: string;
  shed?: ShedCounts;
};

/**
 * The overload burst's requests (`sent`) and those shed by load shedding (503 OVERLOADED /
 * UNAVAILABLE OVERLOADED), by edge; every shed answer while it lasted (`answers`, the storm's
 * too) and how many carried Retry-After / RetryInfo.
 */
export type ShedCounts = { sent: number; shed: number; http: number; grpc: number; answers: number; withRetryAfter: number };

export type FaultReport = {
  name: FaultName;
  injected: boolean;
  injectedAt: number;
  /** Seconds since the storm began. */
  at: number;
  /** From injection to the fault's end. */
  durationMs: number;
  /** From the fault's end until every canary succeeded; null when one did not within the timeout. */
  recoveryMs: number | null;
  canaryMs: Partial<Record<Canary, number | null>>;
  /** Emails requested while SMTP was held before the fault, and when the last of them arrived after its end. */
  strandedEmails?: number;
  emailRecoveryMs?: number | null;
  /** Emails that arrived twice or more whose first copy came after this fault's injection and before the next one's. */
  duplicateEmails?: number;
  /** The bank's answers from injection until recovery, by kind (ok, unavailable, timeout...). */
  during: Record<string, number>;
  /** Of the overload burst: its requests and how many were shed. */
  shed?: ShedCounts;
  /** Injected, but it did not have the effect it is there for (the run fails). */
  failure?: string;
  notes: string[];
  error?: string;
};

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const pick = <T>(list: readonly T[]): T => list[Math.floor(Math.random() * list.length)] as T;
const seconds = (ms: number) => `${(ms / 1_000).toFixed(1)} s`;

/** Emails requested from now on stay with the worker: SMTP is held until the returned heal(). */
async function strandEmails(kit: FaultKit): Promise<{ ids: string[]; heal: () => void }> {
  const { env, ops, users, config } = kit;
  const since = new Date();
  env.smtpRelay.stall();
  try {
    // Half sign-ups, all at once; half logins, two at a time: the login limit counts attempts in
    // flight per client address (all of ours are 127.0.0.1), and five at once would trip it.
    const logins = Math.floor(config.emailBurst / 2);
    const loginPairs = async () => {
      for (let i = 0; i < logins; i += 2) await Promise.all([logIn(ops, 'http', pick(users)), ...(i + 1 < logins ? [logIn(ops, 'grpc', pick(users))] : [])]);
    };
    await Promise.all([loginPairs(), ...Array.from({ length: config.emailBurst - logins }, (_, i) => signUp(ops, i % 2 === 0 ? 'http' : 'grpc'))]);
    // Every email requested since is in the queue (or in the worker's hands) before the fault.
    await waitFor(async () => (await env.db.oneFirst(sql.type(z.object({ n: z.number() }))`
      SELECT count(*)::int AS n FROM outbox WHERE created_at >= ${sql.timestamp(since)} AND status = 'pending'`)) === 0, 5_000, 100);
    await sleep(300);
    const ids = await env.db.anyFirst(sql.type(z.object({ id: z.string() }))`
      SELECT id FROM outbox WHERE created_at >= ${sql.timestamp(since)} AND status <> 'sent'`);
    return { ids: [...ids], heal: () => env.smtpRelay.heal() };
  } catch (error) {
    env.smtpRelay.heal();
    throw error;
  }
}

async function backendKills(kit: FaultKit): Promise<Injection> {
  const { env, config } = kit;
  const until = Date.now() + config.backendKillMs;
  let rounds = 0;
  let killed = 0;
  let busy = 0;
  while (Date.now() < until) {
    const ports = env.postgresRelay.upstreamPorts();
    if (ports.length > 0) {
      // The stack's connections are the relay's: their client_port is one of its upstream ports.
      const rows = await env.db.any(sql.type(z.object({ state: z.string().nullable(), terminated: z.boolean() }))`
        SELECT state, pg_terminate_backend(pid) AS terminated FROM pg_stat_activity
         WHERE datname = current_database() AND client_port = ANY(${sql.array(ports, 'int4')})`);
      killed += rows.filter((r) => r.terminated).length;
      busy += rows.filter((r) => r.terminated && r.state !== null && r.state !== 'idle').length;
    }
    rounds++;
    await sleep(config.backendKillIntervalMs);
  }
  return {
    endedAt: Date.now(),
    canaries: ['http', 'grpc'],
    notes: [`${killed} backends terminated in ${rounds} rounds, ${busy} of them with a query or transaction in flight`],
  };
}

async function postgresFastRestart(kit: FaultKit): Promise<Injection> {
  const started = Date.now();
  await kit.env.postgres.fastRestart();
  return { endedAt: Date.now(), canaries: ['http', 'grpc'], notes: [`fast shutdown and start took ${seconds(Date.now() - started)}`] };
}

async function postgresCrash(kit: FaultKit): Promise<Injection> {
  await kit.env.postgres.crash();
  await sleep(kit.config.postgresCrashMs);
  const starting = Date.now();
  await kit.env.postgres.start();
  return {
    endedAt: Date.now(),
    canaries: ['http', 'grpc'],
    notes: [`postmaster and backends SIGKILLed, down ${seconds(kit.config.postgresCrashMs)}, crash recovery until it accepted connections ${seconds(Date.now() - starting)}`],
  };
}

async function networkStall(kit: FaultKit): Promise<Injection> {
  kit.env.postgresRelay.stall();
  await sleep(kit.config.stallMs);
  kit.env.postgresRelay.heal();
  return { endedAt: Date.now(), canaries: ['http', 'grpc'], notes: [`every byte to and from PostgreSQL held for ${seconds(kit.config.stallMs)}`] };
}

async function networkCut(kit: FaultKit): Promise<Injection> {
  kit.env.postgresRelay.cut();
  await sleep(kit.config.cutMs);
  kit.env.postgresRelay.heal();
  return { endedAt: Date.now(), canaries: ['http', 'grpc'], notes: [`every connection to PostgreSQL reset, new ones too, for ${seconds(kit.config.cutMs)}`] };
}

async function redisRestart(kit: FaultKit, keep: boolean): Promise<Injection> {
  const stranded = await strandEmails(kit);
  try {
    if (keep) await kit.env.redis.restart(kit.config.redisDownMs);
    else await kit.env.redis.restartEmpty(kit.config.redisDownMs);
  } finally {
    stranded.heal();
  }
  return {
    endedAt: Date.now(),
    canaries: ['http', 'grpc', 'login'],
    stranded: stranded.ids,
    notes: [
      keep
        ? `SIGTERM (AOF written), down ${seconds(kit.config.redisDownMs)}, started on the same data`
        : `SIGKILL, data deleted, down ${seconds(kit.config.redisDownMs)}, started empty: every queued job lost`,
      `${stranded.ids.length} emails held in the queue (SMTP stalled) when it went`,
    ],
  };
}

async function killProcess(kit: FaultKit, name: StackProcess, canaries: readonly Canary[]): Promise<Injection> {
  const pid = kit.env.kill(name);
  const endedAt = Date.now();
  const later = (async () => {
    const next = await kit.env.restarted(name, pid, kit.cap(kit.config.recoveryTimeoutMs));
    if (next === null) return [`the supervisor did not restart ${name} within ${seconds(kit.config.recoveryTimeoutMs)}`];
    const restartedAfter = Date.now() - endedAt;
    const ready = await waitFor(() => fetch(kit.env.readyUrl(name), { signal: AbortSignal.timeout(1_000) }).then((r) => r.ok, () => false), kit.cap(kit.config.recoveryTimeoutMs), 50);
    return [`restarted by the supervisor as pid ${next} after ${seconds(restartedAfter)}, ready (/readyz) ${ready ? `after ${seconds(Date.now() - endedAt)}` : 'NOT within the timeout'}`];
  })();
  return { endedAt, canaries, notes: [`SIGKILL of ${name} (pid ${pid})`], later };
}

async function killWorker(kit: FaultKit): Promise<Injection> {
  const stranded = await strandEmails(kit);
  let injection: Injection;
  try {
    injection = await killProcess(kit, 'worker', ['email']);
  } finally {
    stranded.heal();
  }
  return { ...injection, stranded: stranded.ids, notes: [...injection.notes, `${stranded.ids.length} emails in its hands or queued (SMTP stalled) when it died`] };
}

const percentile = (values: readonly number[], p: number) => {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
};

async function overloadBurst(kit: FaultKit): Promise<Injection> {
  const { env, ops, users, config } = kit;
  const until = Date.now() + config.burstMs;
  // One attempt each, no retry: the burst measures what the stack does with the load, not the clients.
  const once: RetryPolicy = retryPolicy(config, { giveUpAfterMs: 0 });
  const accepted: number[] = [];
  const health: number[] = [];
  const shedBy: Record<Protocol, number> = { http: 0, grpc: 0 };
  let sent = 0;
  const lane = async (protocol: Protocol) => {
    while (Date.now() < until) {
      const started = performance.now();
      sent++;
      const op = await deposit(ops, protocol, pick(users), 1n, once);
      if (op.outcome === 'acknowledged') accepted.push(performance.now() - started);
      // Its one attempt shed by admission control (or a full pool queue): 503 OVERLOADED over HTTP,
      // UNAVAILABLE with reason OVERLOADED over gRPC.
      if (op.outcome === 'gave-up' && op.lastCode === OVERLOADED) shedBy[protocol]++;
    }
  };
  const probe = async () => {
    while (Date.now() < until) {
      const started = performance.now();
      await fetch(`${env.httpUrl}/healthz`, { signal: AbortSignal.timeout(5_000) }).then(
        (r) => r.body?.cancel(),
        () => undefined,
      );
      health.push(performance.now() - started);
      await sleep(50);
    }
  };
  const from = Date.now();
  await Promise.all([...Array.from({ length: config.burstConcurrency }, (_, i) => lane(i % 2 === 0 ? 'http' : 'grpc')), probe()]);
  const counts = ops.journal.countsBetween(from, Date.now());
  // Every shed answer meanwhile (the burst's and the storm's own, which the storm retries after
  // it) must carry Retry-After / RetryInfo.
  const shedAttempts = ops.journal.attempts.filter((a) => a.at >= from && a.kind === 'unavailable' && a.code === OVERLOADED);
  const shed: ShedCounts = {
    sent,
    shed: shedBy.http + shedBy.grpc,
    http: shedBy.http,
    grpc: shedBy.grpc,
    answers: shedAttempts.length,
    withRetryAfter: shedAttempts.filter((a) => a.retryAfterMs !== undefined && a.retryAfterMs > 0).length,
  };
  const capacity = `MAX_INFLIGHT_REQUESTS ${config.stackEnv.MAX_INFLIGHT_REQUESTS} + MAX_QUEUED_REQUESTS ${config.stackEnv.MAX_QUEUED_REQUESTS} per process`;
  const failure =
    shed.shed === 0
      ? `nothing was shed: ${config.burstConcurrency} clients never filled ${capacity}, so the burst proved nothing`
      : shed.withRetryAfter < shed.answers
        ? `${shed.answers - shed.withRetryAfter} of ${shed.answers} shed answers carried no Retry-After / RetryInfo`
        : undefined;
  return {
    endedAt: Date.now(),
    canaries: ['http', 'grpc'],
    shed,
    ...(failure ? { failure } : {}),
    notes: [
      `${config.burstConcurrency} clients (${config.burstConcurrency / config.concurrency}x the storm) for ${seconds(config.burstMs)} against ${capacity}: ${sent} requests, ` +
        `${accepted.length} accepted, ${shed.shed} shed with 503 OVERLOADED (${((shed.shed / Math.max(1, sent)) * 100).toFixed(0)}%; HTTP ${shed.http}, gRPC ${shed.grpc}), ` +
        `${counts.timeout ?? 0} timed out; ${shed.withRetryAfter} of the ${shed.answers} shed answers meanwhile (the storm's retried ones too) with Retry-After / RetryInfo`,
      `p99 of accepted ${percentile(accepted, 99).toFixed(0)} ms; /healthz p99 ${percentile(health, 99).toFixed(0)} ms over ${health.length} probes`,
    ],
  };
}

const INJECT: Record<FaultName, (kit: FaultKit) => Promise<Injection>> = {
  'backend-kills': backendKills,
  'postgres-fast-restart': postgresFastRestart,
  'postgres-crash': postgresCrash,
  'postgres-network-stall': networkStall,
  'postgres-network-cut': networkCut,
  'redis-restart': (kit) => redisRestart(kit, true),
  'redis-restart-lose-jobs': (kit) => redisRestart(kit, false),
  'kill-api': (kit) => killProcess(kit, 'api', ['http']),
  'kill-grpc': (kit) => killProcess(kit, 'grpc', ['grpc']),
  'kill-worker': killWorker,
  'overload-burst': overloadBurst,
};

/** Milliseconds from `from` until the canary succeeded, or null and what it got last. */
async function canary(kit: FaultKit, kind: Canary, from: number): Promise<{ ms: number | null; failure?: string }> {
  const policy: RetryPolicy = {
    timeoutMs: 2_000,
    backoffBaseMs: 100,
    backoffMaxMs: 250,
    giveUpAfterMs: kit.cap(kit.config.recoveryTimeoutMs),
    // A 429 is retried too: the login limit counts attempts in flight, so the storm's own logins,
    // all from 127.0.0.1 and retried together once a store is back, can briefly fill it. A lockout
    // lasts its window and still fails the canary.
    retryRateLimited: true,
  };
  if (kind === 'http' || kind === 'grpc') {
    const op = await deposit(kit.ops, kind, kit.canaryUser, 1n, policy);
    return op.outcome === 'acknowledged' ? { ms: Date.now() - from } : { ms: null, failure: op.refusal ?? op.outcome };
  }
  const login = await logIn(kit.ops, 'http', kit.canaryUser, policy);
  if (login.sessionId === undefined) return { ms: null, failure: `login ${login.refusal ?? login.outcome}` };
  if (kind === 'login') return { ms: Date.now() - from };
  const left = Math.min(kit.config.recoveryTimeoutMs - (Date.now() - from), kit.cap(kit.config.recoveryTimeoutMs));
  const arrived = await kit.env.smtp.waitFor((list) => list.some((m) => m.text.includes(`Session: ${login.sessionId}`)), Math.max(1, left)).then(
    () => true,
    () => false,
  );
  return arrived ? { ms: Date.now() - from } : { ms: null, failure: 'its email did not arrive' };
}

/** Resolves with the milliseconds from `from` until every one of `ids` was delivered, or null after `timeoutMs`. */
async function strandedDelivered(kit: FaultKit, ids: readonly string[], from: number, timeoutMs: number): Promise<number | null> {
  if (ids.length === 0) return 0;
  const all = () => {
    const delivered = deliveredOutboxIds(kit.env.smtp.messages);
    return ids.every((id) => delivered.has(id));
  };
  return (await waitFor(async () => all(), timeoutMs, 100)) ? Date.now() - from : null;
}

/**
 * Injects one fault and measures its recovery. Resolves once the canaries succeeded (or timed
 * out); `settled` resolves once the stranded emails arrived (or the email wait ran out), so the
 * next fault does not wait for them.
 */
export async function runFault(kit: FaultKit, name: FaultName, stormStartedAt: number): Promise<{ report: FaultReport; settled: Promise<void> }> {
  const injectedAt = Date.now();
  const report: FaultReport = { name, injected: false, injectedAt, at: (injectedAt - stormStartedAt) / 1_000, durationMs: 0, recoveryMs: null, canaryMs: {}, during: {}, notes: [] };
  kit.log(`fault ${name}: injecting`);
  let injection: Injection;
  try {
    injection = await INJECT[name](kit);
  } catch (error) {
    report.error = error instanceof Error ? error.message : String(error);
    kit.log(`fault ${name}: NOT injected: ${report.error}`);
    return { report, settled: Promise.resolve() };
  }
  report.injected = true;
  report.durationMs = injection.endedAt - injectedAt;
  report.notes.push(...injection.notes);
  if (injection.shed) report.shed = injection.shed;
  if (injection.failure) {
    report.failure = injection.failure;
    kit.log(`fault ${name}: FAILED: ${injection.failure}`);
  }
  const settled = (async () => {
    if (injection.stranded) {
      report.strandedEmails = injection.stranded.length;
      report.emailRecoveryMs = await strandedDelivered(kit, injection.stranded, injection.endedAt, kit.cap(kit.config.emailWaitMs));
    }
    if (injection.later) report.notes.push(...(await injection.later));
  })();
  const results = await Promise.all(injection.canaries.map(async (kind) => [kind, await canary(kit, kind, injection.endedAt)] as const));
  for (const [kind, result] of results) {
    report.canaryMs[kind] = result.ms;
    if (result.failure) report.notes.push(`the ${kind} canary did not succeed within ${seconds(kit.config.recoveryTimeoutMs)}: ${result.failure}`);
  }
  report.recoveryMs = results.every(([, r]) => r.ms !== null) ? Math.max(...results.map(([, r]) => r.ms as number)) : null;
  report.during = kit.ops.journal.countsBetween(injectedAt, Date.now());
  kit.log(`fault ${name}: ended after ${seconds(report.durationMs)}, recovered ${report.recoveryMs === null ? 'NOT within the timeout' : `in ${seconds(report.recoveryMs)}`}`);
  return { report, settled };
}
