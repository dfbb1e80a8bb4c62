import { describe, expect, it } from '@jest/globals';
import type { BankEvent, EventType } from '../events/events.repository.ts';
import type { Transfer } from '../ledger/ledger.types.ts';
import { formatMoney, renderMoneyReceivedDigestEmail, renderMoneyReceivedEmail, NOTIFICATION_EMAIL_SUBJECTS } from '../mail/notification-email.templates.ts';
import type { MoneyReceivedItem } from '../mail/notification-email.schema.ts';
import { planNotifications } from './notifier.service.ts';

const transfer = (overrides: Partial<Transfer> = {}): Transfer => ({
  id: 7n,
  fromAccountId: 1n,
  toAccountId: 2n,
  amount: 1_234n,
  currency: 'USD',
  kind: 'transfer',
  initiatedBy: 'alice',
  createdAt: new Date('2026-12-01T10:00:00Z'),
  status: 'posted',
  capturedAmount: null,
  expiresAt: null,
  memo: null,
  reference: null,
  metadata: {},
  destination: null,
  reversesTransferId: null,
  refundsTransferId: null,
  ...overrides,
});

const event = (type: EventType, owners: [string | null, string | null], t: Partial<Transfer> = {}): BankEvent => ({
  id: 42n,
  publicId: '00000000-0000-4000-8000-000000000042',
  type,
  createdAt: new Date('2026-12-01T10:00:00Z'),
  accounts: [
    { id: 1n, owner: owners[0] },
    { id: 2n, owner: owners[1] },
  ],
  subject: 'transfer',
  transfer: transfer(t),
});

const who = (e: BankEvent) => planNotifications(e).map((intent) => [intent.username, intent.setting]);

describe('planNotifications', () => {
  it('tells the receiver of a transfer, refund or reversal, and nobody else', () => {
    expect(who(event('transfer.posted', ['alice', 'bob']))).toEqual([['bob', 'moneyReceived']]);
    expect(who(event('transfer.refunded', ['bob', 'alice'], { kind: 'refund', initiatedBy: 'bob' }))).toEqual([['alice', 'moneyReceived']]);
    expect(who(event('transfer.reversed', ['bob', 'alice'], { kind: 'reversal', initiatedBy: 'a_banker' }))).toEqual([['alice', 'moneyReceived']]);
  });

  it("sends nothing for the user's own deposit or a move between their own accounts, and names the bank for a banker's credit", () => {
    expect(who(event('transfer.posted', [null, 'alice'], { kind: 'deposit', initiatedBy: 'alice' }))).toEqual([]);
    expect(who(event('transfer.posted', ['alice', 'alice']))).toEqual([]);
    const [credit] = planNotifications(event('transfer.posted', [null, 'alice'], { kind: 'deposit', initiatedBy: 'a_banker', memo: 'cash' }));
    expect(credit).toMatchObject({ username: 'alice', item: { kind: 'deposit', sender: null, memo: 'cash', amount: '1234', eventId: '42' } });
  });

  it('tells the owner of a withdrawal, both sides of a capture (the recipient as money received; once when they are one user), the sender of an expiry', () => {
    expect(who(event('withdrawal.created', ['alice', null], { kind: 'withdrawal' }))).toEqual([['alice', 'withdrawals']]);
    expect(who(event('transfer.captured', ['alice', 'bob'], { capturedAmount: 500n }))).toEqual([
      ['alice', 'holds'],
      ['bob', 'moneyReceived'],
    ]);
    const [, received] = planNotifications(event('transfer.captured', ['alice', 'bob'], { capturedAmount: 500n, memo: 'order 7' }));
    // The captured part, not the held amount; the payer named; into the recipient's account.
    expect(received).toMatchObject({ username: 'bob', item: { kind: 'capture', amount: '500', sender: 'alice', memo: 'order 7', eventId: '42' } });
    expect(who(event('transfer.captured', ['alice', 'alice']))).toEqual([['alice', 'holds']]);
    expect(who(event('transfer.expired', ['alice', 'bob'], { status: 'expired' }))).toEqual([['alice', 'holds']]);
  });

  it('sends nothing for a pending or voided hold, or money into a system account', () => {
    expect(who(event('transfer.pending', ['alice', 'bob'], { status: 'pending' }))).toEqual([]);
    expect(who(event('transfer.voided', ['alice', 'bob'], { status: 'voided' }))).toEqual([]);
    expect(who(event('transfer.reversed', ['alice', null], { kind: 'reversal' }))).toEqual([]);
  });
});

const item = (overrides: Partial<MoneyReceivedItem> = {}): MoneyReceivedItem => ({
  eventId: '1',
  transferId: '7',
  accountId: '2',
  kind: 'transfer',
  amount: '1234',
  currency: 'USD',
  sender: 'alice',
  memo: null,
  at: '2026-12-01T10:00:00.000Z',
  ...overrides,
});

describe('notification emails', () => {
  it('show amounts in major units of their currency', () => {
    expect(formatMoney('1234', 'USD')).toBe('12.34 USD');
    expect(formatMoney('5', 'EUR')).toBe('0.05 EUR');
    expect(formatMoney(500n, 'JPY')).toBe('500 JPY');
    expect(NOTIFICATION_EMAIL_SUBJECTS.moneyReceived(item({ amount: '100000', currency: 'GBP' }))).toBe('You received 1000.00 GBP');
  });

  it('escape what a sender wrote in the HTML part', () => {
    const email = renderMoneyReceivedEmail({ to: 'bob@example.test', username: 'bob', fullName: 'Bob', item: item({ memo: '<script>alert(1)</script>' }) });
    expect(email.html).not.toContain('<script>');
    expect(email.html).toContain('&lt;script&gt;');
    expect(email.text).toContain('Memo: "<script>alert(1)</script>"');
  });

  it('list every payment of a digest, with a subject that counts them', () => {
    const digest = renderMoneyReceivedDigestEmail({
      to: 'bob@example.test',
      username: 'bob',
      fullName: 'Bob',
      items: [item(), item({ eventId: '2', transferId: '8', amount: '99', sender: null, kind: 'deposit' })],
      since: '2026-12-01T10:00:00.000Z',
      until: '2026-12-01T10:01:00.000Z',
    });
    expect(digest.subject).toBe('You received 2 more payments');
    expect(digest.text).toContain('12.34 USD from alice');
    expect(digest.text).toContain('0.99 USD from the bank');
    expect(digest.text).toContain('Transfer: 8');
    expect(NOTIFICATION_EMAIL_SUBJECTS.moneyReceivedDigest(1)).toBe('You received 1 more payment');
  });
});
