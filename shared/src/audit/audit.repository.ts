import { sql, type CommonQueryMethods } from 'slonik';
import { z } from 'zod';
import { AUDIT_ACTIONS, type AuditAction, type AuditEvent } from './audit.types.ts';

const auditEventRow = z.object({
  id: z.bigint(),
  actor: z.string(),
  action: z.enum(AUDIT_ACTIONS),
  target: z.string(),
  reason: z.string().nullable(),
  created_at: z.date(),
});
type AuditEventRow = z.infer<typeof auditEventRow>;

const toAuditEvent = (row: AuditEventRow): AuditEvent => ({
  id: row.id,
  actor: row.actor,
  action: row.action,
  target: row.target,
  reason: row.reason,
  createdAt: row.created_at,
});

const columns = sql.fragment`id, actor, action, target, reason, created_at`;

/**
 * The append-only `audit_events` trail, connection first: pass the transaction of the change an
 * event records, so both commit or neither does. Throws only Slonik/PostgreSQL errors (a CHECK
 * violation for an action the table does not know yet).
 */
export const auditRepository = {
  async insert(db: CommonQueryMethods, event: { actor: string; action: AuditAction; target: string; reason: string | null }): Promise<AuditEvent> {
    const row = await db.one(sql.type(auditEventRow)`
      INSERT INTO audit_events (actor, action, target, reason)
      VALUES (${event.actor}, ${event.action}, ${event.target}, ${event.reason})
      RETURNING ${columns}`);
    return toAuditEvent(row);
  },

  /** Up to `limit` events with an id below `beforeId` (all when null), newest first. */
  async listNewestFirst(db: CommonQueryMethods, options: { beforeId: bigint | null; limit: number }): Promise<AuditEvent[]> {
    const rows = await db.any(sql.type(auditEventRow)`
      SELECT ${columns} FROM audit_events
      ${options.beforeId === null ? sql.fragment`` : sql.fragment`WHERE id < ${options.beforeId}`}
      ORDER BY id DESC
      LIMIT ${options.limit}`);
    return rows.map(toAuditEvent);
  },
};
