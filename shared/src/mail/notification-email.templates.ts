// Notification emails: money received (one, or a digest), a withdrawal, a hold captured or
// expired, a login from a new address. Amounts are shown in major units of their currency.
import { formatMajorUnits, type Currency } from '../ledger/currency.ts';
import type {
  HoldCapturedEmailPayload,
  HoldExpiredEmailPayload,
  MoneyReceivedDigestEmailPayload,
  MoneyReceivedEmailPayload,
  MoneyReceivedItem,
  NewLoginAddressEmailPayload,
  WithdrawalEmailPayload,
} from './notification-email.schema.ts';
import type { RenderedEmail } from './email.templates.ts';

const escapeHtml = (value: string) =>
  value.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');

const paragraphs = (lines: readonly string[]) => lines.map((line) => `<p>${escapeHtml(line)}</p>`).join('\n');

const plain = (to: string, subject: string, lines: readonly string[]): RenderedEmail => ({ to, subject, text: lines.join('\n\n'), html: paragraphs(lines) });

/** 1234 minor units of USD -> "12.34 USD"; JPY has no minor unit: 500 -> "500 JPY". */
export function formatMoney(minor: string | bigint, currency: Currency): string {
  return `${formatMajorUnits(BigInt(minor), currency)} ${currency}`;
}

const who = (username: string | null) => username ?? 'the bank';
const when = (iso: string) => new Date(iso).toUTCString();
const withMemo = (memo: string | null) => (memo ? ` Memo: "${memo}".` : '');

/** Subjects, so tests and people can tell the emails apart. */
export const NOTIFICATION_EMAIL_SUBJECTS = {
  moneyReceived: (item: MoneyReceivedItem) => `You received ${formatMoney(item.amount, item.currency)}`,
  moneyReceivedDigest: (count: number) => `You received ${count} more payment${count === 1 ? '' : 's'}`,
  withdrawal: (payload: WithdrawalEmailPayload) => `Withdrawal of ${formatMoney(payload.amount, payload.currency)}`,
  holdCaptured: (payload: HoldCapturedEmailPayload) => `A hold of ${formatMoney(payload.heldAmount, payload.currency)} was captured`,
  holdExpired: (payload: HoldExpiredEmailPayload) => `Your hold of ${formatMoney(payload.amount, payload.currency)} expired`,
  newLoginAddress: 'New login to your bank account',
} as const;

/** One line per movement: "12.34 USD from bob on <date> (refund). Memo: "lunch"." */
function itemLine(item: MoneyReceivedItem): string {
  const what =
    item.kind === 'transfer' ? '' : item.kind === 'deposit' ? ' (a credit by the bank)' : item.kind === 'capture' ? ' (a hold they placed, captured)' : ` (a ${item.kind})`;
  return `${formatMoney(item.amount, item.currency)} from ${who(item.sender)} into account ${item.accountId} on ${when(item.at)}${what}.${withMemo(item.memo)}`;
}

const SETTINGS_HINT = 'You can turn these emails off in your notification settings (PATCH /v1/users/{username}, notification_settings).';

export function renderMoneyReceivedEmail(payload: MoneyReceivedEmailPayload): RenderedEmail {
  return plain(payload.to, NOTIFICATION_EMAIL_SUBJECTS.moneyReceived(payload.item), [
    `Hello ${payload.fullName},`,
    `You received ${itemLine(payload.item)}`,
    `Transfer: ${payload.item.transferId}`,
    'More payments within the next minute come together in one email.',
    SETTINGS_HINT,
  ]);
}

export function renderMoneyReceivedDigestEmail(payload: MoneyReceivedDigestEmailPayload): RenderedEmail {
  const count = Math.max(payload.count ?? 0, payload.items.length);
  const lines = payload.items.map((item) => `${itemLine(item)} Transfer: ${item.transferId}`);
  const unlisted = count - payload.items.length;
  const summary =
    unlisted > 0
      ? [`The first ${payload.items.length} are listed; ${unlisted} more are in your history.${payload.totals?.length ? ` In all: ${payload.totals.map((t) => formatMoney(t.amount, t.currency)).join(', ')}.` : ''}`]
      : [];
  const intro = `Since ${when(payload.since)} you received ${count} more payment${count === 1 ? '' : 's'}:`;
  return {
    to: payload.to,
    subject: NOTIFICATION_EMAIL_SUBJECTS.moneyReceivedDigest(count),
    text: [`Hello ${payload.fullName},`, intro, lines.map((line) => `- ${line}`).join('\n'), ...summary, SETTINGS_HINT].join('\n\n'),
    html: [
      `<p>Hello ${escapeHtml(payload.fullName)},</p>`,
      `<p>${escapeHtml(intro)}</p>`,
      `<ul>${lines.map((line) => `<li>${escapeHtml(line)}</li>`).join('')}</ul>`,
      ...summary.map((line) => `<p>${escapeHtml(line)}</p>`),
      `<p>${escapeHtml(SETTINGS_HINT)}</p>`,
    ].join('\n'),
  };
}

export function renderWithdrawalEmail(payload: WithdrawalEmailPayload): RenderedEmail {
  return plain(payload.to, NOTIFICATION_EMAIL_SUBJECTS.withdrawal(payload), [
    `Hello ${payload.fullName},`,
    `${formatMoney(payload.amount, payload.currency)} was withdrawn from your account ${payload.accountId} on ${when(payload.at)}${payload.destination ? ` to ${payload.destination}` : ''}.${withMemo(payload.memo)}`,
    `Transfer: ${payload.transferId}`,
    'If you did not ask for this, change your password now and tell us.',
    SETTINGS_HINT,
  ]);
}

export function renderHoldCapturedEmail(payload: HoldCapturedEmailPayload): RenderedEmail {
  const captured = formatMoney(payload.capturedAmount, payload.currency);
  const held = formatMoney(payload.heldAmount, payload.currency);
  const story =
    payload.side === 'sender'
      ? `${captured} of the ${held} you held for ${who(payload.counterparty)} was captured on ${when(payload.at)} and paid to them${payload.capturedAmount === payload.heldAmount ? '' : '; the rest is free again'}.`
      : `${who(payload.counterparty)} paid you ${captured} on ${when(payload.at)}: the capture of a ${held} hold.`;
  return plain(payload.to, NOTIFICATION_EMAIL_SUBJECTS.holdCaptured(payload), [`Hello ${payload.fullName},`, `${story}${withMemo(payload.memo)}`, `Transfer: ${payload.transferId}`, SETTINGS_HINT]);
}

export function renderHoldExpiredEmail(payload: HoldExpiredEmailPayload): RenderedEmail {
  return plain(payload.to, NOTIFICATION_EMAIL_SUBJECTS.holdExpired(payload), [
    `Hello ${payload.fullName},`,
    `The ${formatMoney(payload.amount, payload.currency)} you held for ${who(payload.counterparty)} expired uncaptured on ${when(payload.at)}: nothing was paid and the money is free to spend again.${withMemo(payload.memo)}`,
    `Transfer: ${payload.transferId}`,
    SETTINGS_HINT,
  ]);
}

export function renderNewLoginAddressEmail(payload: NewLoginAddressEmailPayload): RenderedEmail {
  return plain(payload.to, NOTIFICATION_EMAIL_SUBJECTS.newLoginAddress, [
    `Hello ${payload.fullName},`,
    `Your bank account "${payload.username}" was logged in to on ${when(payload.at)} from an address it had not been used from before: ${payload.address}${payload.userAgent ? ` (${payload.userAgent})` : ''}.`,
    `Session: ${payload.sessionId}`,
    'If that was you, you need not do anything. If it was not, change your password now: that logs out every other session.',
    'This is a security notice; it is always sent.',
  ]);
}
