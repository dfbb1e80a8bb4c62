import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from '@jest/globals';
import { TEST_REDIS_URL } from '../../../test/services.ts';
import { RateLimited, Unavailable } from '../errors/domain-error.ts';
import { createRedis } from '../redis/redis.ts';
import { RateLimiter } from './rate-limiter.ts';

const redis = createRedis(TEST_REDIS_URL);
const prefix = `test:${randomBytes(4).toString('hex')}:rl:`;

afterAll(async () => {
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length > 0) await redis.del(...keys);
  await redis.quit();
});

describe('RateLimiter (real Redis)', () => {
  it('refuses once any key reached the limit, with the seconds left in its window', async () => {
    const limiter = new RateLimiter({ redis, prefix, max: 2, windowSeconds: 30 });
    await limiter.consume(['user:a', 'ip:1']);
    await limiter.consume(['user:a']);
    const error = await limiter.consume(['user:b', 'ip:1', 'user:a']).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RateLimited);
    expect((error as RateLimited).retryAfterSeconds).toBeGreaterThan(28);
    expect((error as RateLimited).retryAfterSeconds).toBeLessThanOrEqual(30);
    await limiter.consume(['user:b', 'ip:1']);
    await limiter.refund(['user:a']);
    await limiter.consume(['user:a']);
  });

  it('consume is atomic: of 50 concurrent attempts with a limit of 5, exactly 5 pass; refund gives one back', async () => {
    const limiter = new RateLimiter({ redis, prefix, max: 5, windowSeconds: 30 });
    const results = await Promise.allSettled(Array.from({ length: 50 }, () => limiter.consume(['user:c', 'ip:3'])));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(5);
    const refused = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => r.reason as unknown);
    expect(refused.every((error) => error instanceof RateLimited && error.retryAfterSeconds > 28)).toBe(true);
    expect(await redis.get(`${prefix}user:c`)).toBe('5');
    await limiter.refund(['user:c', 'ip:3']);
    await limiter.consume(['user:c']);
    await expect(limiter.consume(['user:c'])).rejects.toBeInstanceOf(RateLimited);
    // A refund never creates a key (nor a negative count without an expiry).
    await limiter.refund(['user:never-seen']);
    expect(await redis.exists(`${prefix}user:never-seen`)).toBe(0);
  });

  it('fails closed (Unavailable) when Redis cannot answer', async () => {
    const dead = createRedis('redis://127.0.0.1:1', { connectTimeoutMs: 200 });
    try {
      const limiter = new RateLimiter({ redis: dead, prefix, max: 2, windowSeconds: 30 });
      await expect(limiter.consume(['user:a'])).rejects.toBeInstanceOf(Unavailable);
    } finally {
      dead.disconnect();
    }
  });
});
