import { Redis, type RedisOptions } from 'ioredis';

export type { Redis } from 'ioredis';

/**
 * The one way every process opens Redis. `purpose: 'worker'` gives the settings a BullMQ Worker
 * needs (commands wait for a reconnect instead of failing); `'client'` (the default) fails
 * commands fast when Redis is down, so a request never hangs on an unreachable Redis.
 */
export function createRedis(url: string, options: { purpose?: 'client' | 'worker'; connectTimeoutMs?: number } & RedisOptions = {}): Redis {
  const { purpose = 'client', connectTimeoutMs = 2_000, ...rest } = options;
  const base: RedisOptions =
    purpose === 'worker'
      ? { maxRetriesPerRequest: null, enableReadyCheck: true }
      : { maxRetriesPerRequest: 1 };
  const redis = new Redis(url, {
    connectTimeout: connectTimeoutMs,
    retryStrategy: (times) => Math.min(times * 200, 2_000),
    lazyConnect: false,
    ...base,
    ...rest,
  });
  // Without a listener, a connection error would be an unhandled 'error' event and kill the process;
  // ioredis keeps reconnecting by itself and commands report the failure to their callers.
  redis.on('error', () => undefined);
  return redis;
}
