import { isIPv4, isIPv6 } from 'node:net';
import type { Redis } from 'ioredis';
import { RateLimited, Unavailable } from '../errors/domain-error.ts';

// Takes one attempt from every key, or none when any key is at its limit (then answers the
// milliseconds left in the longest such window). One script, so concurrent callers cannot all
// pass a check before any of them counts.
const CONSUME_SCRIPT = `
local max = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local worst = 0
for _, key in ipairs(KEYS) do
  if tonumber(redis.call('GET', key) or '0') >= max then
    local ttl = redis.call('PTTL', key)
    if ttl < 0 then ttl = window * 1000 end
    if ttl > worst then worst = ttl end
  end
end
if worst > 0 then return worst end
for _, key in ipairs(KEYS) do
  redis.call('INCR', key)
  redis.call('EXPIRE', key, window, 'NX')
end
return 0`;

// Gives an attempt back to keys whose window is still open (never creates a key).
const REFUND_SCRIPT = `
for _, key in ipairs(KEYS) do
  if tonumber(redis.call('GET', key) or '0') > 0 then redis.call('DECR', key) end
end
return 0`;

/**
 * Fixed-window attempt counter in Redis. Login calls `consume` before an attempt (atomic: it
 * throws RateLimited with the seconds left once a key has `max` attempts in its window) and
 * `refund` after a successful one, so only failures use up the limit. Keys are namespaced by
 * `prefix` (tests use a unique one). When Redis cannot answer, `consume` throws Unavailable: login
 * fails closed rather than unguarded.
 */
export class RateLimiter {
  readonly #redis: Redis;
  readonly #prefix: string;
  readonly max: number;
  readonly windowSeconds: number;
  /** What the Unavailable message names when Redis cannot answer (`login` unless told). */
  readonly #guards: string;

  constructor(options: { redis: Redis; prefix?: string; max: number; windowSeconds: number; guards?: string }) {
    this.#redis = options.redis;
    this.#prefix = options.prefix ?? 'bank:ratelimit:';
    this.max = options.max;
    this.windowSeconds = options.windowSeconds;
    this.#guards = options.guards ?? 'login';
  }

  #key(key: string): string {
    return `${this.#prefix}${key}`;
  }

  /**
   * Takes one attempt from every key atomically, or throws RateLimited (taking nothing) when any key
   * already has `max` attempts in its window. Throws Unavailable when Redis cannot answer.
   */
  async consume(keys: readonly string[]): Promise<void> {
    if (keys.length === 0) return;
    let worstMs: number;
    try {
      worstMs = Number(await this.#redis.eval(CONSUME_SCRIPT, keys.length, ...keys.map((key) => this.#key(key)), this.max, this.windowSeconds));
    } catch (error) {
      throw new Unavailable(`${this.#guards} is temporarily unavailable`, { cause: error });
    }
    if (worstMs > 0) throw new RateLimited(worstMs / 1000);
  }

  /**
   * Throws RateLimited when any key already has `max` attempts in its window, counting nothing;
   * Unavailable when Redis cannot answer.
   */
  async check(keys: readonly string[]): Promise<void> {
    if (keys.length === 0) return;
    let counts: (string | null)[];
    let ttls: number[];
    try {
      const redisKeys = keys.map((key) => this.#key(key));
      counts = await this.#redis.mget(...redisKeys);
      ttls = await Promise.all(redisKeys.map((key) => this.#redis.pttl(key)));
    } catch (error) {
      throw new Unavailable(`${this.#guards} is temporarily unavailable`, { cause: error });
    }
    const worstMs = Math.max(0, ...counts.map((count, i) => (Number(count ?? 0) >= this.max ? Math.max(ttls[i] ?? 0, 1) : 0)));
    if (worstMs > 0) throw new RateLimited(worstMs / 1000);
  }

  /** Attempts counted for `key` in its current window (0 when none). Unavailable when Redis cannot answer. */
  async count(key: string): Promise<number> {
    try {
      return Number((await this.#redis.get(this.#key(key))) ?? 0);
    } catch (error) {
      throw new Unavailable(`${this.#guards} is temporarily unavailable`, { cause: error });
    }
  }

  /** Counts one more for `key`, never refusing (a counter read by `count`). Throws Redis errors. */
  async add(key: string): Promise<void> {
    await this.#redis.multi().incr(this.#key(key)).expire(this.#key(key), this.windowSeconds, 'NX').exec();
  }

  /** Gives back the attempt `consume` took (a successful attempt does not count). Throws Redis errors. */
  async refund(keys: readonly string[]): Promise<void> {
    if (keys.length > 0) await this.#redis.eval(REFUND_SCRIPT, keys.length, ...keys.map((key) => this.#key(key)));
  }
}

/**
 * The part of a client address the per-address limit counts on. Edges pass what they have: Koa's
 * `ctx.ip` (`1.2.3.4`, `::ffff:1.2.3.4`) or a gRPC peer (`ipv4:1.2.3.4:50123`, `ipv6:[::1]:50123`).
 * The source port is new for every connection, so it must not make a new key. IPv6 counts per
 * /64, the block one subscriber gets (rotating addresses inside it must not reset the limit).
 */
export function clientAddressKey(clientIp: string): string {
  let value = clientIp.trim().toLowerCase().replace(/^ipv[46]:/, '');
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(value);
  if (bracketed?.[1] !== undefined) value = bracketed[1];
  else if (/^[\d.]+:\d+$/.test(value)) value = value.slice(0, value.lastIndexOf(':'));
  value = value.replace(/%.*$/, '');
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(value);
  if (mapped?.[1] !== undefined) value = mapped[1];
  if (isIPv4(value)) return value;
  if (isIPv6(value)) return `${ipv6Prefix64(value)}::/64`;
  return value.slice(0, 64);
}

/** The first four groups of a valid IPv6 address, expanded (`2001:db8::1` -> `2001:db8:0:0`). */
function ipv6Prefix64(address: string): string {
  let text = address;
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (v4) {
    const [a, b, c, d] = v4.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, v4.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const headGroups = head ? head.split(':') : [];
  const tailGroups = tail ? tail.split(':') : [];
  const groups = tail === undefined ? headGroups : [...headGroups, ...Array<string>(8 - headGroups.length - tailGroups.length).fill('0'), ...tailGroups];
  return groups
    .slice(0, 4)
    .map((group) => parseInt(group, 16).toString(16))
    .join(':');
}
