import { sql, type CommonQueryMethods } from 'slonik';
import { z } from 'zod';
import type { Logger } from '../logging/logger.ts';
import type { Redis } from '../redis/redis.ts';
import { withTimeout } from './with-timeout.ts';

const okRow = z.object({ ok: z.number() });

/** What /readyz and grpc.health.v1 report: every dependency `ok`, or which one is `unreachable`. */
export type Readiness = { ready: boolean; checks: Record<string, 'ok' | 'unreachable'> };

export type ReadinessProbe = (timeoutMs?: number) => Promise<Readiness>;

/**
 * A probe of the stores a process needs (PostgreSQL and Redis for every service). Each check is
 * bounded by the timeout, so a hung store makes the process unready instead of hanging the probe.
 */
export function storesReadiness(stores: { database: CommonQueryMethods; redis: Pick<Redis, 'ping'> }, logger?: Logger): ReadinessProbe {
  const checks: Record<string, () => Promise<unknown>> = {
    database: () => stores.database.oneFirst(sql.type(okRow)`SELECT 1 AS ok`),
    redis: () => stores.redis.ping(),
  };
  return async (timeoutMs = 2_000) => {
    const results = await Promise.all(
      Object.entries(checks).map(([name, check]) =>
        withTimeout(check(), timeoutMs, `${name} check`).then(
          () => [name, 'ok'] as const,
          (error: unknown) => {
            logger?.warn({ err: (error as Error).message }, `readiness: ${name} unreachable`);
            return [name, 'unreachable'] as const;
          },
        ),
      ),
    );
    return { ready: results.every(([, state]) => state === 'ok'), checks: Object.fromEntries(results) };
  };
}
