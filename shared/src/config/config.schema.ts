import { isIP } from 'node:net';
import { z } from 'zod';

const port = (fallback: number) => z.coerce.number().int().min(0).max(65_535).default(fallback);
const url = (protocols: readonly string[]) =>
  z.string().trim().refine((value) => {
    try {
      return protocols.includes(new URL(value).protocol);
    } catch {
      return false;
    }
  }, `must be a URL with one of the protocols ${protocols.join(', ')}`);

/** A whole number of minor units, 1..10^15, kept as a bigint. */
const minorUnits = (fallback: bigint) =>
  z
    .string()
    .trim()
    .regex(/^[1-9][0-9]{0,15}$/, 'must be a whole number of minor units from 1 to 10^15')
    .default(fallback.toString())
    .transform((value) => BigInt(value))
    .refine((value) => value <= 1_000_000_000_000_000n, 'must be at most 10^15 minor units');

/**
 * Every environment variable any process reads, parsed once. Names are the ones in DESIGN.md;
 * operators and manifests rely on them. Secrets (URLs with passwords, keys) are never logged.
 */
export const configSchema = z
  .object({
    NODE_ENV: z.enum(['development', 'test', 'production']).default('development'),
    LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    // `json`: one JSON object per line (containers, production). `pretty`: pino-pretty's coloured
    // lines, for a person at a terminal (a development dependency: never in production, where
    // JSON is kept whatever this says). Unset: pretty in a terminal outside production.
    LOG_FORMAT: z.enum(['json', 'pretty']).optional(),
    // OpenTelemetry traces, read by each process's `--import` preload: exported over OTLP/HTTP to
    // this endpoint (`/v1/traces` is appended) when it is set, entirely off when it is not.
    OTEL_EXPORTER_OTLP_ENDPOINT: url(['http:', 'https:']).optional(),
    OTEL_EXPORTER_OTLP_PROTOCOL: z.enum(['http/protobuf', 'http/json']).default('http/protobuf'),
    // The share of traces started here that are kept (a trace continued from a caller follows
    // the caller's decision).
    OTEL_TRACES_SAMPLER_ARG: z.coerce.number().min(0).max(1).default(1),
    // How long finished spans wait to be sent in one batch.
    OTEL_BSP_SCHEDULE_DELAY: z.coerce.number().int().min(10).max(60_000).default(5_000),
    DATABASE_URL: url(['postgres:', 'postgresql:']).default('postgres://postgres@127.0.0.1:5432/bank'),
    // The migrator's connection: the schema's owner, allowed to create roles. Unset, the migrator
    // uses DATABASE_URL (local development, where one role does both). The API, gRPC server and
    // worker never read it; in production their DATABASE_URL logs in as APP_DATABASE_ROLE.
    MIGRATION_DATABASE_URL: url(['postgres:', 'postgresql:']).optional(),
    // The role the migrator creates (when missing) and grants DML on the schema to, and its
    // password (set by the migrator on every run when given; printable ASCII, so that every client
    // derives the same SCRAM key from it).
    APP_DATABASE_ROLE: z
      .string()
      .regex(/^[a-z_][a-z0-9_]{0,62}$/, 'must be a lower-case SQL identifier of at most 63 characters')
      .default('bank_app'),
    APP_DATABASE_PASSWORD: z
      .string()
      .regex(/^[\x21-\x7e]{16,1024}$/, 'must be 16 to 1024 printable ASCII characters without spaces')
      .optional(),
    DATABASE_POOL_SIZE: z.coerce.number().int().min(1).max(200).default(10),
    // Each distinct statement text runs as a named prepared statement, parsed and planned once per
    // connection (shared/src/db/prepared-statements.ts). false behind a pooler that does not keep
    // them (PgBouncer in transaction mode without max_prepared_statements).
    DATABASE_PREPARED_STATEMENTS: z.enum(['true', 'false']).default('true').transform((value) => value === 'true'),
    // Group commit: the most waiting money movements one database call and commit carries.
    LEDGER_BATCH_MAX_SIZE: z.coerce.number().int().min(1).max(1_000).default(64),
    // Load shedding (API and gRPC processes). Calls waiting for a database connection while every
    // one is busy, and how long each may wait; past either a call is refused with OVERLOADED (503)
    // before it sends a query. Money movements waiting for the next group-commit batch. Both
    // queue limits sit above what admission lets in (MAX_INFLIGHT_REQUESTS less the pool), so
    // admission decides under a burst; they bite where it does not, and the wait timeout bites
    // when the database itself slows down.
    DATABASE_POOL_QUEUE_LIMIT: z.coerce.number().int().min(0).max(100_000).default(128),
    DATABASE_POOL_WAIT_TIMEOUT_MS: z.coerce.number().int().min(1).max(60_000).default(1_000),
    LEDGER_QUEUE_LIMIT: z.coerce.number().int().min(0).max(100_000).default(256),
    // Admission control per process: calls running at once, calls waiting for one of them, and
    // how long one may wait; the next is answered 503 with Retry-After / UNAVAILABLE at once.
    // 128 is four times the concurrency a 2-core pod sustains (bench:edge, c32), room for calls
    // that wait without working (a login burst queued for bcrypt) beside the quick ones.
    MAX_INFLIGHT_REQUESTS: z.coerce.number().int().min(1).max(100_000).default(128),
    MAX_QUEUED_REQUESTS: z.coerce.number().int().min(0).max(100_000).default(64),
    REQUEST_QUEUE_TIMEOUT_MS: z.coerce.number().int().min(1).max(60_000).default(500),
    // Money limits (issue 11), in minor units, applied per currency: one self-service deposit; a
    // user's self-service deposits and an account's outgoing transfers, holds and withdrawals per
    // rolling 24 hours. A banker's credit is not capped. At most 10^15 (the largest amount).
    DEPOSIT_MAX_AMOUNT: minorUnits(1_000_000n),
    DEPOSIT_DAILY_LIMIT: minorUnits(2_500_000n),
    OUTGOING_DAILY_LIMIT: minorUnits(5_000_000n),
    // How often the worker marks pending holds past their deadline expired (expiry is enforced
    // wherever a hold is used or read in any case), and how many per round.
    HOLD_SWEEP_INTERVAL_MS: z.coerce.number().int().min(100).max(3_600_000).default(5_000),
    HOLD_SWEEP_BATCH_SIZE: z.coerce.number().int().min(1).max(100_000).default(1_000),
    // Events (notifications and webhooks read them) are deleted this many days after they happened,
    // once handled, with their finished webhook deliveries; 0 keeps them forever. How often the
    // worker prunes, and how many per statement.
    EVENTS_RETENTION_DAYS: z.coerce.number().int().min(0).max(3_650).default(30),
    EVENTS_PRUNE_INTERVAL_MS: z.coerce.number().int().min(1_000).max(86_400_000).default(3_600_000),
    EVENTS_PRUNE_BATCH_SIZE: z.coerce.number().int().min(1).max(100_000).default(1_000),
    // Monthly statement emails: accounts claimed (and their emails queued) per transaction.
    STATEMENT_EMAIL_PAGE_SIZE: z.coerce.number().int().min(1).max(10_000).default(500),
    // Notification emails (issue 14): how often the worker's notifier turns new events into
    // emails and flushes closed digest windows, how many events per transaction, and how long
    // a recipient's money-received window stays open after the email that opened it (what
    // arrives meanwhile goes out as one digest when it closes).
    NOTIFIER_INTERVAL_MS: z.coerce.number().int().min(10).max(60_000).default(1_000),
    NOTIFIER_BATCH_SIZE: z.coerce.number().int().min(1).max(10_000).default(100),
    NOTIFICATION_DIGEST_WINDOW_MS: z.coerce.number().int().min(10).max(86_400_000).default(60_000),
    // How often the worker checks the ledger invariants (bank_ledger_invariant_violations); 0: never.
    // Each round after the first looks only at what was written since the round before last.
    LEDGER_CHECK_INTERVAL_MS: z.coerce.number().int().min(0).max(86_400_000).default(300_000),
    // Webhooks (issue 14): loopback, private, link-local and other special addresses are refused as
    // endpoints (when registered and at every delivery, against the resolved address) unless this
    // is true: local development and tests only. http:// endpoints are refused in production.
    WEBHOOK_ALLOW_PRIVATE_TARGETS: z.enum(['true', 'false']).default('false').transform((value) => value === 'true'),
    WEBHOOK_MAX_PER_USER: z.coerce.number().int().min(1).max(1_000).default(10),
    // One attempt (connect, send, the whole answer) at most this long; a delivery's lease is twice
    // this plus 1 s, after which a worker that died with it no longer holds it.
    WEBHOOK_TIMEOUT_MS: z.coerce.number().int().min(50).max(60_000).default(10_000),
    // Retries: the first after this (with jitter: half to all of it; at most 30 s), each next one
    // twice as late up to WEBHOOK_RETRY_MAX_DELAY_MS, until they add up to WEBHOOK_RETRY_WINDOW_MS.
    WEBHOOK_RETRY_BASE_MS: z.coerce.number().int().min(10).max(30_000).default(10_000),
    WEBHOOK_RETRY_MAX_DELAY_MS: z.coerce.number().int().min(10).max(86_400_000).default(3_600_000),
    WEBHOOK_RETRY_WINDOW_MS: z.coerce.number().int().min(10).max(7 * 86_400_000).default(86_400_000),
    // How often each worker looks for new events and due deliveries, and how many it sends at once.
    WEBHOOK_POLL_INTERVAL_MS: z.coerce.number().int().min(10).max(60_000).default(1_000),
    WEBHOOK_CONCURRENCY: z.coerce.number().int().min(1).max(200).default(10),
    REDIS_URL: url(['redis:', 'rediss:']).default('redis://127.0.0.1:6379'),
    SMTP_URL: url(['smtp:', 'smtps:']).default('smtp://127.0.0.1:1025'),
    MAIL_FROM: z.string().min(3).default('Bank <no-reply@bank.local>'),
    PUBLIC_BASE_URL: url(['http:', 'https:']).default('http://localhost:8080'),
    // The address every listener binds (HTTP, gRPC, the /healthz /readyz /metrics servers):
    // loopback by default, so `npm start` on a laptop is not open to its network; the container
    // images and the manifests set 0.0.0.0 (every interface), which a pod needs.
    HOST: z
      .string()
      .trim()
      .refine((value) => isIP(value) !== 0 || /^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$/.test(value), 'must be an IP address or a host name')
      .default('127.0.0.1'),
    HTTP_PORT: port(8080),
    GRPC_PORT: port(9090),
    METRICS_PORT: port(9464),
    // gRPC server reflection (grpcurl, Evans): unset, on outside production and off in it.
    GRPC_REFLECTION: z.enum(['true', 'false']).optional().transform((value) => (value === undefined ? undefined : value === 'true')),
    // Per gRPC connection: concurrent streams (calls); a request message and a call's metadata at
    // most this large (RESOURCE_EXHAUSTED past them).
    GRPC_MAX_CONCURRENT_STREAMS: z.coerce.number().int().min(1).max(10_000).default(100),
    GRPC_MAX_MESSAGE_BYTES: z.coerce.number().int().min(1_024).max(64 * 1_024 * 1_024).default(1_024 * 1_024),
    GRPC_MAX_METADATA_BYTES: z.coerce.number().int().min(1_024).max(64 * 1_024).default(8 * 1_024),
    // Keepalive: the server pings a connection after this much silence and closes it when the ping
    // goes unanswered for the timeout; an idle connection (no call) is closed, and every connection
    // after its maximum age (plus a grace for calls in flight), so clients spread over new pods.
    GRPC_KEEPALIVE_TIME_MS: z.coerce.number().int().min(1_000).max(7_200_000).default(60_000),
    GRPC_KEEPALIVE_TIMEOUT_MS: z.coerce.number().int().min(1_000).max(600_000).default(20_000),
    GRPC_MAX_CONNECTION_IDLE_MS: z.coerce.number().int().min(100).max(86_400_000).default(300_000),
    GRPC_MAX_CONNECTION_AGE_MS: z.coerce.number().int().min(1_000).max(86_400_000).default(1_800_000),
    GRPC_MAX_CONNECTION_AGE_GRACE_MS: z.coerce.number().int().min(0).max(600_000).default(30_000),
    PASETO_SECRET_KEY: z.string().min(1).optional(),
    PASETO_PUBLIC_KEYS: z.string().min(1).optional(),
    // The `aud` every token is issued with and must carry to be accepted: the same value in every
    // process of one deployment; tokens of another audience (signed by the same key) are refused.
    TOKEN_AUDIENCE: z.string().trim().regex(/^[\x21-\x7e]{1,200}$/, 'must be 1 to 200 printable ASCII characters without spaces').default('bank-api'),
    ACCESS_TOKEN_TTL_SECONDS: z.coerce.number().int().min(10).max(86_400).default(900),
    REFRESH_TOKEN_TTL_SECONDS: z.coerce.number().int().min(60).max(30 * 86_400).default(86_400),
    // Absolute lifetime of a session: refreshing slides it along, but never past this.
    SESSION_MAX_AGE_SECONDS: z.coerce.number().int().min(60).max(365 * 86_400).default(30 * 86_400),
    LOGIN_TOKEN_TTL_SECONDS: z.coerce.number().int().min(30).max(3_600).default(600),
    BCRYPT_COST: z.coerce.number().int().min(4).max(15).default(12),
    // bcrypt calls (hashes and compares) at once per process. Each holds a libuv thread-pool thread
    // for its whole duration; keep it below UV_THREADPOOL_SIZE so the pool always has threads left.
    BCRYPT_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(2),
    // The nice value of the libuv pool threads where bcrypt runs, in the API and gRPC servers
    // (Linux, per thread): password checks use the CPU requests and PostgreSQL leave over, so a
    // login burst does not slow every other call. 0 leaves them at the process's priority.
    THREAD_POOL_NICE: z.coerce.number().int().min(0).max(19).default(10),
    // How long a process trusts a session it saw active without reading it again (0: read on every
    // call). Revocations reach every process sooner through Redis pub/sub; this is the bound when
    // a message is lost.
    SESSION_CACHE_TTL_MS: z.coerce.number().int().min(0).max(60_000).default(1_000),
    LOGIN_RATE_LIMIT_MAX: z.coerce.number().int().min(1).default(5),
    LOGIN_RATE_LIMIT_WINDOW_SECONDS: z.coerce.number().int().min(1).default(900),
    // The longest a login waits before its password check once its username's wrong passwords
    // passed LOGIN_RATE_LIMIT_MAX (100 ms doubling per failure up to this; loginDelayMs). Tests set
    // it low so they never wait the production delay.
    LOGIN_DELAY_MAX_MS: z.coerce.number().int().min(0).max(60_000).default(2_000),
    // Login emails (successful password checks) per user per window.
    LOGIN_EMAIL_RATE_LIMIT_MAX: z.coerce.number().int().min(1).default(10),
    // Sign-ups per client address and in all per hour (each costs a bcrypt hash and may send an
    // email). Test stacks, benchmarks and the chaos run set them high.
    SIGNUP_RATE_LIMIT_PER_ADDRESS: z.coerce.number().int().min(1).default(10),
    SIGNUP_RATE_LIMIT_GLOBAL: z.coerce.number().int().min(1).default(1_000),
    // How long an emailed password-reset link works (30 minutes), and reset requests per
    // requested email address and per client address per hour (each may send an email).
    PASSWORD_RESET_TTL_SECONDS: z.coerce.number().int().min(1).max(86_400).default(1_800),
    PASSWORD_RESET_RATE_LIMIT_PER_EMAIL: z.coerce.number().int().min(1).default(5),
    PASSWORD_RESET_RATE_LIMIT_PER_ADDRESS: z.coerce.number().int().min(1).default(20),
    CORS_ORIGINS: z.string().default(''),
    // How many proxies in front of the API and gRPC server append to X-Forwarded-For (the ingress:
    // 1; a CDN in front of it: 2). The client address (the per-address login, sign-up and reset
    // limits, logs) is the entry that many hops from the right; every entry before it is whatever
    // the client wrote. 0 (the default): the peer address, X-Forwarded-For ignored, as it must be
    // wherever clients can reach the process directly.
    TRUSTED_PROXIES: z.coerce.number().int().min(0).max(10).default(0),
    // The older boolean is refused rather than silently ignored (it meant TRUSTED_PROXIES=1).
    TRUST_PROXY: z.undefined({ error: 'was replaced by TRUSTED_PROXIES, the number of proxy hops that append to X-Forwarded-For (1 behind the ingress)' }).optional(),
    HTTP_BODY_LIMIT_BYTES: z.coerce.number().int().min(1_024).max(10 * 1_024 * 1_024).default(64 * 1_024),
    EMAIL_QUEUE_NAME: z.string().regex(/^[A-Za-z0-9_.-]{1,100}$/).default('bank-email'),
    // Every Redis key the service writes besides the queue starts with this, so environments
    // (and test runs) can share one Redis without reading each other's rate limits.
    REDIS_KEY_PREFIX: z.string().regex(/^[A-Za-z0-9_.:-]{1,100}$/).default('bank:'),
    WORKER_CONCURRENCY: z.coerce.number().int().min(1).max(100).default(5),
    // A job held by a worker that died (SIGKILL, OOM, a lost node) runs again within lock + one
    // stall check (worstCaseRedeliveryMs in services/worker): 10 s + 5 s, so a login code is at
    // most 15 s late. The lock is renewed every half of its duration while a job runs.
    WORKER_LOCK_DURATION_MS: z.coerce.number().int().min(1_000).max(600_000).default(10_000),
    WORKER_STALLED_INTERVAL_MS: z.coerce.number().int().min(500).max(600_000).default(5_000),
    OUTBOX_SWEEP_INTERVAL_MS: z.coerce.number().int().min(100).max(3_600_000).default(10_000),
    // How old a pending outbox row must be before the sweep takes it: the use case that wrote it
    // enqueues it itself right after commit, so the sweep only picks up what that missed.
    OUTBOX_SWEEP_PENDING_AFTER_MS: z.coerce.number().int().min(0).max(3_600_000).default(5_000),
    // How often the worker checks that each enqueued outbox row still has its job in Redis and
    // re-adds the lost ones (Redis without persistence, a failover): an upper bound, with the
    // queue's own wait, on how late such an email goes out. A login code lives 10 minutes.
    OUTBOX_JOB_CHECK_INTERVAL_MS: z.coerce.number().int().min(100).max(600_000).default(5_000),
    // How many times that check re-adds the job of a row whose job FAILED without settling it (its
    // workers killed while it ran) before it marks the row failed: a job that kills its worker
    // every time must not loop.
    OUTBOX_JOB_MAX_RECOVERIES: z.coerce.number().int().min(0).max(100).default(3),
    // An email job's attempts and the first retry's delay (exponential with 20% jitter: about 5 s,
    // 10 s, 20 s ... 85 min, so 12 attempts span roughly 2.3 to 2.8 hours). After the last attempt
    // the outbox row is failed and nothing sends it again, so keep the span longer than an SMTP
    // outage lasts. Set by every process that enqueues emails (API, gRPC, worker).
    EMAIL_JOB_ATTEMPTS: z.coerce.number().int().min(1).max(100).default(12),
    EMAIL_JOB_BACKOFF_MS: z.coerce.number().int().min(10).max(3_600_000).default(5_000),
    SHUTDOWN_TIMEOUT_MS: z.coerce.number().int().min(100).max(120_000).default(20_000),
    AWS_SECRETS_MANAGER_SECRET_ID: z.string().min(1).optional(),
    AWS_REGION: z.string().min(1).optional(),
  });

export type Config = z.infer<typeof configSchema>;
