// Every knob of the chaos run, from the environment, with the defaults of its two profiles: the
// full run (`npm run chaos`) and the short one inside `npm test` (`--short`). Every interval the
// suite waits on is one of these, and the stack gets short locks, stall checks and sweeps, so a
// run never waits a production interval.
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
  /** The storm's length (CHAOS_SECONDS); it runs longer when the faults need more time. */
  stormSeconds: number;
  concurrency: number;
  users: number;
  requestTimeoutMs: number;
  retryBaseMs: number;
  retryMaxMs: number;
  giveUpMs: number;
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
  resultsFile: string;
  logDir: string;
  /** The stack's settings (each overridable by the same variable in the environment). */
  stackEnv: Record<string, string>;
};

const ROOT = path.resolve(import.meta.dirname, '../..');

/** Stack settings the suite shortens (production: 10 s locks, 5 s stall checks, 10 s sweeps). */
const STACK_DEFAULTS: Record<string, string> = {
  WORKER_LOCK_DURATION_MS: '5000',
  WORKER_STALLED_INTERVAL_MS: '5000',
  OUTBOX_SWEEP_INTERVAL_MS: '1000',
  OUTBOX_SWEEP_PENDING_AFTER_MS: '2000',
  // How often the worker looks for enqueued emails whose queue job Redis lost (5 s in production).
  OUTBOX_JOB_CHECK_INTERVAL_MS: '1000',
  HOLD_SWEEP_INTERVAL_MS: '1000',
  SHUTDOWN_TIMEOUT_MS: '5000',
  DATABASE_POOL_SIZE: '10',
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
  const concurrency = number(env, 'CHAOS_CONCURRENCY', 12, 1);
  const stackEnv = { ...STACK_DEFAULTS };
  for (const key of Object.keys(stackEnv)) if (env[key]) stackEnv[key] = env[key] as string;
  return {
    profile,
    faults,
    stormSeconds: number(env, 'CHAOS_SECONDS', short ? 30 : 120, 1),
    concurrency,
    users: number(env, 'CHAOS_USERS', 12, 2),
    requestTimeoutMs: number(env, 'CHAOS_REQUEST_TIMEOUT_MS', 3_000, 10),
    retryBaseMs: number(env, 'CHAOS_RETRY_BASE_MS', 50, 1),
    retryMaxMs: number(env, 'CHAOS_RETRY_MAX_MS', 1_000, 1),
    giveUpMs: number(env, 'CHAOS_GIVE_UP_MS', 60_000, 0),
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
    resultsFile: path.resolve(ROOT, env.CHAOS_RESULTS ?? (short ? 'reports/chaos-short.json' : 'bench/results/chaos.json')),
    logDir: path.resolve(ROOT, env.CHAOS_LOG_DIR ?? 'reports'),
    stackEnv,
  };
}
