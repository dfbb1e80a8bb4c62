import { sql, type CommonQueryMethods } from 'slonik';
import { z } from 'zod';
import { moneyReceivedItemSchema, type MoneyReceivedItem } from '../mail/notification-email.schema.ts';
import type { NotificationSettings } from '../users/user.types.ts';
import { countRow } from '../db/rows.ts';

const windowInsertRow = z.object({ username: z.string(), inserted: z.boolean() });
const loginAddressRow = z.object({ known: z.boolean(), others: z.number() });

/** Who a notification goes to: the user's current address and settings. */
export type NotificationRecipient = {
  readonly username: string;
  readonly email: string;
  readonly fullName: string;
  readonly settings: NotificationSettings;
};

/** A recipient's open coalescing window (migrations 0014 and 0017's notification_windows). */
export type NotificationWindow = {
  readonly username: string;
  readonly openedAt: Date;
  readonly closesAt: Date;
  /** The first payments gathered (at most the notifier's cap), oldest first. */
  readonly items: readonly MoneyReceivedItem[];
  /** Every payment gathered, listed or not. */
  readonly itemCount: number;
  /** Their sum per currency, minor units as decimal strings. */
  readonly totals: Readonly<Record<string, string>>;
};

/** What a batch adds to one recipient's window: its first payment and the others, oldest first. */
export type WindowAddition = {
  readonly username: string;
  readonly first: MoneyReceivedItem;
  /** The others, at most the cap of them. */
  readonly rest: readonly MoneyReceivedItem[];
  /** How many others, listed or not. */
  readonly restCount: number;
  /** Sum per currency of the others. */
  readonly restTotals: Readonly<Record<string, string>>;
  /** Sum per currency of all of them, the first included. */
  readonly allTotals: Readonly<Record<string, string>>;
};

const recipientRow = z.object({
  username: z.string(),
  email: z.string(),
  full_name: z.string(),
  notify_money_received: z.boolean(),
  notify_withdrawals: z.boolean(),
  notify_holds: z.boolean(),
});

const windowRow = z.object({
  username: z.string(),
  opened_at: z.date(),
  closes_at: z.date(),
  items: z.array(moneyReceivedItemSchema),
  item_count: z.number().int(),
  totals: z.record(z.string(), z.string().regex(/^\d+$/)),
});

const toWindow = (row: z.infer<typeof windowRow>): NotificationWindow => ({
  username: row.username,
  openedAt: row.opened_at,
  closesAt: row.closes_at,
  items: row.items,
  itemCount: row.item_count,
  totals: row.totals,
});

const WINDOW_COLUMNS = sql.fragment`username, opened_at, closes_at, items, item_count, totals`;

/**
 * Recipients, coalescing windows and remembered login addresses. Every method takes the
 * connection first; the window methods run in the notifier's transaction. Throws only
 * Slonik/PostgreSQL errors.
 */
export const notificationRepository = {
  /** The users named (those that exist), by username. */
  async recipients(db: CommonQueryMethods, usernames: readonly string[]): Promise<Map<string, NotificationRecipient>> {
    if (usernames.length === 0) return new Map();
    const rows = await db.any(sql.type(recipientRow)`
      SELECT username, email, full_name, notify_money_received, notify_withdrawals, notify_holds
        FROM users WHERE username = ANY(${sql.array([...new Set(usernames)], 'text')})`);
    return new Map(
      rows.map((row) => [
        row.username,
        {
          username: row.username,
          email: row.email,
          fullName: row.full_name,
          settings: { moneyReceived: row.notify_money_received, withdrawals: row.notify_withdrawals, holds: row.notify_holds },
        },
      ]),
    );
  },

  /**
   * Adds a batch's payments to their recipients' windows in one statement, locking the windows
   * in username order (so two notifiers never deadlock). A recipient without a window gets one,
   * [now, closesAt), holding the others; their first payment is to be emailed at once
   * (`opened`). An open window gathers all of them (`appended`), listing up to `cap`. A window
   * found closed but not yet flushed is left locked and untouched for the caller (neither list):
   * its digest goes first, then the window starts again (restartWindow).
   */
  async addToWindows(
    db: CommonQueryMethods,
    additions: readonly WindowAddition[],
    now: Date,
    closesAt: Date,
    cap: number,
  ): Promise<{ opened: Set<string>; appended: Set<string> }> {
    const opened = new Set<string>();
    const appended = new Set<string>();
    if (additions.length === 0) return { opened, appended };
    const sorted = [...additions].sort((a, b) => (a.username < b.username ? -1 : a.username > b.username ? 1 : 0));
    const json = (value: unknown) => JSON.stringify(value);
    const rows = await db.any(sql.type(windowInsertRow)`
      WITH input AS (
        SELECT * FROM unnest(
          ${sql.array(sorted.map((a) => a.username), 'text')},
          ${sql.array(sorted.map((a) => json(a.first)), 'jsonb')},
          ${sql.array(sorted.map((a) => json(a.rest.slice(0, cap))), 'jsonb')},
          ${sql.array(sorted.map((a) => a.restCount), 'int4')},
          ${sql.array(sorted.map((a) => json(a.restTotals)), 'jsonb')},
          ${sql.array(sorted.map((a) => json(a.allTotals)), 'jsonb')}
        ) AS i(username, first, rest, rest_count, rest_totals, all_totals)
      )
      INSERT INTO notification_windows AS w (username, opened_at, closes_at, items, item_count, totals)
      SELECT username, ${sql.timestamp(now)}, ${sql.timestamp(closesAt)}, rest, rest_count, rest_totals FROM input ORDER BY username
      ON CONFLICT (username) DO UPDATE
         SET items = CASE WHEN jsonb_array_length(w.items) >= ${cap} THEN w.items
                          ELSE jsonb_array_head(w.items || (SELECT jsonb_build_array(i.first) || i.rest FROM input i WHERE i.username = excluded.username), ${cap}) END,
             item_count = w.item_count + excluded.item_count + 1,
             totals = notification_totals_add(w.totals, (SELECT i.all_totals FROM input i WHERE i.username = excluded.username))
       WHERE w.closes_at > ${sql.timestamp(now)}
      RETURNING w.username, (w.xmax = 0) AS inserted`);
    for (const row of rows) (row.inserted ? opened : appended).add(row.username);
    return { opened, appended };
  },

  /** The user's window, locked until the transaction ends; null when there is none. */
  async lockWindow(db: CommonQueryMethods, username: string): Promise<NotificationWindow | null> {
    const row = await db.maybeOne(sql.type(windowRow)`
      SELECT ${WINDOW_COLUMNS} FROM notification_windows WHERE username = ${username} FOR UPDATE`);
    return row ? toWindow(row) : null;
  },

  /** Starts a new window holding `addition`'s others on a row the caller locked (its old one was flushed in the same transaction). */
  async restartWindow(db: CommonQueryMethods, addition: WindowAddition, now: Date, closesAt: Date, cap: number): Promise<void> {
    await db.query(sql.unsafe`
      UPDATE notification_windows
         SET opened_at = ${sql.timestamp(now)}, closes_at = ${sql.timestamp(closesAt)},
             items = ${sql.jsonb(addition.rest.slice(0, cap) as never)}, item_count = ${addition.restCount}, totals = ${sql.jsonb(addition.restTotals as never)}
       WHERE username = ${addition.username}`);
  },

  /**
   * Up to `limit` windows closed by `now`, locked FOR UPDATE SKIP LOCKED: windows another
   * notifier is flushing (or appending to) are left to it, so no digest is written twice.
   */
  async claimClosedWindows(db: CommonQueryMethods, now: Date, limit: number): Promise<NotificationWindow[]> {
    const rows = await db.any(sql.type(windowRow)`
      SELECT ${WINDOW_COLUMNS} FROM notification_windows
       WHERE closes_at <= ${sql.timestamp(now)}
       ORDER BY closes_at LIMIT ${limit}
       FOR UPDATE SKIP LOCKED`);
    return rows.map(toWindow);
  },

  /** Deletes the windows of `usernames` in one statement (the caller holds their locks: claimClosedWindows). */
  async deleteWindows(db: CommonQueryMethods, usernames: readonly string[]): Promise<void> {
    if (usernames.length === 0) return;
    await db.query(sql.unsafe`DELETE FROM notification_windows WHERE username = ANY(${sql.array(usernames, 'text')})`);
  },

  /** Windows open now (a gauge). */
  async countWindows(db: CommonQueryMethods): Promise<number> {
    return db.oneFirst(sql.type(countRow)`SELECT count(*)::int AS n FROM notification_windows`);
  },

  /**
   * Records a confirmed login's address for the user. Takes the user's row lock first (FOR NO KEY
   * UPDATE: foreign-key checks on the user still pass), so two first logins at once cannot both
   * find the list empty. `known`: the address was there already; `firstAddress`: the user had none.
   */
  async rememberLoginAddress(db: CommonQueryMethods, username: string, address: string): Promise<{ known: boolean; firstAddress: boolean }> {
    await db.query(sql.unsafe`SELECT 1 FROM users WHERE username = ${username} FOR NO KEY UPDATE`);
    const row = await db.one(sql.type(loginAddressRow)`
      SELECT EXISTS (SELECT 1 FROM login_addresses WHERE username = ${username} AND address = ${address}) AS known,
             (SELECT count(*)::int FROM login_addresses WHERE username = ${username} AND address <> ${address}) AS others`);
    await db.query(sql.unsafe`
      INSERT INTO login_addresses (username, address) VALUES (${username}, ${address})
      ON CONFLICT (username, address) DO UPDATE SET last_seen_at = now()`);
    return { known: row.known, firstAddress: !row.known && row.others === 0 };
  },
};
