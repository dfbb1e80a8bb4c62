// Notification emails (issue 14): what happened to a user's money, and a login from an address
// the user has not used before. Written to the outbox by the worker's notifier (money) or by the
// login confirmation (the address), each in the transaction of its cause.
import { z } from 'zod';
import { CURRENCIES } from '../ledger/currency.ts';
import { isPlainEmailAddress } from './email-address.ts';

/** Money received, sent at once: the first in a recipient's window. */
export const SEND_MONEY_RECEIVED_EMAIL = 'send-money-received-email';
/** Money received while a recipient's window was open, gathered into one email when it closed. */
export const SEND_MONEY_RECEIVED_DIGEST_EMAIL = 'send-money-received-digest-email';
/** A withdrawal from the user's account. */
export const SEND_WITHDRAWAL_EMAIL = 'send-withdrawal-email';
/** A hold captured: to the sender and the recipient. */
export const SEND_HOLD_CAPTURED_EMAIL = 'send-hold-captured-email';
/** A hold expired uncaptured: to the sender, whose money is free again. */
export const SEND_HOLD_EXPIRED_EMAIL = 'send-hold-expired-email';
/** Security: a login confirmed from a client address the user had not logged in from. Always sent. */
export const SEND_NEW_LOGIN_ADDRESS_EMAIL = 'send-new-login-address-email';

export const NOTIFICATION_EMAIL_KINDS = [
  SEND_MONEY_RECEIVED_EMAIL,
  SEND_MONEY_RECEIVED_DIGEST_EMAIL,
  SEND_WITHDRAWAL_EMAIL,
  SEND_HOLD_CAPTURED_EMAIL,
  SEND_HOLD_EXPIRED_EMAIL,
  SEND_NEW_LOGIN_ADDRESS_EMAIL,
] as const;
export type NotificationEmailKind = (typeof NOTIFICATION_EMAIL_KINDS)[number];

const email = z.string().refine(isPlainEmailAddress, 'must be one plain email address');
/** bigint ids and minor-unit amounts as decimal strings (JSON has no bigint). */
const decimal = z.string().regex(/^\d{1,19}$/);
const recipient = { to: email, username: z.string().min(1), fullName: z.string().min(1) };

/** One movement of money into the user's account. */
export const moneyReceivedItemSchema = z.object({
  eventId: decimal,
  transferId: decimal,
  accountId: decimal,
  /** capture: the captured part of a hold the payer placed for this user (migration-free: a new value of the payload). */
  kind: z.enum(['transfer', 'refund', 'reversal', 'deposit', 'capture']),
  /** Minor units. */
  amount: decimal,
  currency: z.enum(CURRENCIES),
  /** The paying user's username; null for the bank itself (a banker's credit, a system account). */
  sender: z.string().nullable(),
  memo: z.string().nullable(),
  at: z.iso.datetime(),
});
export type MoneyReceivedItem = z.infer<typeof moneyReceivedItemSchema>;

export const moneyReceivedEmailPayloadSchema = z.object({ ...recipient, item: moneyReceivedItemSchema });
export type MoneyReceivedEmailPayload = z.infer<typeof moneyReceivedEmailPayloadSchema>;

export const moneyReceivedDigestEmailPayloadSchema = z.object({
  ...recipient,
  /** Oldest first; at least one; the first of them when the window gathered more than the notifier lists. */
  items: z.array(moneyReceivedItemSchema).min(1),
  /** Every payment of the window, listed or not (absent in digests written before migration 0017: items.length). */
  count: z.number().int().min(1).optional(),
  /** Their sum per currency in minor units, when not all are listed. */
  totals: z.array(z.object({ currency: z.enum(CURRENCIES), amount: z.string().regex(/^\d{1,40}$/) })).optional(),
  /** The window the items arrived in. */
  since: z.iso.datetime(),
  until: z.iso.datetime(),
});
export type MoneyReceivedDigestEmailPayload = z.infer<typeof moneyReceivedDigestEmailPayloadSchema>;

export const withdrawalEmailPayloadSchema = z.object({
  ...recipient,
  transferId: decimal,
  accountId: decimal,
  amount: decimal,
  currency: z.enum(CURRENCIES),
  destination: z.string().nullable(),
  memo: z.string().nullable(),
  at: z.iso.datetime(),
});
export type WithdrawalEmailPayload = z.infer<typeof withdrawalEmailPayloadSchema>;

export const holdCapturedEmailPayloadSchema = z.object({
  ...recipient,
  /** Which side of the hold the recipient is on. */
  /** Written as 'sender' only since captures reach the recipient as money received; 'recipient' rows may still wait in an outbox. */
  side: z.enum(['sender', 'recipient']),
  transferId: decimal,
  /** What was held, and what of it moved. */
  heldAmount: decimal,
  capturedAmount: decimal,
  currency: z.enum(CURRENCIES),
  /** The other side's username (null: a system account). */
  counterparty: z.string().nullable(),
  memo: z.string().nullable(),
  at: z.iso.datetime(),
});
export type HoldCapturedEmailPayload = z.infer<typeof holdCapturedEmailPayloadSchema>;

export const holdExpiredEmailPayloadSchema = z.object({
  ...recipient,
  transferId: decimal,
  amount: decimal,
  currency: z.enum(CURRENCIES),
  counterparty: z.string().nullable(),
  memo: z.string().nullable(),
  at: z.iso.datetime(),
});
export type HoldExpiredEmailPayload = z.infer<typeof holdExpiredEmailPayloadSchema>;

export const newLoginAddressEmailPayloadSchema = z.object({
  ...recipient,
  /** The client address as the rate limiter keys it (IPv4, or an IPv6 /64). */
  address: z.string().min(1),
  userAgent: z.string().nullable(),
  sessionId: z.string().uuid(),
  at: z.iso.datetime(),
});
export type NewLoginAddressEmailPayload = z.infer<typeof newLoginAddressEmailPayloadSchema>;
