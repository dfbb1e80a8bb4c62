import type { CommonQueryMethods, DatabasePool } from 'slonik';
import { eventsRepository, type BankEvent } from '../events/events.repository.ts';
import type { Logger } from '../logging/logger.ts';
import {
  SEND_HOLD_CAPTURED_EMAIL,
  SEND_HOLD_EXPIRED_EMAIL,
  SEND_MONEY_RECEIVED_DIGEST_EMAIL,
  SEND_MONEY_RECEIVED_EMAIL,
  SEND_WITHDRAWAL_EMAIL,
  type HoldCapturedEmailPayload,
  type HoldExpiredEmailPayload,
  type MoneyReceivedDigestEmailPayload,
  type MoneyReceivedEmailPayload,
  type MoneyReceivedItem,
  type NotificationEmailKind,
  type WithdrawalEmailPayload,
} from '../mail/notification-email.schema.ts';
import type { OutboxPublisher } from '../outbox/outbox-publisher.ts';
import { outboxRepository } from '../outbox/outbox.repository.ts';
import type { NotificationSettings } from '../users/user.types.ts';
import { notificationRepository, type NotificationRecipient, type NotificationWindow } from './notification.repository.ts';

/** The default coalescing window for money received: the first email at once, the next minute's in one digest. */
export const DEFAULT_DIGEST_WINDOW_MS = 60_000;

/** What one event asks to tell one user (before their settings are read). */
export type NotificationIntent =
  | { readonly username: string; readonly setting: 'moneyReceived'; readonly item: MoneyReceivedItem }
  | {
      readonly username: string;
      readonly setting: Exclude<keyof NotificationSettings, 'moneyReceived'>;
      readonly kind: NotificationEmailKind;
      readonly payload: (recipient: NotificationRecipient) => Record<string, unknown>;
    };

/** What a call wrote: outbox rows by kind, and what a user's settings held back. */
export type NotifierOutcome = {
  /** Events handled (marked done for the notifications consumer). */
  events: number;
  /** Windows flushed. */
  windows: number;
  outboxIds: string[];
  written: Partial<Record<NotificationEmailKind, number>>;
  /** Emails not written because the user turned that kind off, by kind. */
  skipped: Partial<Record<NotificationEmailKind, number>>;
};

const iso = (date: Date) => date.toISOString();
const to = (recipient: NotificationRecipient) => ({ to: recipient.email, username: recipient.username, fullName: recipient.fullName });

/**
 * What an event tells whom; pure. Money received (a posted transfer, refund or reversal into a
 * user's account, or a banker's credit) goes to the receiving owner, except money the owner moved
 * themselves (their own deposit, a transfer between their own accounts). A withdrawal goes to its
 * owner; a captured hold to both sides (the recipient's notice of the money, so no separate
 * "received"); an expired hold to the sender. Pending and voided holds and freezes send nothing.
 */
export function planNotifications(event: BankEvent): NotificationIntent[] {
  if (event.subject !== 'transfer') return [];
  const t = event.transfer;
  const from = event.accounts[0]?.owner ?? null;
  const receiver = event.accounts[1]?.owner ?? null;
  const base = { transferId: t.id.toString(), currency: t.currency, memo: t.memo, at: iso(event.createdAt) };
  switch (event.type) {
    case 'transfer.posted':
    case 'transfer.refunded':
    case 'transfer.reversed': {
      if (receiver === null || from === receiver) return [];
      if (t.kind !== 'transfer' && t.kind !== 'deposit' && t.kind !== 'refund' && t.kind !== 'reversal') return [];
      if (t.kind === 'deposit' && t.initiatedBy === receiver) return [];
      const item: MoneyReceivedItem = {
        ...base,
        eventId: event.id.toString(),
        accountId: t.toAccountId.toString(),
        kind: t.kind,
        amount: t.amount.toString(),
        sender: t.kind === 'deposit' ? null : from,
      };
      return [{ username: receiver, setting: 'moneyReceived', item }];
    }
    case 'withdrawal.created':
      if (from === null) return [];
      return [
        {
          username: from,
          setting: 'withdrawals',
          kind: SEND_WITHDRAWAL_EMAIL,
          payload: (r): WithdrawalEmailPayload => ({ ...to(r), ...base, accountId: t.fromAccountId.toString(), amount: t.amount.toString(), destination: t.destination }),
        },
      ];
    case 'transfer.captured': {
      const sides = [
        { username: from, side: 'sender' as const, counterparty: receiver },
        { username: receiver, side: 'recipient' as const, counterparty: from },
      ].filter((s, i, all): s is typeof s & { username: string } => s.username !== null && all.findIndex((o) => o.username === s.username) === i);
      return sides.map((s) => ({
        username: s.username,
        setting: 'holds' as const,
        kind: SEND_HOLD_CAPTURED_EMAIL,
        payload: (r: NotificationRecipient): HoldCapturedEmailPayload => ({
          ...to(r),
          ...base,
          side: s.side,
          heldAmount: t.amount.toString(),
          capturedAmount: (t.capturedAmount ?? t.amount).toString(),
          counterparty: s.counterparty,
        }),
      }));
    }
    case 'transfer.expired':
      if (from === null) return [];
      return [
        {
          username: from,
          setting: 'holds',
          kind: SEND_HOLD_EXPIRED_EMAIL,
          payload: (r): HoldExpiredEmailPayload => ({ ...to(r), ...base, amount: t.amount.toString(), counterparty: receiver }),
        },
      ];
    default:
      return [];
  }
}

/**
 * The notifier: turns events (migration 0013) into notification emails, and "money received"
 * into at most one email at once plus one digest per window per recipient.
 *
 * `handleEvents` claims a batch of events for the `notifications` consumer (FOR UPDATE SKIP
 * LOCKED) and, in the same transaction, writes their outbox rows and marks them done: an event's
 * emails exist if and only if it is marked done, so a crash, a retry or a second notifier never
 * loses or doubles one. Money received opens the recipient's window and is emailed at once; while
 * the window is open (`windowMs`, by this notifier's clock from when it handled the first one),
 * further money is appended to it. `flushClosedWindows` takes closed windows FOR UPDATE SKIP
 * LOCKED and writes each one's digest and deletes it in one transaction. Windows are locked in
 * username order within a batch, so two notifiers never deadlock. Informational emails follow the
 * recipient's settings as they are when written (a digest: when it is flushed).
 *
 * Throws only Slonik/PostgreSQL errors (the transaction then rolls back whole).
 */
export class Notifier {
  readonly #pool: DatabasePool;
  readonly #outbox: OutboxPublisher | undefined;
  readonly #windowMs: number;
  readonly #batchSize: number;
  readonly #clock: () => Date;
  readonly #logger: Logger | undefined;

  constructor(deps: { pool: DatabasePool; outbox?: OutboxPublisher; windowMs?: number; batchSize?: number; clock?: () => Date; logger?: Logger }) {
    this.#pool = deps.pool;
    this.#outbox = deps.outbox;
    this.#windowMs = deps.windowMs ?? DEFAULT_DIGEST_WINDOW_MS;
    this.#batchSize = deps.batchSize ?? 100;
    this.#clock = deps.clock ?? (() => new Date());
    this.#logger = deps.logger;
  }

  /** Handles events and flushes closed windows until a batch of each comes back short. */
  async drain(): Promise<NotifierOutcome> {
    const total = emptyOutcome();
    for (;;) {
      const outcome = await this.handleEvents();
      merge(total, outcome);
      if (outcome.events < this.#batchSize) break;
    }
    for (;;) {
      const outcome = await this.flushClosedWindows();
      merge(total, outcome);
      if (outcome.windows < this.#batchSize) break;
    }
    return total;
  }

  /** One batch of events, in one transaction; enqueues the rows written after the commit. */
  async handleEvents(): Promise<NotifierOutcome> {
    const outcome = await this.#pool.transaction(async (tx) => {
      const result = emptyOutcome();
      const events = await eventsRepository.claim(tx, 'notifications', this.#batchSize);
      result.events = events.length;
      if (events.length === 0) return result;
      const intents = events.flatMap(planNotifications);
      const recipients = await notificationRepository.recipients(tx, intents.map((intent) => intent.username));
      const now = this.#clock();
      const write = async (kind: NotificationEmailKind, payload: Record<string, unknown>) => {
        result.outboxIds.push(await outboxRepository.insert(tx, { kind, payload }));
        result.written[kind] = (result.written[kind] ?? 0) + 1;
      };
      // Money received last, by recipient then event: window rows are locked in one order.
      const received = intents
        .filter((intent) => 'item' in intent)
        .sort((a, b) => (a.username < b.username ? -1 : a.username > b.username ? 1 : Number(BigInt(a.item.eventId) - BigInt(b.item.eventId))));
      for (const intent of intents) {
        if ('item' in intent) continue;
        const recipient = recipients.get(intent.username);
        if (!recipient) continue;
        if (!recipient.settings[intent.setting]) {
          result.skipped[intent.kind] = (result.skipped[intent.kind] ?? 0) + 1;
          continue;
        }
        await write(intent.kind, intent.payload(recipient));
      }
      for (const intent of received) {
        const recipient = recipients.get(intent.username);
        if (!recipient) continue;
        if (!recipient.settings.moneyReceived) {
          result.skipped[SEND_MONEY_RECEIVED_EMAIL] = (result.skipped[SEND_MONEY_RECEIVED_EMAIL] ?? 0) + 1;
          continue;
        }
        await this.#receive(tx, recipient, intent.item, now, write);
      }
      await eventsRepository.markDone(tx, 'notifications', events.map((event) => event.id));
      return result;
    });
    await this.#enqueue(outcome);
    return outcome;
  }

  /** Writes the digest of up to one batch of closed windows and deletes them, in one transaction. */
  async flushClosedWindows(): Promise<NotifierOutcome> {
    const outcome = await this.#pool.transaction(async (tx) => {
      const result = emptyOutcome();
      const windows = await notificationRepository.claimClosedWindows(tx, this.#clock(), this.#batchSize);
      result.windows = windows.length;
      const recipients = await notificationRepository.recipients(tx, windows.filter((w) => w.items.length > 0).map((w) => w.username));
      for (const window of windows) {
        const recipient = recipients.get(window.username);
        if (window.items.length > 0 && recipient) {
          if (recipient.settings.moneyReceived) {
            result.outboxIds.push(await writeDigest(tx, recipient, window));
            result.written[SEND_MONEY_RECEIVED_DIGEST_EMAIL] = (result.written[SEND_MONEY_RECEIVED_DIGEST_EMAIL] ?? 0) + 1;
          } else {
            result.skipped[SEND_MONEY_RECEIVED_DIGEST_EMAIL] = (result.skipped[SEND_MONEY_RECEIVED_DIGEST_EMAIL] ?? 0) + 1;
          }
        }
        await notificationRepository.deleteWindow(tx, window.username);
      }
      return result;
    });
    await this.#enqueue(outcome);
    return outcome;
  }

  /**
   * Money received by one recipient, under their window's row lock: the first opens a window and
   * is emailed now; one that finds the window open joins it; one that finds it closed but not yet
   * flushed flushes it (its digest) and opens the next.
   */
  async #receive(
    tx: CommonQueryMethods,
    recipient: NotificationRecipient,
    item: MoneyReceivedItem,
    now: Date,
    write: (kind: NotificationEmailKind, payload: Record<string, unknown>) => Promise<void>,
  ): Promise<void> {
    const closesAt = new Date(now.getTime() + this.#windowMs);
    const immediate = (): MoneyReceivedEmailPayload => ({ ...to(recipient), item });
    // A window flushed (deleted) between our insert attempt and our lock: try again.
    for (let attempt = 0; attempt < 3; attempt += 1) {
      if (await notificationRepository.openWindow(tx, recipient.username, now, closesAt)) return write(SEND_MONEY_RECEIVED_EMAIL, immediate());
      const window = await notificationRepository.lockWindow(tx, recipient.username);
      if (!window) continue;
      if (window.closesAt.getTime() > now.getTime()) return notificationRepository.appendItem(tx, recipient.username, item);
      if (window.items.length > 0) await write(SEND_MONEY_RECEIVED_DIGEST_EMAIL, digestPayload(recipient, window));
      await notificationRepository.restartWindow(tx, recipient.username, now, closesAt);
      return write(SEND_MONEY_RECEIVED_EMAIL, immediate());
    }
    throw new Error(`could not open or lock the notification window of ${recipient.username}`);
  }

  async #enqueue(outcome: NotifierOutcome): Promise<void> {
    if (outcome.outboxIds.length === 0) return;
    this.#logger?.info({ written: outcome.written, skipped: outcome.skipped, events: outcome.events, windows: outcome.windows }, 'notifications written');
    await this.#outbox?.enqueueOutbox(outcome.outboxIds);
  }
}

function digestPayload(recipient: NotificationRecipient, window: NotificationWindow): MoneyReceivedDigestEmailPayload {
  const items = [...window.items].sort((a, b) => Number(BigInt(a.eventId) - BigInt(b.eventId)));
  return { ...to(recipient), items, since: iso(window.openedAt), until: iso(window.closesAt) };
}

async function writeDigest(tx: CommonQueryMethods, recipient: NotificationRecipient, window: NotificationWindow): Promise<string> {
  return outboxRepository.insert(tx, { kind: SEND_MONEY_RECEIVED_DIGEST_EMAIL, payload: digestPayload(recipient, window) });
}

function emptyOutcome(): NotifierOutcome {
  return { events: 0, windows: 0, outboxIds: [], written: {}, skipped: {} };
}

function merge(total: NotifierOutcome, outcome: NotifierOutcome): void {
  total.events += outcome.events;
  total.windows += outcome.windows;
  total.outboxIds.push(...outcome.outboxIds);
  for (const [kind, n] of Object.entries(outcome.written) as [NotificationEmailKind, number][]) total.written[kind] = (total.written[kind] ?? 0) + n;
  for (const [kind, n] of Object.entries(outcome.skipped) as [NotificationEmailKind, number][]) total.skipped[kind] = (total.skipped[kind] ?? 0) + n;
}
