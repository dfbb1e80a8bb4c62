import type { Registry } from 'prom-client';
import { sql } from 'slonik';
import { z } from 'zod';
import { createIdentity, type Identity } from '../auth/identity.ts';
import type { SessionService } from '../auth/session.service.ts';
import type { Config } from '../config/config.ts';
import { createDatabasePool, type DatabasePool } from '../db/pool.ts';
import { LedgerService } from '../ledger/ledger.service.ts';
import { createLogger, type Logger } from '../logging/logger.ts';
import { createLedgerMetrics, registerPoolMetrics } from '../observability/metrics.ts';
import type { Redis } from '../redis/redis.ts';
import type { UserService } from '../users/user.service.ts';

export type ContainerOverrides = {
  /** Use this pool instead of opening one from DATABASE_URL; the caller keeps owning it. */
  pool?: DatabasePool;
  logger?: Logger;
  /** When given, pool and ledger metrics are registered on it. */
  registry?: Registry;
  /** Test isolation on the shared Redis: the email queue name and the rate-limit key prefix. */
  queueName?: string;
  rateLimitPrefix?: string;
};

export type Readiness = { ready: boolean; checks: { database: string; redis: string } };

/** Everything an edge process needs, built once from the config. */
export type Container = {
  config: Config;
  logger: Logger;
  pool: DatabasePool;
  redis: Redis;
  ledger: LedgerService;
  users: UserService;
  sessions: SessionService;
  identity: Identity;
  /** Database and Redis reachable (what /readyz and grpc.health.v1 report). */
  checkReadiness(timeoutMs?: number): Promise<Readiness>;
  /** Closes Redis, the queue and (when the container opened it) the pool. Idempotent. */
  close(): Promise<void>;
};

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/**
 * The composition root both edges use: database pool, Redis, and the ledger and identity use
 * cases. The HTTP gateway and the gRPC server differ only in how they speak to clients.
 */
export async function createContainer(config: Config, overrides: ContainerOverrides = {}): Promise<Container> {
  const logger = overrides.logger ?? createLogger({ name: 'bank', level: config.LOG_LEVEL });
  const ownsPool = overrides.pool === undefined;
  const pool = overrides.pool ?? (await createDatabasePool(config.DATABASE_URL, { maximumPoolSize: config.DATABASE_POOL_SIZE }));
  const identity = await createIdentity({
    config,
    pool,
    logger,
    ...(overrides.queueName ? { queueName: overrides.queueName } : {}),
    ...(overrides.rateLimitPrefix ? { rateLimitPrefix: overrides.rateLimitPrefix } : {}),
  });
  const observer = overrides.registry ? createLedgerMetrics(overrides.registry) : undefined;
  if (overrides.registry) registerPoolMetrics(overrides.registry, pool);
  const ledger = new LedgerService({ pool, ...(observer ? { observer } : {}) });
  let closed: Promise<void> | undefined;

  return {
    config,
    logger,
    pool,
    redis: identity.redis,
    ledger,
    users: identity.users,
    sessions: identity.sessions,
    identity,
    async checkReadiness(timeoutMs = 2_000) {
      const [database, redis] = await Promise.all([
        withTimeout(pool.oneFirst(sql.type(z.object({ ok: z.number() }))`SELECT 1 AS ok`), timeoutMs).then(
          () => 'ok',
          (error: unknown) => (logger.warn({ err: (error as Error).message }, 'readiness: database unreachable'), 'unreachable'),
        ),
        withTimeout(identity.redis.ping(), timeoutMs).then(
          () => 'ok',
          (error: unknown) => (logger.warn({ err: (error as Error).message }, 'readiness: redis unreachable'), 'unreachable'),
        ),
      ]);
      return { ready: database === 'ok' && redis === 'ok', checks: { database, redis } };
    },
    close() {
      closed ??= (async () => {
        await identity.close();
        if (ownsPool) await pool.end();
      })();
      return closed;
    },
  };
}
