import { sql, type CommonQueryMethods } from 'slonik';
import { z } from 'zod';
import { EVENT_COLUMNS, EVENT_TYPES, eventRow, toEvent, type BankEvent } from '../events/events.repository.ts';
import type { Webhook, WebhookDelivery } from './webhook.types.ts';
import { bigintIdRow, countRow } from '../db/rows.ts';

const pickedCountsRow = z.object({ events: z.number(), deliveries: z.number() });

/** A delivery shows at most this many of its latest attempts. */
export const ATTEMPT_LOG_LIMIT = 20;

const webhookRow = z.object({
  id: z.bigint(),
  owner: z.string(),
  url: z.string(),
  event_types: z.array(z.enum(EVENT_TYPES)),
  all_accounts: z.boolean(),
  created_at: z.date(),
});
const toWebhook = (row: z.infer<typeof webhookRow>): Webhook => ({
  id: row.id,
  owner: row.owner,
  url: row.url,
  eventTypes: row.event_types,
  allAccounts: row.all_accounts,
  createdAt: row.created_at,
});
const WEBHOOK_COLUMNS = sql.fragment`id, owner, url, event_types, all_accounts, created_at`;

const jsonDate = z.string().transform((value) => new Date(value));
const deliveryRow = z.object({
  id: z.bigint(),
  webhook_id: z.bigint(),
  event_public_id: z.string(),
  event_type: z.enum(EVENT_TYPES),
  status: z.enum(['pending', 'delivered', 'failed']),
  attempts: z.number(),
  next_attempt_at: z.date().nullable(),
  last_status_code: z.number().nullable(),
  last_error: z.string().nullable(),
  last_attempt_at: z.date().nullable(),
  delivered_at: z.date().nullable(),
  created_at: z.date(),
  attempt_log: z.array(
    z.object({
      attempt: z.number(),
      started_at: jsonDate,
      duration_ms: z.number(),
      status_code: z.number().nullable(),
      error: z.string().nullable(),
    }),
  ),
});
const toDelivery = (row: z.infer<typeof deliveryRow>): WebhookDelivery => ({
  id: row.id,
  webhookId: row.webhook_id,
  eventId: row.event_public_id,
  eventType: row.event_type,
  status: row.status,
  attempts: row.attempts,
  nextAttemptAt: row.next_attempt_at,
  lastStatusCode: row.last_status_code,
  lastError: row.last_error,
  lastAttemptAt: row.last_attempt_at,
  deliveredAt: row.delivered_at,
  createdAt: row.created_at,
  attemptLog: row.attempt_log.map((a) => ({ attempt: a.attempt, startedAt: a.started_at, durationMs: a.duration_ms, statusCode: a.status_code, error: a.error })),
});
const DELIVERY_COLUMNS = sql.fragment`d.id, d.webhook_id, e.public_id::text AS event_public_id, e.type AS event_type, d.status, d.attempts,
  d.next_attempt_at, d.last_status_code, d.last_error, d.last_attempt_at, d.delivered_at, d.created_at,
  coalesce((SELECT json_agg(json_build_object('attempt', l.attempt, 'started_at', l.started_at, 'duration_ms', l.duration_ms,
                                              'status_code', l.status_code, 'error', l.error) ORDER BY l.id)
              FROM (SELECT * FROM webhook_delivery_attempts a WHERE a.delivery_id = d.id ORDER BY a.id DESC LIMIT ${ATTEMPT_LOG_LIMIT}) l), '[]'::json) AS attempt_log`;

/** A delivery the worker claimed: what it needs to send it and to record the result. */
export type ClaimedDelivery = {
  readonly id: bigint;
  /** Proves the claim when the result is recorded (a claim that outlived its lease records nothing). */
  readonly leaseToken: string;
  /** The number of this attempt (1 = the first ever). */
  readonly attempt: number;
  /** The number of this attempt since the delivery was last redelivered by hand: the backoff counts these. */
  readonly attemptInRound: number;
  readonly webhookId: bigint;
  readonly url: string;
  readonly signingSecret: string;
  /** The event to send, as it was written. */
  readonly event: BankEvent;
};

const claimedRow = eventRow.extend({
  delivery_id: z.bigint(),
  lease_token: z.string(),
  attempts: z.number(),
  attempts_before_redeliver: z.number(),
  webhook_id: z.bigint(),
  url: z.string(),
  signing_secret: z.string(),
});

/** How an attempt ended, as the delivery loop decided. */
export type AttemptResult = {
  readonly startedAt: Date;
  readonly durationMs: number;
  readonly statusCode: number | null;
  readonly error: string | null;
  /** delivered; retry after a wait (from the database's clock, as the lease); or failed for good. */
  readonly next: { readonly status: 'delivered' } | { readonly status: 'pending'; readonly retryInMs: number } | { readonly status: 'failed' };
};

/**
 * The webhooks, their deliveries and the attempt log (migration 0015). Every method takes the
 * connection first. Throws only Slonik/PostgreSQL errors.
 */
export const webhookRepository = {
  /** Locks the owner's row, so concurrent creates count each other (the per-user limit). */
  async lockOwner(db: CommonQueryMethods, owner: string): Promise<void> {
    await db.query(sql.unsafe`SELECT 1 FROM users WHERE username = ${owner} FOR UPDATE`);
  },

  async countByOwner(db: CommonQueryMethods, owner: string): Promise<number> {
    return db.oneFirst(sql.type(countRow)`SELECT count(*)::int AS n FROM webhooks WHERE owner = ${owner}`);
  },

  async insert(db: CommonQueryMethods, input: { owner: string; url: string; eventTypes: readonly string[]; allAccounts: boolean; signingSecret: string }): Promise<Webhook> {
    const row = await db.one(sql.type(webhookRow)`
      INSERT INTO webhooks (owner, url, event_types, all_accounts, signing_secret)
      VALUES (${input.owner}, ${input.url}, ${sql.array(input.eventTypes, 'text')}, ${input.allAccounts}, ${input.signingSecret})
      RETURNING ${WEBHOOK_COLUMNS}`);
    return toWebhook(row);
  },

  /** The owner's webhooks, oldest first. */
  async listByOwner(db: CommonQueryMethods, owner: string): Promise<Webhook[]> {
    const rows = await db.any(sql.type(webhookRow)`SELECT ${WEBHOOK_COLUMNS} FROM webhooks WHERE owner = ${owner} ORDER BY id`);
    return rows.map(toWebhook);
  },

  /** The webhook when it exists and belongs to `owner`; null otherwise (the two are not told apart). */
  async findOwned(db: CommonQueryMethods, id: bigint, owner: string): Promise<Webhook | null> {
    const row = await db.maybeOne(sql.type(webhookRow)`SELECT ${WEBHOOK_COLUMNS} FROM webhooks WHERE id = ${id} AND owner = ${owner}`);
    return row ? toWebhook(row) : null;
  },

  /** Deletes the owner's webhook with its deliveries and log; false when there was none. */
  async deleteOwned(db: CommonQueryMethods, id: bigint, owner: string): Promise<boolean> {
    const rows = await db.any(sql.type(bigintIdRow)`DELETE FROM webhooks WHERE id = ${id} AND owner = ${owner} RETURNING id`);
    return rows.length > 0;
  },

  /** Up to `limit` deliveries of the webhook with an id below `beforeId` (all when null), newest first. */
  async listDeliveries(db: CommonQueryMethods, webhookId: bigint, options: { beforeId: bigint | null; limit: number }): Promise<WebhookDelivery[]> {
    const rows = await db.any(sql.type(deliveryRow)`
      SELECT ${DELIVERY_COLUMNS}
        FROM webhook_deliveries d JOIN events e ON e.id = d.event_id
       WHERE d.webhook_id = ${webhookId} ${options.beforeId === null ? sql.fragment`` : sql.fragment`AND d.id < ${options.beforeId}`}
       ORDER BY d.id DESC
       LIMIT ${options.limit}`);
    return rows.map(toDelivery);
  },

  async findDelivery(db: CommonQueryMethods, webhookId: bigint, deliveryId: bigint): Promise<WebhookDelivery | null> {
    const row = await db.maybeOne(sql.type(deliveryRow)`
      SELECT ${DELIVERY_COLUMNS}
        FROM webhook_deliveries d JOIN events e ON e.id = d.event_id
       WHERE d.webhook_id = ${webhookId} AND d.id = ${deliveryId}`);
    return row ? toDelivery(row) : null;
  },

  /**
   * Makes the delivery due now, with a fresh round of retries; the next delivery loop sends it
   * again. A delivery being sent right now (leased, lease not run out) is left to that attempt.
   * Returns false when the webhook has no such delivery.
   */
  async redeliver(db: CommonQueryMethods, webhookId: bigint, deliveryId: bigint): Promise<boolean> {
    const rows = await db.any(sql.type(bigintIdRow)`
      UPDATE webhook_deliveries
         SET status = 'pending',
             next_attempt_at = clock_timestamp(),
             attempts_before_redeliver = attempts,
             lease_token = NULL
       WHERE webhook_id = ${webhookId} AND id = ${deliveryId}
         AND NOT (status = 'pending' AND lease_token IS NOT NULL AND next_attempt_at > clock_timestamp())
      RETURNING id`);
    if (rows.length > 0) return true;
    return (await db.maybeOne(sql.type(bigintIdRow)`SELECT id FROM webhook_deliveries WHERE webhook_id = ${webhookId} AND id = ${deliveryId}`)) !== null;
  },

  /**
   * Claims up to `limit` events the `webhooks` consumer has not handled (oldest first, FOR UPDATE
   * SKIP LOCKED), marks them done and writes one delivery per webhook that wants each, all in one
   * statement (atomic on its own; nothing is half fanned out). A webhook wants an event when its
   * type is one it asked for, it existed when the event happened, and the event touches an account
   * of its owner, or it is a banker's for all accounts (the owner's role read now). Idempotent per
   * (webhook, event). Returns how many events it claimed and deliveries it wrote.
   */
  async fanOutNext(db: CommonQueryMethods, limit: number): Promise<{ events: number; deliveries: number }> {
    return db.one(sql.type(pickedCountsRow)`
      WITH picked AS (SELECT id FROM events WHERE webhooked_at IS NULL ORDER BY id LIMIT ${limit} FOR UPDATE SKIP LOCKED),
      done AS (
        UPDATE events e SET webhooked_at = now() FROM picked WHERE e.id = picked.id
        RETURNING e.id, e.type, e.created_at, e.account_ids
      ),
      written AS (
        INSERT INTO webhook_deliveries (webhook_id, event_id)
        SELECT w.id, d.id
          FROM done d
          JOIN webhooks w ON d.type = ANY (w.event_types) AND w.created_at <= d.created_at
          JOIN users u ON u.username = w.owner
         WHERE (w.all_accounts AND u.role = 'banker')
               OR EXISTS (SELECT 1 FROM accounts a WHERE a.id = ANY (d.account_ids) AND a.owner = w.owner)
         ORDER BY d.id, w.id
        ON CONFLICT ON CONSTRAINT webhook_deliveries_once DO NOTHING
        RETURNING id
      )
      SELECT (SELECT count(*) FROM done)::int AS events, (SELECT count(*) FROM written)::int AS deliveries`);
  },

  /**
   * Up to `limit` due deliveries, oldest due first, each leased for `leaseMs`: its due time moves
   * to the lease's end and its attempt count goes up by one before anything is sent. A worker that
   * dies with it leaves it to be claimed again when the lease runs out. SKIP LOCKED: concurrent
   * workers claim different rows.
   */
  async claimDue(db: CommonQueryMethods, limit: number, leaseMs: number): Promise<ClaimedDelivery[]> {
    // The event comes with its claim (one round trip per claim, not one more per delivery); the
    // foreign key keeps it there while its delivery exists.
    const rows = await db.any(sql.type(claimedRow)`
      WITH due AS (
        SELECT id FROM webhook_deliveries
         WHERE status = 'pending' AND next_attempt_at <= clock_timestamp()
         ORDER BY next_attempt_at
         LIMIT ${limit}
         FOR UPDATE SKIP LOCKED
      ), claimed AS (
        UPDATE webhook_deliveries d
           SET attempts = d.attempts + 1,
               lease_token = gen_random_uuid(),
               next_attempt_at = clock_timestamp() + make_interval(secs => ${leaseMs / 1000})
          FROM due, webhooks w
         WHERE d.id = due.id AND w.id = d.webhook_id
        RETURNING d.id AS delivery_id, d.lease_token::text AS lease_token, d.attempts, d.attempts_before_redeliver, w.id AS webhook_id, w.url,
                  w.signing_secret, d.event_id
      )
      SELECT c.delivery_id, c.lease_token, c.attempts, c.attempts_before_redeliver, c.webhook_id, c.url, c.signing_secret, ${EVENT_COLUMNS}
        FROM claimed c JOIN events e ON e.id = c.event_id`);
    return rows.map((row) => ({
      id: row.delivery_id,
      leaseToken: row.lease_token,
      attempt: row.attempts,
      attemptInRound: row.attempts - row.attempts_before_redeliver,
      webhookId: row.webhook_id,
      url: row.url,
      signingSecret: row.signing_secret,
      event: toEvent(row),
    }));
  },

  /**
   * Records finished attempts in the log and their deliveries' new state, in one statement and
   * one commit (the delivery loop records the attempts that finish together at once). Each is
   * written only while its claim still holds its delivery (same lease token); the answer says, in
   * the order given, which were. One that was not (the lease ran out and another worker took it, a
   * redeliver, or the webhook was deleted) writes nothing.
   */
  async recordAttempts(
    db: CommonQueryMethods,
    attempts: readonly { readonly claim: Pick<ClaimedDelivery, 'id' | 'leaseToken' | 'attempt'>; readonly result: AttemptResult }[],
  ): Promise<boolean[]> {
    if (attempts.length === 0) return [];
    const column = <T>(pick: (attempt: (typeof attempts)[number]) => T): T[] => attempts.map(pick);
    const rows = await db.any(sql.type(bigintIdRow)`
      WITH input AS (
        SELECT * FROM unnest(
          ${sql.array(column((a) => a.claim.id), 'int8')},
          ${sql.array(column((a) => a.claim.leaseToken), 'uuid')},
          ${sql.array(column((a) => a.claim.attempt), 'int4')},
          ${sql.array(column((a) => a.result.next.status), 'text')},
          ${sql.array(column((a) => (a.result.next.status === 'pending' ? a.result.next.retryInMs / 1000 : null)), 'float8')},
          ${sql.array(column((a) => a.result.statusCode), 'int4')},
          ${sql.array(column((a) => a.result.error), 'text')},
          ${sql.array(column((a) => a.result.startedAt.toISOString()), 'timestamptz')},
          ${sql.array(column((a) => a.result.durationMs), 'int4')}
        ) AS i (id, lease_token, attempt, status, retry_secs, status_code, error, started_at, duration_ms)
      ),
      updated AS (
        UPDATE webhook_deliveries d
           SET status = i.status,
               next_attempt_at = CASE WHEN i.status = 'pending' THEN clock_timestamp() + make_interval(secs => i.retry_secs) END,
               lease_token = NULL,
               last_status_code = i.status_code,
               last_error = i.error,
               last_attempt_at = i.started_at,
               delivered_at = CASE WHEN i.status = 'delivered' THEN clock_timestamp() END
          FROM input i
         WHERE d.id = i.id AND d.lease_token = i.lease_token
        RETURNING d.id
      )
      INSERT INTO webhook_delivery_attempts (delivery_id, attempt, started_at, duration_ms, status_code, error)
      SELECT i.id, i.attempt, i.started_at, i.duration_ms, i.status_code, i.error FROM input i JOIN updated u ON u.id = i.id
      RETURNING delivery_id AS id`);
    const written = new Set(rows.map((row) => row.id));
    return attempts.map((a) => written.has(a.claim.id));
  },

  /** Deliveries not yet delivered or failed (the worker's gauge). */
  async countPending(db: CommonQueryMethods): Promise<number> {
    return db.oneFirst(sql.type(countRow)`SELECT count(*)::int AS n FROM webhook_deliveries WHERE status = 'pending'`);
  },
};
