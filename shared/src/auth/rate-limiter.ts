import type { Redis } from 'ioredis';
import { RateLimited, Unavailable } from '../errors/domain-error.ts';

/**
 * Fixed-window failure counter in Redis. Callers `check` the keys before an attempt and `hit` them
 * after a failed one; once a key has `max` failures in its window, `check` throws RateLimited
 * with the seconds left in that window. Keys are namespaced by `prefix` (tests use a unique one).
 * When Redis cannot answer, `check` throws Unavailable: login fails closed rather than unguarded.
 */
export class RateLimiter {
  readonly #redis: Redis;
  readonly #prefix: string;
  readonly max: number;
  readonly windowSeconds: number;

  constructor(options: { redis: Redis; prefix?: string; max: number; windowSeconds: number }) {
    this.#redis = options.redis;
    this.#prefix = options.prefix ?? 'bank:ratelimit:';
    this.max = options.max;
    this.windowSeconds = options.windowSeconds;
  }

  #key(key: string): string {
    return `${this.#prefix}${key}`;
  }

  /** Throws RateLimited when any key is at its limit (the longest remaining window wins). */
  async check(keys: readonly string[]): Promise<void> {
    let worst = 0;
    try {
      const pipeline = this.#redis.pipeline();
      for (const key of keys) pipeline.get(this.#key(key)).pttl(this.#key(key));
      const results = (await pipeline.exec()) ?? [];
      for (let i = 0; i < keys.length; i += 1) {
        const [countError, count] = results[2 * i] ?? [];
        const [ttlError, ttl] = results[2 * i + 1] ?? [];
        if (countError || ttlError) throw countError ?? ttlError;
        if (Number(count ?? 0) >= this.max) worst = Math.max(worst, Number(ttl) > 0 ? Number(ttl) / 1000 : this.windowSeconds);
      }
    } catch (error) {
      throw new Unavailable('login is temporarily unavailable', { cause: error });
    }
    if (worst > 0) throw new RateLimited(worst);
  }

  /** Counts one failure against every key; the window starts at a key's first failure. */
  async hit(keys: readonly string[]): Promise<void> {
    const pipeline = this.#redis.multi();
    for (const key of keys) pipeline.incr(this.#key(key)).expire(this.#key(key), this.windowSeconds, 'NX');
    await pipeline.exec();
  }

  async reset(keys: readonly string[]): Promise<void> {
    if (keys.length > 0) await this.#redis.del(...keys.map((key) => this.#key(key)));
  }
}
