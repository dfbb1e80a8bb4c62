import { randomUUID } from 'node:crypto';
import { sql, type CommonQueryMethods } from 'slonik';
import { z } from 'zod';
import { countRow } from '../db/rows.ts';

const outboxIdRow = z.object({ id: z.string().uuid(), kind: z.string() });
const ageRow = z.object({ seconds: z.number() });

export const OUTBOX_STATUSES = ['pending', 'enqueued', 'sent', 'failed'] as const;

export type OutboxStatus = (typeof OUTBOX_STATUSES)[number];

/** A message waiting for (or done with) delivery by the worker. */
export type OutboxMessage = {
  readonly id: string;
  /** The job name it is delivered by (e.g. send-login-email). */
  readonly kind: string;
  /** As stored: the worker validates it against the job's schema before use. */
  readonly payload: unknown;
  readonly status: OutboxStatus;
  readonly attempts: number;
  readonly lastError: string | null;
  readonly createdAt: Date;
  readonly enqueuedAt: Date | null;
  readonly sentAt: Date | null;
};

const outboxRow = z.object({
  id: z.string().uuid(),
  kind: z.string(),
  payload: z.unknown(),
  status: z.enum(OUTBOX_STATUSES),
  attempts: z.number().int(),
  last_error: z.string().nullable(),
  created_at: z.date(),
  enqueued_at: z.date().nullable(),
  sent_at: z.date().nullable(),
});

const toOutboxMessage = (row: z.infer<typeof outboxRow>): OutboxMessage => ({
  id: row.id,
  kind: row.kind,
  payload: row.payload,
  status: row.status,
  attempts: row.attempts,
  lastError: row.last_error,
  createdAt: row.created_at,
  enqueuedAt: row.enqueued_at,
  sentAt: row.sent_at,
});

const idRow = z.object({ id: z.string().uuid() });

/**
 * The transactional outbox. Every method takes the connection first; `insert` runs on the
 * caller's transaction, so the message exists if and only if the change that asked for it
 * committed. Returns domain types. Throws only Slonik/PostgreSQL errors.
 */
export const outboxRepository = {
  /** Adds a pending message in the caller's transaction; returns its id (also the BullMQ job id). */
  async insert(db: CommonQueryMethods, message: { kind: string; payload: Record<string, unknown> }): Promise<string> {
    const id = randomUUID();
    await db.query(sql.unsafe`INSERT INTO outbox (id, kind, payload) VALUES (${id}, ${message.kind}, ${sql.jsonb(message.payload as never)})`);
    return id;
  },

  /**
   * Adds pending messages in the caller's transaction, in one statement; returns their ids in the
   * order given (a notifier round writes up to a batch of emails at once).
   */
  async insertMany(db: CommonQueryMethods, messages: readonly { kind: string; payload: Record<string, unknown> }[]): Promise<string[]> {
    if (messages.length === 0) return [];
    const ids = messages.map(() => randomUUID());
    await db.query(sql.unsafe`
      INSERT INTO outbox (id, kind, payload)
      SELECT * FROM unnest(${sql.array(ids, 'uuid')}, ${sql.array(
        messages.map((m) => m.kind),
        'text',
      )}, ${sql.array(
        messages.map((m) => JSON.stringify(m.payload)),
        'jsonb',
      )})`);
    return ids;
  },

  /** The rows of `ids` that exist, in one statement (in no particular order). */
  async findByIds(db: CommonQueryMethods, ids: readonly string[]): Promise<OutboxMessage[]> {
    if (ids.length === 0) return [];
    const rows = await db.any(sql.type(outboxRow)`SELECT * FROM outbox WHERE id = ANY(${sql.array(ids, 'uuid')})`);
    return rows.map(toOutboxMessage);
  },

  /** Pending rows moved to enqueued once the queue accepted their jobs. */
  async markEnqueued(db: CommonQueryMethods, ids: readonly string[]): Promise<void> {
    if (ids.length === 0) return;
    await db.query(sql.unsafe`
      UPDATE outbox SET status = 'enqueued', enqueued_at = now()
      WHERE id = ANY(${sql.array(ids, 'uuid')}) AND status = 'pending'`);
  },

  /**
   * Pending rows older than `pendingAfterMs`, oldest first: the sweep hands them to the queue (the
   * use case normally enqueues them itself right after commit; these it missed).
   */
  async findSweepable(db: CommonQueryMethods, options: { pendingAfterMs: number; limit: number }): Promise<readonly { id: string; kind: string }[]> {
    return db.any(sql.type(outboxIdRow)`
      SELECT id, kind FROM outbox
      WHERE status = 'pending' AND created_at < now() - make_interval(secs => ${options.pendingAfterMs / 1000})
      ORDER BY created_at LIMIT ${options.limit}`);
  },

  /**
   * Up to `limit` enqueued-but-unsent rows with an id greater than `afterId` (all of them from the
   * start without it), in id order, so a caller can page through every one of them in turn.
   */
  async findEnqueued(db: CommonQueryMethods, options: { afterId?: string; limit: number }): Promise<readonly { id: string; kind: string }[]> {
    const after = options.afterId === undefined ? sql.fragment`` : sql.fragment`AND id > ${options.afterId}`;
    return db.any(sql.type(outboxIdRow)`
      SELECT id, kind FROM outbox WHERE status = 'enqueued' ${after} ORDER BY id LIMIT ${options.limit}`);
  },

  /** Records one delivery attempt (and its error, if any) without changing the status. */
  async recordAttempt(db: CommonQueryMethods, id: string, error: string | null): Promise<void> {
    await db.query(sql.unsafe`UPDATE outbox SET attempts = attempts + 1, last_error = ${error} WHERE id = ${id}`);
  },

  /**
   * Marks rows sent and strips their secret payload fields, in one statement (the worker marks the
   * emails that finish together at once); the answer says, in the order given, which were marked
   * (false: already sent, or no such row). Rows are locked in id order, so two of these never deadlock.
   */
  async markSentMany(db: CommonQueryMethods, ids: readonly string[], secretFields: readonly string[]): Promise<boolean[]> {
    if (ids.length === 0) return [];
    const marked = await db.anyFirst(sql.type(idRow)`
      UPDATE outbox o SET status = 'sent', sent_at = now(), last_error = NULL,
        payload = ${withoutSecrets(secretFields)}
      FROM (SELECT id FROM outbox WHERE id = ANY(${sql.array(ids, 'uuid')}) AND status <> 'sent' ORDER BY id FOR UPDATE) locked
      WHERE o.id = locked.id AND o.status <> 'sent'
      RETURNING o.id`);
    const done = new Set(marked);
    return ids.map((id) => done.has(id));
  },

  /**
   * A message that will never be sent (bad payload, expired, retries exhausted); it stays for
   * operators, without its secrets: a failed row's token or code is of no use to anyone but a thief.
   */
  async markFailed(db: CommonQueryMethods, id: string, error: string, secretFields: readonly string[]): Promise<void> {
    await db.query(sql.unsafe`
      UPDATE outbox SET status = 'failed', last_error = ${error}, payload = ${withoutSecrets(secretFields)}
      WHERE id = ${id} AND status <> 'sent'`);
  },

  async countPending(db: CommonQueryMethods): Promise<number> {
    return db.oneFirst(sql.type(countRow)`SELECT count(*)::int AS n FROM outbox WHERE status IN ('pending', 'enqueued')`);
  },

  /** Seconds since the oldest row not yet sent (pending or enqueued) was written; 0 when there is none. */
  async oldestUnsentAgeSeconds(db: CommonQueryMethods): Promise<number> {
    return db.oneFirst(sql.type(ageRow)`
      SELECT coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8 AS seconds FROM outbox WHERE status IN ('pending', 'enqueued')`);
  },
};

/** The payload minus the named fields; a payload that is not an object (a bad one) stays as it is. */
function withoutSecrets(secretFields: readonly string[]) {
  return sql.fragment`CASE WHEN jsonb_typeof(payload) = 'object' THEN payload - ${sql.array(secretFields, 'text')} ELSE payload END`;
}
