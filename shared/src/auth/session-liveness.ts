import { z } from 'zod';
import type { Logger } from '../logging/logger.ts';
import type { Redis } from '../redis/redis.ts';
import type { Role } from './actor.ts';
import type { SessionWithRole } from './session.types.ts';

/** What a use case that ends sessions tells once its change is committed. */
export type SessionRevocations = {
  /** Drops the sessions from every process's liveness cache; never throws. */
  revoked(sessionIds: readonly string[]): Promise<void>;
};

/** Taken before reading a session row, handed to `remember` with the row. */
export type SessionReadTicket = { readonly generation: number; readonly startedAt: number };

export type SessionLivenessOptions = {
  /** SESSION_CACHE_TTL_MS: how long a session seen active is trusted without reading it again; 0 turns caching off. */
  ttlMs: number;
  /** Sessions remembered at most (the oldest go first); default 100,000. */
  maxEntries?: number;
  /** Where revocations are published: the process's ordinary Redis client and the channel name. */
  publish?: { redis: Redis; channel: string };
  logger?: Logger;
  /** Clock (ms since the epoch) for tests. */
  now?: () => number;
};

const DEFAULT_MAX_ENTRIES = 100_000;
const revokedMessage = z.array(z.string().uuid()).max(100_000);

type Entry = { readonly username: string; readonly role: Role; readonly trustedUntil: number };

/**
 * The per-process session-liveness cache that lets authentication skip its database read, and
 * the Redis pub/sub channel that tells every process when a session ends. Each entry keeps the
 * user's role as that read found it: authorization uses it, never the role inside the token, so
 * a role changed in the database applies within the same bound.
 *
 * The bound: once a session is revoked (logout, refresh-token reuse, password change), or its
 * `expiresAt` passes, a request with one of its access tokens is refused
 * - in the process that revoked it: at once (`revoked` drops it here before publishing);
 * - in every other process: as soon as the published id arrives (one Redis round trip), and in any
 *   case within SESSION_CACHE_TTL_MS of the revocation: no entry is trusted longer than that after
 *   the read that filled it began, nor past the session's `expiresAt`.
 * A process trusts its cache only while its subscription is up: when the subscriber connection
 * drops, the cache is emptied and every call reads the session (as with caching off) until it has
 * subscribed again. So a lost message cannot outlive the TTL, and an outage of Redis never
 * stretches it. A read that started before a revocation arrived is used for its own request but
 * not remembered, so a revocation cannot be overwritten by a stale answer in flight.
 */
export class SessionLiveness implements SessionRevocations {
  readonly ttlMs: number;
  readonly #maxEntries: number;
  readonly #publish: SessionLivenessOptions['publish'];
  readonly #logger: Logger | undefined;
  readonly #now: () => number;
  readonly #entries = new Map<string, Entry>();
  /** Bumped by every drop: a read that began before it must not be remembered. */
  #generation = 0;
  /** 'off' when no subscriber was given (the TTL alone bounds staleness, e.g. in tests). */
  #subscription: 'off' | 'down' | 'up' = 'off';

  /** @throws RangeError when ttlMs is negative or not an integer */
  constructor(options: SessionLivenessOptions) {
    if (!Number.isInteger(options.ttlMs) || options.ttlMs < 0) throw new RangeError(`SESSION_CACHE_TTL_MS must be a non-negative integer (got ${options.ttlMs})`);
    this.ttlMs = options.ttlMs;
    this.#maxEntries = Math.max(1, options.maxEntries ?? DEFAULT_MAX_ENTRIES);
    this.#publish = options.publish;
    this.#logger = options.logger;
    this.#now = options.now ?? Date.now;
  }

  /** Sessions remembered now. */
  get size(): number {
    return this.#entries.size;
  }

  /** True while the subscription to revocations is up (false when caching is off or none was set up). */
  get listening(): boolean {
    return this.#subscription === 'up';
  }

  get #caching(): boolean {
    return this.ttlMs > 0 && this.#subscription !== 'down';
  }

  /** True when the session was seen active for this user recently enough to skip reading it. */
  isTrusted(sessionId: string, username: string): boolean {
    return this.trustedRole(sessionId, username) !== undefined;
  }

  /**
   * The user's role as read with the session, when the session was seen active for this user
   * recently enough to skip reading it; undefined when it must be read.
   */
  trustedRole(sessionId: string, username: string): Role | undefined {
    if (!this.#caching) return undefined;
    const entry = this.#entries.get(sessionId);
    if (!entry) return undefined;
    if (this.#now() >= entry.trustedUntil) {
      this.#entries.delete(sessionId);
      return undefined;
    }
    return entry.username === username ? entry.role : undefined;
  }

  /** Marks the start of a session read; pass the ticket to `remember` with the row read. */
  beginRead(): SessionReadTicket {
    return { generation: this.#generation, startedAt: this.#now() };
  }

  /**
   * Remembers an active session until ttlMs after its read began, never past its expiresAt, unless
   * a revocation arrived while it was being read.
   */
  remember(session: SessionWithRole, ticket: SessionReadTicket): void {
    if (!this.#caching || session.status !== 'active' || ticket.generation !== this.#generation) return;
    const trustedUntil = Math.min(ticket.startedAt + this.ttlMs, session.expiresAt.getTime());
    if (trustedUntil <= this.#now()) return;
    this.#entries.delete(session.id);
    if (this.#entries.size >= this.#maxEntries) {
      const oldest = this.#entries.keys().next();
      if (!oldest.done) this.#entries.delete(oldest.value);
    }
    this.#entries.set(session.id, { username: session.username, role: session.role, trustedUntil });
  }

  /** Drops sessions from this process's cache only. */
  forget(sessionIds: readonly string[]): void {
    for (const id of sessionIds) this.#entries.delete(id);
    this.#generation += 1;
  }

  /** Drops every session from this process's cache. */
  clear(): void {
    this.#entries.clear();
    this.#generation += 1;
  }

  /**
   * Drops the sessions here at once, then publishes their ids to every process. A failed publish
   * (Redis down) is logged, not thrown: the revocation is committed and the other processes stop
   * trusting their copies within the TTL.
   */
  async revoked(sessionIds: readonly string[]): Promise<void> {
    if (sessionIds.length === 0) return;
    this.forget(sessionIds);
    if (!this.#publish) return;
    try {
      await this.#publish.redis.publish(this.#publish.channel, JSON.stringify(sessionIds));
    } catch (error) {
      this.#logger?.warn({ err: error, sessions: sessionIds.length }, 'could not publish session revocations; other processes honour them within SESSION_CACHE_TTL_MS');
    }
  }

  /**
   * Subscribes `subscriber` (a connection of its own: subscriber mode allows no other command) to
   * the revocation channel, now and after every reconnect, and drops every id published there.
   * Created with `autoResubscribe: false`: the cache must be emptied when the subscription comes
   * back (messages sent meanwhile were lost), so this code subscribes itself.
   */
  listen(subscriber: Redis): void {
    if (!this.#publish) throw new Error('SessionLiveness.listen needs the publish channel');
    const { channel } = this.#publish;
    this.#subscription = 'down';
    const subscribe = () => {
      subscriber.subscribe(channel).then(
        () => {
          // The connection may have dropped again while the reply was on its way.
          if (subscriber.status !== 'ready') return;
          this.clear();
          this.#subscription = 'up';
        },
        (error: unknown) => this.#logger?.warn({ err: error }, 'could not subscribe to session revocations; sessions are read on every call until it works'),
      );
    };
    subscriber.on('ready', subscribe);
    subscriber.on('close', () => {
      this.#subscription = 'down';
      this.clear();
    });
    subscriber.on('message', (from: string, message: string) => {
      if (from !== channel) return;
      const ids = parseRevoked(message);
      if (ids) this.forget(ids);
      else {
        this.#logger?.warn('unreadable message on the session revocation channel; dropping every cached session');
        this.clear();
      }
    });
    if (subscriber.status === 'ready') subscribe();
  }
}

function parseRevoked(message: string): string[] | undefined {
  try {
    const parsed = revokedMessage.safeParse(JSON.parse(message));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}
