import { sql, type CommonQueryMethods } from 'slonik';
import { z } from 'zod';
import { CURRENCIES } from '../ledger/currency.ts';
import type { Account, Transfer } from '../ledger/ledger.types.ts';
import { countRow } from '../db/rows.ts';

/** Every event type (migration 0013 writes them; its CHECK lists the same). */
export const EVENT_TYPES = [
  'transfer.posted',
  'transfer.pending',
  'transfer.captured',
  'transfer.voided',
  'transfer.expired',
  'transfer.reversed',
  'transfer.refunded',
  'withdrawal.created',
  'account.frozen',
  'account.unfrozen',
] as const;

export type EventType = (typeof EVENT_TYPES)[number];

/** Who reads the events table; each marks what it is done with in its own column. */
export type EventConsumer = 'notifications' | 'webhooks';

/** An account an event concerns, with its owner (null: a system account). */
export type EventAccount = { readonly id: bigint; readonly owner: string | null };

/**
 * Something that happened, as it was when it happened: `transfer` or `account` is the row at the
 * event, shaped as the API's Transfer or Account.
 */
export type BankEvent = {
  readonly id: bigint;
  /** Stable identity for the outside world (a webhook event's id). */
  readonly publicId: string;
  readonly type: EventType;
  readonly createdAt: Date;
  /** Both sides of a transfer (in from, to order) or the account itself. */
  readonly accounts: readonly EventAccount[];
} & ({ readonly subject: 'transfer'; readonly transfer: Transfer } | { readonly subject: 'account'; readonly account: Account });

// The row as to_jsonb() wrote it: bigint columns as JSON numbers (every id and amount is below
// 2^53: amounts are capped at 10^15), timestamps as ISO strings.
const jsonBigint = z.union([z.number().int(), z.string().regex(/^-?\d+$/)]).transform((v) => BigInt(v));
const jsonDate = z.string().transform((v, ctx) => {
  const date = new Date(v);
  if (Number.isNaN(date.getTime())) ctx.addIssue({ code: 'custom', message: `not a timestamp: ${v}` });
  return date;
});

const transferData = z.object({
  id: jsonBigint,
  from_account_id: jsonBigint,
  to_account_id: jsonBigint,
  amount: jsonBigint,
  currency: z.enum(CURRENCIES),
  kind: z.enum(['transfer', 'deposit', 'withdrawal', 'reversal', 'refund']),
  initiated_by: z.string(),
  created_at: jsonDate,
  status: z.enum(['posted', 'pending', 'voided', 'expired']),
  captured_amount: jsonBigint.nullable(),
  expires_at: jsonDate.nullable(),
  memo: z.string().nullable(),
  reference: z.string().nullable(),
  metadata: z.record(z.string(), z.string()).nullable(),
  destination: z.string().nullable(),
  reverses_transfer_id: jsonBigint.nullable(),
  refunds_transfer_id: jsonBigint.nullable(),
});

const accountData = z.object({
  id: jsonBigint,
  owner: z.string().nullable(),
  currency: z.enum(CURRENCIES),
  balance: jsonBigint,
  available_balance: jsonBigint,
  status: z.enum(['open', 'frozen', 'closed']),
  created_at: jsonDate,
  closed_at: jsonDate.nullable(),
});

/** An event row as EVENT_COLUMNS selects it (another query may select more columns beside them). */
export const eventRow = z.object({
  id: z.bigint(),
  public_id: z.string().uuid(),
  type: z.enum(EVENT_TYPES),
  created_at: z.date(),
  transfer_id: z.bigint().nullable(),
  data: z.unknown(),
  account_ids: z.array(z.bigint()),
  owners: z.array(z.string().nullable()),
});

export function toEvent(row: z.infer<typeof eventRow>): BankEvent {
  const base = {
    id: row.id,
    publicId: row.public_id,
    type: row.type,
    createdAt: row.created_at,
    accounts: row.account_ids.map((id, i) => ({ id, owner: row.owners[i] ?? null })),
  };
  if (row.transfer_id !== null) {
    const t = transferData.parse(row.data);
    const transfer: Transfer = {
      id: t.id,
      fromAccountId: t.from_account_id,
      toAccountId: t.to_account_id,
      amount: t.amount,
      currency: t.currency,
      kind: t.kind,
      initiatedBy: t.initiated_by,
      createdAt: t.created_at,
      status: t.status,
      capturedAmount: t.captured_amount,
      expiresAt: t.expires_at,
      memo: t.memo,
      reference: t.reference,
      metadata: t.metadata ?? {},
      destination: t.destination,
      reversesTransferId: t.reverses_transfer_id,
      refundsTransferId: t.refunds_transfer_id,
    };
    return { ...base, subject: 'transfer', transfer };
  }
  const a = accountData.parse(row.data);
  const account: Account = {
    id: a.id,
    // The trigger writes account events only for user accounts' freezes: a user account has an owner.
    owner: a.owner ?? '',
    currency: a.currency,
    balance: a.balance,
    availableBalance: a.available_balance,
    status: a.status,
    createdAt: a.created_at,
    closedAt: a.closed_at,
  };
  return { ...base, subject: 'account', account };
}

/**
 * An event row with its accounts' owners (in account_ids order), from events aliased `e`; its
 * columns are named as eventRow's (id, public_id, type, created_at, transfer_id, data,
 * account_ids, owners).
 */
export const EVENT_COLUMNS = sql.fragment`e.id, e.public_id, e.type, e.created_at, e.transfer_id, e.data, e.account_ids,
  ARRAY(SELECT a.owner FROM unnest(e.account_ids) WITH ORDINALITY AS u(id, n) JOIN accounts a ON a.id = u.id ORDER BY u.n) AS owners`;

const doneColumn = (consumer: EventConsumer) => sql.identifier([consumer === 'notifications' ? 'notified_at' : 'webhooked_at']);

/**
 * The events written by migration 0013's triggers. Every method takes the connection first.
 * Throws only Slonik/PostgreSQL errors (and a ZodError for a row the triggers could not have written).
 */
export const eventsRepository = {
  /**
   * Up to `limit` events the consumer has not handled, oldest first, marked done for it in the
   * same statement (FOR UPDATE SKIP LOCKED, then UPDATE ... RETURNING: one round trip). Call it in
   * the transaction that handles them: the mark commits with what the consumer wrote, and a crash
   * or rollback before commit leaves them to be claimed again. A second instance of the consumer
   * claims other rows meanwhile.
   */
  async claim(db: CommonQueryMethods, consumer: EventConsumer, limit: number): Promise<BankEvent[]> {
    const column = doneColumn(consumer);
    const rows = await db.any(sql.type(eventRow)`
      WITH picked AS (SELECT id FROM events WHERE ${column} IS NULL ORDER BY id LIMIT ${limit} FOR UPDATE SKIP LOCKED)
      UPDATE events e SET ${column} = now() FROM picked WHERE e.id = picked.id
      RETURNING ${EVENT_COLUMNS}`);
    return rows.map(toEvent).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  },

  /** How many events the consumer has yet to handle (a gauge for the worker's metrics). */
  async backlog(db: CommonQueryMethods, consumer: EventConsumer): Promise<number> {
    return db.oneFirst(sql.type(countRow)`SELECT count(*)::int AS n FROM events WHERE ${doneColumn(consumer)} IS NULL`);
  },

  /**
   * Deletes up to `limit` of the oldest events older than `olderThanSeconds` that both consumers
   * handled and no webhook delivery still waits to send, with their finished deliveries
   * (migration 0020). Returns how many events it deleted.
   */
  async prune(db: CommonQueryMethods, olderThanSeconds: number, limit: number): Promise<number> {
    return db.oneFirst(sql.type(countRow)`
      SELECT events_prune(make_interval(secs => ${olderThanSeconds}), ${limit}) AS n`);
  },

  /** One event by its public id (null when there is none). */
  async findByPublicId(db: CommonQueryMethods, publicId: string): Promise<BankEvent | null> {
    const row = await db.maybeOne(sql.type(eventRow)`
      SELECT ${EVENT_COLUMNS} FROM events e WHERE e.public_id = ${publicId}`);
    return row ? toEvent(row) : null;
  },
};
