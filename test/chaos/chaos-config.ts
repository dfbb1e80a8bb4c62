// Every knob of the chaos run, from the environment, with the defaults of its two profiles: the
// full run (`npm run chaos`) and the short one inside `npm test` (`--short`). Every interval the
// suite waits on is one of these, and the stack gets short locks, stall checks and sweeps, so a
// run never waits a production interval. The short run has a budget (120 s of storm and recovery):
// its plan (planRun) must fit it or the run refuses to start, and its waits are capped by it.
import path from 'node:path';

export const FAULTS = [
  'backend-kills',
  'postgres-fast-restart',
  'postgres-crash',
  'postgres-network-stall',
  'postgres-network-cut',
  'redis-restart',
  'redis-restart-lose-jobs',
  'kill-api',
  'kill-grpc',
  'kill-worker',
  'overload-burst',
] as const;
export type FaultName = (typeof FAULTS)[number];

/** The short run's subset: the database dying under load, Redis losing the queue, the worker dying. */
export const SHORT_FAULTS: readonly FaultName[] = ['backend-kills', 'postgres-crash', 'redis-restart-lose-jobs', 'kill-worker'];

export type ChaosConfig = {
  profile: 'full' | 'short';
  faults: readonly FaultName[];
  /** CHAOS_FAULTS named some of the faults (a full-profile subset writes reports/chaos-subset.json). */
  subset: boolean;
  /** The storm's length (CHAOS_SECONDS); it runs longer when the faults need more time. */
  stormSeconds: number;
  concurrency: number;
  users: number;
  requestTimeoutMs: number;
  retryBaseMs: number;
  retryMaxMs: number;
  giveUpMs: number;
  /**
   * Share of the storm's requests that the ledger must refuse: an overdraft by a user kept at a
   * zero balance, or the capture of a hold voided just before (so "no refused key moved money"
   * has refusals to check).
   */
  refusedShare: number;
  /** Share of money requests whose first attempt has a deadline of `impatientTimeoutMs`. */
  impatientShare: number;
  impatientTimeoutMs: number;
  warmUpMs: number;
  gapMs: number;
  recoveryTimeoutMs: number;
  backendKillMs: number;
  backendKillIntervalMs: number;
  postgresCrashMs: number;
  stallMs: number;
  cutMs: number;
  redisDownMs: number;
  /** Emails requested while SMTP is stalled before a Redis or worker fault (above the worker's concurrency). */
  emailBurst: number;
  burstConcurrency: number;
  burstMs: number;
  /** How long after the storm every requested email has to arrive. */
  emailWaitMs: number;
  /**
   * Seconds of storm and recovery (from the storm's start to the end of the checks) the run may
   * take: the short run's is 120 (issue 12); null: none. The plan must fit it, and every wait with
   * a ceiling (canaries, stranded emails, the email wait) is cut to what is left of it.
   */
  budgetSeconds: number | null;
  resultsFile: string;
  logDir: string;
  /** The stack's settings (each overridable by the same variable in the environment). */
  stackEnv: Record<string, string>;
};

const ROOT = path.resolve(import.meta.dirname, '../..');

/** Stack settings the suite shortens (production: 10 s locks, 5 s stall checks, 10 s sweeps). */
export const STACK_DEFAULTS: Readonly<Record<string, string>> = {
  WORKER_LOCK_DURATION_MS: '5000',
  WORKER_STALLED_INTERVAL_MS: '5000',
  OUTBOX_SWEEP_INTERVAL_MS: '1000',
  OUTBOX_SWEEP_PENDING_AFTER_MS: '2000',
  // How often the worker looks for enqueued emails whose queue job Redis lost (5 s in production).
  OUTBOX_JOB_CHECK_INTERVAL_MS: '1000',
  HOLD_SWEEP_INTERVAL_MS: '1000',
  SHUTDOWN_TIMEOUT_MS: '5000',
  DATABASE_POOL_SIZE: '10',
  // Admission per process well below production's 128 + 64, so that the overload burst (ten times
  // the storm's clients, half on each edge) is several times what a process admits and queues and
  // is shed with 503 / UNAVAILABLE, while the storm alone (half of its clients per edge, plus the
  // email bursts before the Redis and worker faults) stays well inside it.
  MAX_INFLIGHT_REQUESTS: '16',
  MAX_QUEUED_REQUESTS: '16',
  // An email job retried after 0.5 s, 1 s, 2 s... instead of 5 s, 10 s, 20 s (production), so an
  // email whose attempt a fault broke arrives within the run's email wait.
  EMAIL_JOB_BACKOFF_MS: '500',
  // Well above what the storm moves, so refusals are the faults' doing, not the limits'.
  DEPOSIT_MAX_AMOUNT: '1000000000000000',
  DEPOSIT_DAILY_LIMIT: '1000000000000000',
  OUTGOING_DAILY_LIMIT: '1000000000000000',
  // The storm logs its users in again and again; the per-user email cap is abuse control, not a fault.
  LOGIN_EMAIL_RATE_LIMIT_MAX: '100000',
  // Its users sign up from one address, again after a fault; abuse control, not a fault either.
  SIGNUP_RATE_LIMIT_PER_ADDRESS: '100000',
  SIGNUP_RATE_LIMIT_GLOBAL: '100000',
  ACCESS_TOKEN_TTL_SECONDS: '3600',
  BCRYPT_COST: '4',
  LOG_LEVEL: 'warn',
};

/** The short run's budget of storm and recovery (issue 12: at most 120 s). */
export const SHORT_BUDGET_SECONDS = 120;

/**
 * What the plan allows for what the configuration does not fix: how long a step takes beyond its
 * configured length, and how long until a fault's canaries pass after its end. Measured on a
 * 2-core machine shared with other work (bench/results/chaos.json: PostgreSQL starts after a crash
 * in about 5 s, a killed process is ready again in 5 to 11 s, other recoveries take under 1.5 s),
 * rounded up.
 */
export const ALLOWANCE_MS = {
  /** A PostgreSQL start (fast restart, crash recovery). */
  postgresStart: 8_000,
  /** A Redis start. */
  redisStart: 2_000,
  /** The burst of sign-ups and logins queued while SMTP is held before a Redis or worker fault. */
  strandEmails: 4_000,
  /** A killed process restarted by the supervisor until /readyz. */
  processRestart: 12_000,
  /** The canaries' first success after the store or network is back. */
  recovery: 3_000,
  /** After the storm: counting, SQL checks (with a 1.5 s wait for the statistics), the last login. */
  checks: 8_000,
} as const;

const secondsOf = (ms: number) => `${(ms / 1_000).toFixed(1)} s`;

/** One line of the plan. */
export type PlanStep = { what: string; ms: number };
export type RunPlan = {
  steps: PlanStep[];
  /** From the storm's start until it is told to stop: CHAOS_SECONDS, or longer when the faults need it. */
  stormMs: number;
  /** The storm's start until the checks end: the storm, its requests in hand, the email wait, the checks. */
  totalMs: number;
};

/** The planned length of one fault: its configured length and the allowances of what it waits for. */
export function faultPlanMs(name: FaultName, config: ChaosConfig): number {
  const { recovery, postgresStart, redisStart, strandEmails, processRestart } = ALLOWANCE_MS;
  const stack = (key: string) => Number(config.stackEnv[key]);
  switch (name) {
    case 'backend-kills':
      return config.backendKillMs + config.backendKillIntervalMs + recovery;
    case 'postgres-fast-restart':
      return postgresStart + recovery;
    case 'postgres-crash':
      return config.postgresCrashMs + postgresStart + recovery;
    case 'postgres-network-stall':
      return config.stallMs + recovery;
    case 'postgres-network-cut':
      return config.cutMs + recovery;
    case 'redis-restart':
    case 'redis-restart-lose-jobs':
      return strandEmails + config.redisDownMs + redisStart + recovery;
    case 'kill-api':
    case 'kill-grpc':
      return processRestart + recovery;
    case 'kill-worker':
      // The jobs the dead worker held run again within its lock plus one stall check.
      return strandEmails + Math.max(processRestart, stack('WORKER_LOCK_DURATION_MS') + stack('WORKER_STALLED_INTERVAL_MS')) + recovery;
    case 'overload-burst':
      return config.burstMs + recovery;
  }
}

/**
 * The run's schedule from its configuration, as main.ts runs it: the warm-up, then each fault at its
 * slot (CHAOS_SECONDS less the warm-up shared out among the faults) or after the one before and
 * its gap, whichever is later; the storm's end (CHAOS_SECONDS or the last fault's end, whichever is
 * later); the requests in hand finishing, the email wait (its ceiling) and the checks.
 */
export function planRun(config: ChaosConfig): RunPlan {
  const steps: PlanStep[] = [{ what: 'warm-up', ms: config.warmUpMs }];
  const slotMs = Math.max(0, (config.stormSeconds * 1_000 - config.warmUpMs) / config.faults.length);
  let at = config.warmUpMs;
  for (const [i, name] of config.faults.entries()) {
    const start = Math.max(at, config.warmUpMs + i * slotMs);
    const ms = faultPlanMs(name, config) + config.gapMs;
    steps.push({ what: `${name}${start > at ? ` (at its slot, ${secondsOf(start)})` : ''} and its gap`, ms: start - at + ms });
    at = start + ms;
  }
  const stormMs = Math.max(config.stormSeconds * 1_000, at);
  if (stormMs > at) steps.push({ what: `storm until CHAOS_SECONDS=${config.stormSeconds}`, ms: stormMs - at });
  steps.push({ what: 'requests in hand finish', ms: config.requestTimeoutMs + config.retryMaxMs });
  steps.push({ what: 'email wait (ceiling)', ms: config.emailWaitMs });
  steps.push({ what: 'checks', ms: ALLOWANCE_MS.checks });
  return { steps, stormMs, totalMs: steps.reduce((sum, step) => sum + step.ms, 0) };
}

/** The plan as one line per step, for the refusal message and the run's log. */
export function describePlan(plan: RunPlan): string {
  return plan.steps.map((step) => `${step.what} ${secondsOf(step.ms)}`).join(', ');
}

function number(env: NodeJS.ProcessEnv, name: string, fallback: number, min = 0): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < min) throw new Error(`${name} must be a number >= ${min} (got "${raw}")`);
  return value;
}

export function chaosConfig(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): ChaosConfig {
  const profile = argv.includes('--short') ? 'short' : 'full';
  const short = profile === 'short';
  const listed = env.CHAOS_FAULTS?.split(',').map((f) => f.trim()).filter(Boolean);
  const unknown = listed?.filter((f) => !(FAULTS as readonly string[]).includes(f)) ?? [];
  if (unknown.length > 0) throw new Error(`CHAOS_FAULTS: unknown fault ${unknown.join(', ')} (known: ${FAULTS.join(', ')})`);
  const faults = (listed as FaultName[] | undefined) ?? (short ? SHORT_FAULTS : FAULTS);
  // A list of every fault is a full run like the default one.
  const subset = listed !== undefined && !FAULTS.every((name) => faults.includes(name));
  const concurrency = number(env, 'CHAOS_CONCURRENCY', 12, 1);
  const stackEnv = { ...STACK_DEFAULTS };
  for (const key of Object.keys(stackEnv)) if (env[key]) stackEnv[key] = env[key] as string;
  // Full runs only in bench/results/chaos.json: subsets and the short run go to reports/ (gitignored).
  const resultsFile = env.CHAOS_RESULTS ?? (short ? 'reports/chaos-short.json' : subset ? 'reports/chaos-subset.json' : 'bench/results/chaos.json');
  const budget = env.CHAOS_BUDGET_SECONDS ? number(env, 'CHAOS_BUDGET_SECONDS', SHORT_BUDGET_SECONDS, 10) : short ? SHORT_BUDGET_SECONDS : null;
  if (short && budget !== null && budget > SHORT_BUDGET_SECONDS) throw new Error(`CHAOS_BUDGET_SECONDS: the short run's budget is at most ${SHORT_BUDGET_SECONDS} s (got ${budget})`);
  const config: ChaosConfig = {
    profile,
    faults,
    subset,
    stormSeconds: number(env, 'CHAOS_SECONDS', short ? 30 : 120, 1),
    concurrency,
    users: number(env, 'CHAOS_USERS', 12, 2),
    requestTimeoutMs: number(env, 'CHAOS_REQUEST_TIMEOUT_MS', 3_000, 10),
    retryBaseMs: number(env, 'CHAOS_RETRY_BASE_MS', 50, 1),
    retryMaxMs: number(env, 'CHAOS_RETRY_MAX_MS', 1_000, 1),
    giveUpMs: number(env, 'CHAOS_GIVE_UP_MS', 60_000, 0),
    refusedShare: number(env, 'CHAOS_REFUSED_SHARE', 0.03, 0),
    impatientShare: number(env, 'CHAOS_IMPATIENT_SHARE', 0.1, 0),
    impatientTimeoutMs: number(env, 'CHAOS_IMPATIENT_TIMEOUT_MS', 15, 1),
    warmUpMs: number(env, 'CHAOS_WARMUP_MS', 3_000),
    gapMs: number(env, 'CHAOS_GAP_MS', short ? 1_000 : 3_000),
    recoveryTimeoutMs: number(env, 'CHAOS_RECOVERY_TIMEOUT_MS', short ? 30_000 : 60_000, 1_000),
    backendKillMs: number(env, 'CHAOS_BACKEND_KILL_MS', 3_000, 100),
    backendKillIntervalMs: number(env, 'CHAOS_BACKEND_KILL_INTERVAL_MS', 100, 10),
    postgresCrashMs: number(env, 'CHAOS_POSTGRES_CRASH_MS', 5_000),
    stallMs: number(env, 'CHAOS_STALL_MS', 5_000),
    cutMs: number(env, 'CHAOS_CUT_MS', 3_000),
    redisDownMs: number(env, 'CHAOS_REDIS_DOWN_MS', 1_000),
    emailBurst: number(env, 'CHAOS_EMAIL_BURST', 12, 1),
    burstConcurrency: number(env, 'CHAOS_BURST_CONCURRENCY', concurrency * 10, 1),
    burstMs: number(env, 'CHAOS_BURST_MS', 3_000, 100),
    emailWaitMs: number(env, 'CHAOS_EMAIL_WAIT_MS', short ? 20_000 : 60_000),
    budgetSeconds: budget,
    resultsFile: path.resolve(ROOT, resultsFile),
    logDir: path.resolve(ROOT, env.CHAOS_LOG_DIR ?? 'reports'),
    stackEnv,
  };
  if (config.refusedShare > 0.5) throw new Error(`CHAOS_REFUSED_SHARE must be at most 0.5 (got ${config.refusedShare})`);
  if (faults.includes('overload-burst')) {
    // Shedding needs more calls at once on an edge than its process admits and queues.
    const capacity = Number(stackEnv.MAX_INFLIGHT_REQUESTS) + Number(stackEnv.MAX_QUEUED_REQUESTS);
    const perEdge = Math.floor(config.burstConcurrency / 2);
    if (perEdge <= capacity) {
      throw new Error(
        `the overload burst cannot shed: ${perEdge} clients per edge (CHAOS_BURST_CONCURRENCY=${config.burstConcurrency}) do not exceed ` +
          `MAX_INFLIGHT_REQUESTS + MAX_QUEUED_REQUESTS = ${capacity} per process; raise the burst or lower the limits`,
      );
    }
  }
  if (budget !== null) {
    const plan = planRun(config);
    if (plan.totalMs > budget * 1_000) {
      throw new Error(
        `the ${profile} run's plan is ${secondsOf(plan.totalMs)} of storm and recovery, more than its budget of ${budget} s ` +
          `(${describePlan(plan)}); shorten CHAOS_SECONDS, CHAOS_FAULTS or the waits${short ? ', or run the full profile (npm run chaos)' : ''}`,
      );
    }
  }
  return config;
}
