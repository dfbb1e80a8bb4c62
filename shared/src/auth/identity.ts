import type { DatabasePool } from 'slonik';
import type { Config } from '../config/config.ts';
import type { Logger } from '../logging/logger.ts';
import { OutboxPublisher } from '../outbox/outbox-publisher.ts';
import { createEmailQueue, type EmailQueue } from '../queue/email-queue.ts';
import { createRedis, type Redis } from '../redis/redis.ts';
import { UserService } from '../users/user.service.ts';
import { PasswordHasher } from './password.ts';
import { RateLimiter } from './rate-limiter.ts';
import { SessionService } from './session.service.ts';
import { TokenMaker } from './token-maker.ts';

export type Identity = {
  users: UserService;
  sessions: SessionService;
  tokens: TokenMaker;
  outbox: OutboxPublisher;
  redis: Redis;
  queue: EmailQueue;
  /** Closes the Redis connection and the queue it opened (not the pool, which the caller owns). */
  close: () => Promise<void>;
};

/**
 * Wires the identity use cases for an edge process (API, gRPC) from the config: one Redis client
 * (rate limits), one BullMQ queue (emails), the token maker from the PASETO keys.
 */
export async function createIdentity(options: {
  config: Config;
  pool: DatabasePool;
  logger?: Logger;
  /** Overrides for tests: queue name / Redis key prefixes, a different Redis for the queue. */
  queueName?: string;
  queueRedisUrl?: string;
  rateLimitPrefix?: string;
}): Promise<Identity> {
  const { config, pool, logger } = options;
  const tokens = await TokenMaker.fromConfig(config);
  const redis = createRedis(config.REDIS_URL);
  const queueRedis = createRedis(options.queueRedisUrl ?? config.REDIS_URL);
  const queue = createEmailQueue(queueRedis, { name: options.queueName ?? config.EMAIL_QUEUE_NAME });
  const outbox = new OutboxPublisher({ pool, queue, logger });
  const passwords = new PasswordHasher({ cost: config.BCRYPT_COST });
  const rateLimiter = new RateLimiter({
    redis,
    prefix: options.rateLimitPrefix ?? 'bank:ratelimit:login:',
    max: config.LOGIN_RATE_LIMIT_MAX,
    windowSeconds: config.LOGIN_RATE_LIMIT_WINDOW_SECONDS,
  });
  const loginEmailLimiter = new RateLimiter({
    redis,
    prefix: `${options.rateLimitPrefix ?? 'bank:ratelimit:login:'}email:`,
    max: config.LOGIN_EMAIL_RATE_LIMIT_MAX,
    windowSeconds: config.LOGIN_RATE_LIMIT_WINDOW_SECONDS,
  });
  return {
    users: new UserService({ pool, passwords, outbox, rateLimiter }),
    sessions: new SessionService({ pool, passwords, tokens, outbox, rateLimiter, loginEmailLimiter, config, logger }),
    tokens,
    outbox,
    redis,
    queue,
    close: async () => {
      await queue.close().catch(() => undefined);
      queueRedis.disconnect();
      redis.disconnect();
    },
  };
}
