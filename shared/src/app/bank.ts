// The composition of the use cases that both edges serve. Each process's own composition root
// (services/*/src) opens the pool and the registry, calls createBank with its config slice, and
// wires the result to its protocol.
import type { Registry } from 'prom-client';
import { AuditService } from '../audit/audit.service.ts';
import { PasswordHasher, type BcryptEngine } from '../auth/password.ts';
import { RateLimiter } from '../auth/rate-limiter.ts';
import { SessionLiveness } from '../auth/session-liveness.ts';
import { SessionService } from '../auth/session.service.ts';
import { TokenMaker } from '../auth/token-maker.ts';
import type { Config } from '../config/config.ts';
import { priorityLane } from '../db/bounded-pool.ts';
import type { DatabasePool } from '../db/pool.ts';
import { LedgerService } from '../ledger/ledger.service.ts';
import type { Logger } from '../logging/logger.ts';
import { createLedgerMetrics, registerPoolMetrics } from '../observability/metrics.ts';
import { OutboxPublisher } from '../outbox/outbox-publisher.ts';
import { storesReadiness, type ReadinessProbe } from '../process/readiness.ts';
import { createEmailQueue, type EmailQueue } from '../queue/email-queue.ts';
import { createRedis, type Redis } from '../redis/redis.ts';
import { PasswordService } from '../users/password.service.ts';
import { UserService } from '../users/user.service.ts';
import { WebhookService } from '../webhooks/webhook.service.ts';

/** The part of the configuration the use cases read. */
export type BankConfig = Pick<
  Config,
  | 'REDIS_URL'
  | 'LEDGER_BATCH_MAX_SIZE'
  | 'LEDGER_QUEUE_LIMIT'
  | 'DEPOSIT_MAX_AMOUNT'
  | 'DEPOSIT_DAILY_LIMIT'
  | 'OUTGOING_DAILY_LIMIT'
  | 'REDIS_KEY_PREFIX'
  | 'EMAIL_QUEUE_NAME'
  | 'PASETO_SECRET_KEY'
  | 'PASETO_PUBLIC_KEYS'
  | 'BCRYPT_COST'
  | 'BCRYPT_CONCURRENCY'
  | 'SESSION_CACHE_TTL_MS'
  | 'LOGIN_RATE_LIMIT_MAX'
  | 'LOGIN_RATE_LIMIT_WINDOW_SECONDS'
  | 'LOGIN_EMAIL_RATE_LIMIT_MAX'
  | 'LOGIN_DELAY_MAX_MS'
  | 'EMAIL_JOB_ATTEMPTS'
  | 'EMAIL_JOB_BACKOFF_MS'
  | 'ACCESS_TOKEN_TTL_SECONDS'
  | 'REFRESH_TOKEN_TTL_SECONDS'
  | 'SESSION_MAX_AGE_SECONDS'
  | 'LOGIN_TOKEN_TTL_SECONDS'
  | 'TOKEN_AUDIENCE'
  | 'SIGNUP_RATE_LIMIT_PER_ADDRESS'
  | 'SIGNUP_RATE_LIMIT_GLOBAL'
  | 'PASSWORD_RESET_TTL_SECONDS'
  | 'PASSWORD_RESET_RATE_LIMIT_PER_EMAIL'
  | 'PASSWORD_RESET_RATE_LIMIT_PER_ADDRESS'
  | 'NODE_ENV'
  | 'WEBHOOK_ALLOW_PRIVATE_TARGETS'
  | 'WEBHOOK_MAX_PER_USER'
>;

/** Everything an edge process serves, built once. */
export type Bank = {
  ledger: LedgerService;
  /** The audit trail, for bankers. */
  audit: AuditService;
  users: UserService;
  /** Password change and reset. */
  passwords: PasswordService;
  sessions: SessionService;
  /** Webhook registration and delivery logs (the worker delivers). */
  webhooks: WebhookService;
  tokens: TokenMaker;
  outbox: OutboxPublisher;
  queue: EmailQueue;
  redis: Redis;
  /** The session-liveness cache and the revocation channel every process listens to. */
  sessionLiveness: SessionLiveness;
  /** PostgreSQL and Redis reachable (what /readyz and grpc.health.v1 report). */
  readiness: ReadinessProbe;
  /** Closes the Redis connections and the queue it opened; the pool belongs to the caller. Idempotent. */
  close(): Promise<void>;
};

/**
 * Wires the ledger and identity use cases over the caller's pool: one Redis client (rate limits,
 * publishing session revocations), one BullMQ producer (emails), one Redis subscriber (session
 * revocations from every process; only with SESSION_CACHE_TTL_MS > 0), the token maker from the
 * PASETO keys, and the dummy bcrypt hash of unknown-user logins (one hash, at start-up). With a
 * registry, pool and money-movement metrics are registered on it.
 * @throws when the PASETO keys in the config are invalid
 */
export async function createBank(
  config: BankConfig,
  deps: { pool: DatabasePool; logger: Logger; registry?: Registry; /** bcrypt itself unless a test counts its calls. */ bcrypt?: BcryptEngine },
): Promise<Bank> {
  const { pool, logger, registry } = deps;
  const tokens = await TokenMaker.fromConfig(config);
  const redis = createRedis(config.REDIS_URL);
  const queueRedis = createRedis(config.REDIS_URL);
  const queue = createEmailQueue(queueRedis, { name: config.EMAIL_QUEUE_NAME, retries: { attempts: config.EMAIL_JOB_ATTEMPTS, backoffMs: config.EMAIL_JOB_BACKOFF_MS } });
  const outbox = new OutboxPublisher({ pool, queue, logger });
  const passwords = new PasswordHasher({ cost: config.BCRYPT_COST, concurrency: config.BCRYPT_CONCURRENCY, ...(deps.bcrypt ? { bcrypt: deps.bcrypt } : {}) });
  warnIfBcryptCanFillThePool(config.BCRYPT_CONCURRENCY, logger);
  // The unknown-user login's dummy hash, built now rather than by the first such login.
  await passwords.prepare();
  // Revocations are published even with caching off here: other processes may cache.
  const sessionLiveness = new SessionLiveness({
    ttlMs: config.SESSION_CACHE_TTL_MS,
    publish: { redis, channel: `${config.REDIS_KEY_PREFIX}sessions:revoked` },
    logger,
  });
  const revocationSubscriber = config.SESSION_CACHE_TTL_MS > 0 ? createRedis(config.REDIS_URL, { autoResubscribe: false }) : undefined;
  if (revocationSubscriber) sessionLiveness.listen(revocationSubscriber);
  const limiterPrefix = `${config.REDIS_KEY_PREFIX}ratelimit:login:`;
  const rateLimiter = new RateLimiter({
    redis,
    prefix: limiterPrefix,
    max: config.LOGIN_RATE_LIMIT_MAX,
    windowSeconds: config.LOGIN_RATE_LIMIT_WINDOW_SECONDS,
  });
  const loginEmailLimiter = new RateLimiter({
    redis,
    prefix: `${limiterPrefix}email:`,
    max: config.LOGIN_EMAIL_RATE_LIMIT_MAX,
    windowSeconds: config.LOGIN_RATE_LIMIT_WINDOW_SECONDS,
  });
  // Abuse limits of the anonymous calls that cost a bcrypt hash or send an email, per hour.
  const hourly = (name: string, max: number, guards: string) =>
    new RateLimiter({ redis, prefix: `${config.REDIS_KEY_PREFIX}ratelimit:${name}:`, max, windowSeconds: 3_600, guards });
  const signUpLimiters = {
    perAddress: hourly('signup-address', config.SIGNUP_RATE_LIMIT_PER_ADDRESS, 'sign-up'),
    global: hourly('signup-global', config.SIGNUP_RATE_LIMIT_GLOBAL, 'sign-up'),
  };
  const resetLimiters = {
    perEmail: hourly('reset-email', config.PASSWORD_RESET_RATE_LIMIT_PER_EMAIL, 'password reset'),
    perAddress: hourly('reset-address', config.PASSWORD_RESET_RATE_LIMIT_PER_ADDRESS, 'password reset'),
  };
  if (registry) registerPoolMetrics(registry, pool);
  const observer = registry ? createLedgerMetrics(registry) : undefined;
  let closed: Promise<void> | undefined;
  return {
    ledger: new LedgerService({
      pool,
      maxBatchSize: config.LEDGER_BATCH_MAX_SIZE,
      queueLimit: config.LEDGER_QUEUE_LIMIT,
      limits: {
        depositMaxAmount: config.DEPOSIT_MAX_AMOUNT,
        depositDailyLimit: config.DEPOSIT_DAILY_LIMIT,
        outgoingDailyLimit: config.OUTGOING_DAILY_LIMIT,
      },
      ...(observer ? { observer } : {}),
    }),
    audit: new AuditService({ pool }),
    users: new UserService({ pool, passwords, outbox, rateLimiter, sessionRevocations: sessionLiveness, signUpLimiters }),
    passwords: new PasswordService({
      pool,
      passwords,
      outbox,
      rateLimiter,
      resetLimiters,
      resetTtlSeconds: config.PASSWORD_RESET_TTL_SECONDS,
      sessionRevocations: sessionLiveness,
    }),
    sessions: new SessionService({
      pool,
      passwords,
      tokens,
      outbox,
      rateLimiter,
      loginEmailLimiter,
      config,
      logger,
      liveness: sessionLiveness,
      loginDelayMaxMs: config.LOGIN_DELAY_MAX_MS,
    }),
    webhooks: new WebhookService({
      pool,
      policy: { requireHttps: config.NODE_ENV === 'production', allowPrivateTargets: config.WEBHOOK_ALLOW_PRIVATE_TARGETS },
      limits: { maxPerUser: config.WEBHOOK_MAX_PER_USER },
    }),
    tokens,
    outbox,
    queue,
    redis,
    sessionLiveness,
    // A probe is never shed and goes first: a process busy serving is still a ready one.
    readiness: storesReadiness({ database: priorityLane(pool), redis }, logger),
    close() {
      closed ??= (async () => {
        await queue.close().catch(() => undefined);
        queueRedis.disconnect();
        revocationSubscriber?.disconnect();
        redis.disconnect();
      })();
      return closed;
    },
  };
}

/**
 * UV_THREADPOOL_SIZE is read once, when libuv starts its pool, so it can only be set from outside
 * (the Dockerfile, the manifests, `npm start`). Say so when bcrypt alone could occupy every thread.
 */
function warnIfBcryptCanFillThePool(concurrency: number, logger: Logger): void {
  const poolSize = Number(process.env.UV_THREADPOOL_SIZE) || 4;
  if (concurrency >= poolSize) {
    logger.warn({ BCRYPT_CONCURRENCY: concurrency, UV_THREADPOOL_SIZE: poolSize }, 'BCRYPT_CONCURRENCY leaves no libuv thread-pool thread free during a login burst; raise UV_THREADPOOL_SIZE or lower BCRYPT_CONCURRENCY');
  }
}
