import type { CommonQueryMethods, DatabasePool } from 'slonik';
import { eventsRepository, type BankEvent } from '../events/events.repository.ts';
import { isCurrency, type Currency } from '../ledger/currency.ts';
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
import { notificationRepository, type NotificationRecipient, type NotificationWindow, type WindowAddition } from './notification.repository.ts';

/** The default coalescing window for money received: the first email at once, the next minute's in one digest. */
export const DEFAULT_DIGEST_WINDOW_MS = 60_000;

/**
 * Payments a digest lists; a window that gathers more lists its first ones and gives the count
 * and the sum per currency of all (the rest are in the history). Keeps a busy account's window
 * row and email small.
 */
export const DIGEST_MAX_ITEMS = 50;

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
 * owner; a captured hold to its sender (one email per capture: money they held left them) and,
 * as money received, to its recipient (at once or in the window's digest, like any payment: a
 * merchant capturing many holds gets one digest, not an email per capture); an expired hold to
 * the sender. Pending and voided holds and freezes send nothing.
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
      const captured = (t.capturedAmount ?? t.amount).toString();
      const intents: NotificationIntent[] = [];
      if (from !== null) {
        intents.push({
          username: from,
          setting: 'holds',
          kind: SEND_HOLD_CAPTURED_EMAIL,
          payload: (r: NotificationRecipient): HoldCapturedEmailPayload => ({
            ...to(r),
            ...base,
            side: 'sender',
            heldAmount: t.amount.toString(),
            capturedAmount: captured,
            counterparty: receiver,
          }),
        });
      }
      if (receiver !== null && receiver !== from) {
        const item: MoneyReceivedItem = { ...base, eventId: event.id.toString(), accountId: t.toAccountId.toString(), kind: 'capture', amount: captured, sender: from };
        intents.push({ username: receiver, setting: 'moneyReceived', item });
      }
      return intents;
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
      // The round's emails go into the outbox together, in one statement at the end.
      const emails: { kind: NotificationEmailKind; payload: Record<string, unknown> }[] = [];
      const write = (kind: NotificationEmailKind, payload: Record<string, unknown>) => {
        emails.push({ kind, payload });
        result.written[kind] = (result.written[kind] ?? 0) + 1;
      };
      // Money received last, all recipients' windows in one statement (in event order per recipient).
      const received = intents.filter((intent) => 'item' in intent);
      for (const intent of intents) {
        if ('item' in intent) continue;
        const recipient = recipients.get(intent.username);
        if (!recipient) continue;
        if (!recipient.settings[intent.setting]) {
          result.skipped[intent.kind] = (result.skipped[intent.kind] ?? 0) + 1;
          continue;
        }
        write(intent.kind, intent.payload(recipient));
      }
      const wanted: { recipient: NotificationRecipient; item: MoneyReceivedItem }[] = [];
      for (const intent of received) {
        const recipient = recipients.get(intent.username);
        if (!recipient) continue;
        if (!recipient.settings.moneyReceived) {
          result.skipped[SEND_MONEY_RECEIVED_EMAIL] = (result.skipped[SEND_MONEY_RECEIVED_EMAIL] ?? 0) + 1;
          continue;
        }
        wanted.push({ recipient, item: intent.item });
      }
      await this.#receive(tx, wanted, now, write);
      result.outboxIds.push(...(await outboxRepository.insertMany(tx, emails)));
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
      const digests: { kind: NotificationEmailKind; payload: Record<string, unknown> }[] = [];
      for (const window of windows) {
        const recipient = recipients.get(window.username);
        if (window.items.length > 0 && recipient) {
          if (recipient.settings.moneyReceived) {
            digests.push({ kind: SEND_MONEY_RECEIVED_DIGEST_EMAIL, payload: digestPayload(recipient, window) });
            result.written[SEND_MONEY_RECEIVED_DIGEST_EMAIL] = (result.written[SEND_MONEY_RECEIVED_DIGEST_EMAIL] ?? 0) + 1;
          } else {
            result.skipped[SEND_MONEY_RECEIVED_DIGEST_EMAIL] = (result.skipped[SEND_MONEY_RECEIVED_DIGEST_EMAIL] ?? 0) + 1;
          }
        }
      }
      await notificationRepository.deleteWindows(tx, windows.map((w) => w.username));
      result.outboxIds.push(...(await outboxRepository.insertMany(tx, digests)));
      return result;
    });
    await this.#enqueue(outcome);
    return outcome;
  }

  /**
   * Money received, a batch of it, in event order per recipient: every recipient's window is
   * written in one statement (notificationRepository.addToWindows). A recipient without a window
   * is emailed their first payment now and a window opens with the others; an open window gathers
   * them all. A window found closed but not yet flushed is flushed here (its digest), then starts
   * again as a new one would.
   */
  async #receive(
    tx: CommonQueryMethods,
    wanted: readonly { recipient: NotificationRecipient; item: MoneyReceivedItem }[],
    now: Date,
    write: (kind: NotificationEmailKind, payload: Record<string, unknown>) => void,
  ): Promise<void> {
    if (wanted.length === 0) return;
    const byRecipient = new Map<string, { recipient: NotificationRecipient; items: MoneyReceivedItem[] }>();
    for (const { recipient, item } of wanted) {
      const entry = byRecipient.get(recipient.username) ?? { recipient, items: [] };
      entry.items.push(item);
      byRecipient.set(recipient.username, entry);
    }
    const additions = [...byRecipient].map(([username, { items }]) => windowAddition(username, items));
    const closesAt = new Date(now.getTime() + this.#windowMs);
    const { opened, appended } = await notificationRepository.addToWindows(tx, additions, now, closesAt, DIGEST_MAX_ITEMS);
    for (const addition of additions) {
      const recipient = byRecipient.get(addition.username)!.recipient;
      const immediate = (): MoneyReceivedEmailPayload => ({ ...to(recipient), item: addition.first });
      if (opened.has(addition.username)) {
        write(SEND_MONEY_RECEIVED_EMAIL, immediate());
      } else if (!appended.has(addition.username)) {
        // Closed and not yet flushed: addToWindows left it locked by this transaction.
        const window = await notificationRepository.lockWindow(tx, addition.username);
        if (!window) throw new Error(`the notification window of ${addition.username} went missing while locked`);
        if (window.itemCount > 0) write(SEND_MONEY_RECEIVED_DIGEST_EMAIL, digestPayload(recipient, window));
        await notificationRepository.restartWindow(tx, addition, now, closesAt, DIGEST_MAX_ITEMS);
        write(SEND_MONEY_RECEIVED_EMAIL, immediate());
      }
    }
  }

  async #enqueue(outcome: NotifierOutcome): Promise<void> {
    if (outcome.outboxIds.length === 0) return;
    this.#logger?.info({ written: outcome.written, skipped: outcome.skipped, events: outcome.events, windows: outcome.windows }, 'notifications written');
    await this.#outbox?.enqueueOutbox(outcome.outboxIds);
  }
}

function digestPayload(recipient: NotificationRecipient, window: NotificationWindow): MoneyReceivedDigestEmailPayload {
  const items = [...window.items].sort((a, b) => Number(BigInt(a.eventId) - BigInt(b.eventId)));
  const count = Math.max(window.itemCount, items.length);
  const totals =
    count > items.length
      ? Object.entries(window.totals)
          .filter((entry): entry is [Currency, string] => isCurrency(entry[0]))
          .sort(([a], [b]) => (a < b ? -1 : 1))
          .map(([currency, amount]) => ({ currency, amount }))
      : undefined;
  return { ...to(recipient), items, count, ...(totals ? { totals } : {}), since: iso(window.openedAt), until: iso(window.closesAt) };
}

/** Sum per currency of `items`' amounts (minor units, decimal strings). */
function totalsOf(items: readonly MoneyReceivedItem[]): Record<string, string> {
  const sums = new Map<string, bigint>();
  for (const item of items) sums.set(item.currency, (sums.get(item.currency) ?? 0n) + BigInt(item.amount));
  return Object.fromEntries([...sums].map(([currency, sum]) => [currency, sum.toString()]));
}

/** One recipient's payments of a batch (in event order, at least one) as what they add to the window. */
export function windowAddition(username: string, items: readonly MoneyReceivedItem[]): WindowAddition {
  const [first, ...rest] = items;
  if (!first) throw new Error('a window addition needs at least one payment');
  return {
    username,
    first,
    rest: rest.slice(0, DIGEST_MAX_ITEMS),
    restCount: rest.length,
    restTotals: totalsOf(rest),
    allTotals: totalsOf(items),
  };
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
