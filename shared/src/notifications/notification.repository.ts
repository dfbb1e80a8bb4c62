import { sql, type CommonQueryMethods } from 'slonik';
import { z } from 'zod';
import { moneyReceivedItemSchema, type MoneyReceivedItem } from '../mail/notification-email.schema.ts';
import type { NotificationSettings } from '../users/user.types.ts';

/** Who a notification goes to: the user's current address and settings. */
export type NotificationRecipient = {
  readonly username: string;
  readonly email: string;
  readonly fullName: string;
  readonly settings: NotificationSettings;
};

/** A recipient's open coalescing window (migration 0014's notification_windows). */
export type NotificationWindow = {
  readonly username: string;
  readonly openedAt: Date;
  readonly closesAt: Date;
  readonly items: readonly MoneyReceivedItem[];
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
});

const toWindow = (row: z.infer<typeof windowRow>): NotificationWindow => ({
  username: row.username,
  openedAt: row.opened_at,
  closesAt: row.closes_at,
  items: row.items,
});

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
   * Opens the user's window [now, closesAt) with no items, unless one exists (committed, or
   * written by a transaction this one then waits for). True when this call opened it.
   */
  async openWindow(db: CommonQueryMethods, username: string, now: Date, closesAt: Date): Promise<boolean> {
    const row = await db.maybeOne(sql.type(z.object({ username: z.string() }))`
      INSERT INTO notification_windows (username, opened_at, closes_at)
      VALUES (${username}, ${sql.timestamp(now)}, ${sql.timestamp(closesAt)})
      ON CONFLICT (username) DO NOTHING
      RETURNING username`);
    return row !== null;
  },

  /** The user's window, locked until the transaction ends; null when there is none. */
  async lockWindow(db: CommonQueryMethods, username: string): Promise<NotificationWindow | null> {
    const row = await db.maybeOne(sql.type(windowRow)`
      SELECT username, opened_at, closes_at, items FROM notification_windows WHERE username = ${username} FOR UPDATE`);
    return row ? toWindow(row) : null;
  },

  /** Adds an item to a window the caller locked. */
  async appendItem(db: CommonQueryMethods, username: string, item: MoneyReceivedItem): Promise<void> {
    await db.query(sql.unsafe`
      UPDATE notification_windows SET items = items || ${sql.jsonb([item] as never)} WHERE username = ${username}`);
  },

  /** Starts a new empty window on a row the caller locked (its old one was flushed in the same transaction). */
  async restartWindow(db: CommonQueryMethods, username: string, now: Date, closesAt: Date): Promise<void> {
    await db.query(sql.unsafe`
      UPDATE notification_windows SET opened_at = ${sql.timestamp(now)}, closes_at = ${sql.timestamp(closesAt)}, items = '[]'
       WHERE username = ${username}`);
  },

  /**
   * Up to `limit` windows closed by `now`, locked FOR UPDATE SKIP LOCKED: windows another
   * notifier is flushing (or appending to) are left to it, so no digest is written twice.
   */
  async claimClosedWindows(db: CommonQueryMethods, now: Date, limit: number): Promise<NotificationWindow[]> {
    const rows = await db.any(sql.type(windowRow)`
      SELECT username, opened_at, closes_at, items FROM notification_windows
       WHERE closes_at <= ${sql.timestamp(now)}
       ORDER BY closes_at LIMIT ${limit}
       FOR UPDATE SKIP LOCKED`);
    return rows.map(toWindow);
  },

  async deleteWindow(db: CommonQueryMethods, username: string): Promise<void> {
    await db.query(sql.unsafe`DELETE FROM notification_windows WHERE username = ${username}`);
  },

  /** Windows open now (a gauge). */
  async countWindows(db: CommonQueryMethods): Promise<number> {
    return db.oneFirst(sql.type(z.object({ n: z.number() }))`SELECT count(*)::int AS n FROM notification_windows`);
  },

  /**
   * Records a confirmed login's address for the user. Takes the user's row lock first (FOR NO KEY
   * UPDATE: foreign-key checks on the user still pass), so two first logins at once cannot both
   * find the list empty. `known`: the address was there already; `firstAddress`: the user had none.
   */
  async rememberLoginAddress(db: CommonQueryMethods, username: string, address: string): Promise<{ known: boolean; firstAddress: boolean }> {
    await db.query(sql.unsafe`SELECT 1 FROM users WHERE username = ${username} FOR NO KEY UPDATE`);
    const row = await db.one(sql.type(z.object({ known: z.boolean(), others: z.number() }))`
      SELECT EXISTS (SELECT 1 FROM login_addresses WHERE username = ${username} AND address = ${address}) AS known,
             (SELECT count(*)::int FROM login_addresses WHERE username = ${username} AND address <> ${address}) AS others`);
    await db.query(sql.unsafe`
      INSERT INTO login_addresses (username, address) VALUES (${username}, ${address})
      ON CONFLICT (username, address) DO UPDATE SET last_seen_at = now()`);
    return { known: row.known, firstAddress: !row.known && row.others === 0 };
  },
};
