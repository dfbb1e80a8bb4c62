// The notifier on the real database: each cause gives exactly one email row to the right person,
// money received is coalesced per recipient (one at once, one digest per window), two notifiers
// at once never double or drop one, settings hold informational emails back and never security
// ones. The window is closed by an injected clock, not by waiting.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { sql } from 'slonik';
import { z } from 'zod';
import { createCountingPool, createTestDatabase, type TestDatabase } from '../../../test/db.ts';
import { createUser, idemKey } from '../../../test/factories.ts';
import { TEST_REDIS_URL } from '../../../test/services.ts';
import { createBank, type Bank } from '../app/bank.ts';
import type { Actor } from '../auth/actor.ts';
import { generatePasetoKeyPair } from '../auth/token-maker.ts';
import { parseConfig } from '../config/config.ts';
import { eventsRepository } from '../events/events.repository.ts';
import type { Account } from '../ledger/ledger.types.ts';
import { createLogger } from '../logging/logger.ts';
import {
  moneyReceivedDigestEmailPayloadSchema,
  moneyReceivedEmailPayloadSchema,
  SEND_HOLD_CAPTURED_EMAIL,
  SEND_HOLD_EXPIRED_EMAIL,
  SEND_MONEY_RECEIVED_DIGEST_EMAIL,
  SEND_MONEY_RECEIVED_EMAIL,
  SEND_NEW_LOGIN_ADDRESS_EMAIL,
  SEND_WITHDRAWAL_EMAIL,
} from '../mail/notification-email.schema.ts';
import { formatMoney, renderMoneyReceivedDigestEmail } from '../mail/notification-email.templates.ts';
import { SEND_PASSWORD_CHANGED_EMAIL, SEND_EMAIL_CHANGE_NOTICE_EMAIL } from '../mail/email.schema.ts';
import { PermissionDenied } from '../errors/domain-error.ts';
import { noteLoginAddress } from './login-address.ts';
import { DIGEST_MAX_ITEMS, Notifier } from './notifier.service.ts';

const run = randomBytes(4).toString('hex');
const logger = createLogger({ name: 'test', level: 'silent', pretty: false });
const WINDOW_MS = 60_000;

let db: TestDatabase;
let bank: Bank;
let banker: Actor;

beforeAll(async () => {
  db = await createTestDatabase({ poolSize: 10 });
  const keys = await generatePasetoKeyPair();
  const config = parseConfig({
    NODE_ENV: 'test',
    LOG_LEVEL: 'silent',
    DATABASE_URL: db.url,
    REDIS_URL: TEST_REDIS_URL,
    SMTP_URL: 'smtp://127.0.0.1:1',
    PUBLIC_BASE_URL: 'http://bank.test',
    PASETO_SECRET_KEY: keys.secretKey,
    BCRYPT_COST: '4',
    EMAIL_QUEUE_NAME: `test-email-notify-${run}`,
    REDIS_KEY_PREFIX: `test:${run}:`,
  });
  bank = await createBank(config, { pool: db.pool, logger });
  banker = await createUser(db.pool, { role: 'banker' });
});

afterAll(async () => {
  await bank?.queue.obliterate({ force: true }).catch(() => undefined);
  const keys = await bank?.redis.keys(`test:${run}:*`);
  if (keys && keys.length > 0) await bank.redis.del(...keys);
  await bank?.close();
  await db?.drop();
});

/** A clock the test moves: windows close when the test says so. */
function testClock(start = new Date()) {
  let now = start.getTime();
  return { now: () => new Date(now), advance: (ms: number) => (now += ms) };
}

const notifier = (clock = testClock(), options: { batchSize?: number } = {}) =>
  new Notifier({ pool: db.pool, windowMs: WINDOW_MS, clock: clock.now, batchSize: options.batchSize ?? 100, logger });

type Holder = { actor: Actor; account: Account };

async function holder(funds = 0n): Promise<Holder> {
  const actor = await createUser(db.pool);
  const account = await bank.ledger.openAccount(actor, { currency: 'USD' });
  if (funds > 0n) await bank.ledger.deposit(actor, { accountId: account.id, amount: funds, idempotencyKey: idemKey() });
  return { actor, account };
}

const pay = (from: Holder, to: Holder, amount: bigint, extra: { memo?: string; hold?: { ttlSeconds: number } } = {}) =>
  bank.ledger.transfer(from.actor, { fromAccountId: from.account.id, toAccountId: to.account.id, amount, currency: 'USD', idempotencyKey: idemKey(), ...extra });

const emailRow = z.object({ kind: z.string(), payload: z.record(z.string(), z.unknown()) });

/** Every outbox row addressed to the user, oldest first. */
const emailsOf = (who: Holder | Actor) => {
  const username = 'actor' in who ? who.actor.username : who.username;
  return db.pool.any(sql.type(emailRow)`SELECT kind, payload FROM outbox WHERE payload->>'username' = ${username} ORDER BY created_at, id`);
};
const kinds = async (who: Holder | Actor) => (await emailsOf(who)).map((row) => row.kind);

const setSettings = (who: Holder, settings: { moneyReceived?: boolean; withdrawals?: boolean; holds?: boolean }) =>
  bank.users.updateUser(who.actor, who.actor.username, { notificationSettings: settings });

describe('notifier: one email per cause', () => {
  it('tells the receiver of a transfer at once, with amount, sender and memo, and the sender nothing', async () => {
    const alice = await holder(10_000n);
    const bob = await holder();
    const sent = await pay(alice, bob, 1_234n, { memo: 'lunch' });
    await notifier().drain();
    expect(await kinds(alice)).toEqual([]);
    const [row, ...rest] = await emailsOf(bob);
    expect(rest).toEqual([]);
    expect(row?.kind).toBe(SEND_MONEY_RECEIVED_EMAIL);
    expect(moneyReceivedEmailPayloadSchema.parse(row?.payload)).toMatchObject({
      to: `${bob.actor.username}@example.test`,
      item: { transferId: sent.transfer.id.toString(), amount: '1234', currency: 'USD', sender: alice.actor.username, memo: 'lunch', kind: 'transfer' },
    });
    // Handled events are done: a second round writes nothing more.
    await notifier().drain();
    expect(await kinds(bob)).toEqual([SEND_MONEY_RECEIVED_EMAIL]);
  });

  it("sends nothing for the user's own deposit, and a received email for a banker's credit", async () => {
    const carol = await holder(5_000n);
    await notifier().drain();
    expect(await kinds(carol)).toEqual([]);
    await bank.ledger.deposit(banker, { accountId: carol.account.id, amount: 700n, memo: 'cash at the counter', idempotencyKey: idemKey() });
    await notifier().drain();
    const rows = await emailsOf(carol);
    expect(rows.map((r) => r.kind)).toEqual([SEND_MONEY_RECEIVED_EMAIL]);
    expect(rows[0]?.payload).toMatchObject({ item: { kind: 'deposit', sender: null, amount: '700', memo: 'cash at the counter' } });
  });

  it('tells the owner of a withdrawal', async () => {
    const dave = await holder(5_000n);
    const out = await bank.ledger.withdraw(dave.actor, { accountId: dave.account.id, amount: 1_500n, destination: 'DE89370400440532013000', idempotencyKey: idemKey() });
    await notifier().drain();
    const rows = await emailsOf(dave);
    expect(rows.map((r) => r.kind)).toEqual([SEND_WITHDRAWAL_EMAIL]);
    expect(rows[0]?.payload).toMatchObject({ transferId: out.transfer.id.toString(), amount: '1500', destination: 'DE89370400440532013000' });
  });

  it('tells both sides of a captured hold once each (the recipient as money received), the sender of an expired one, and nobody of a pending or voided one', async () => {
    const alice = await holder(10_000n);
    const bob = await holder();
    const held = await pay(alice, bob, 500n, { hold: { ttlSeconds: 600 } });
    const voided = await pay(alice, bob, 50n, { hold: { ttlSeconds: 600 } });
    await bank.ledger.voidTransfer(alice.actor, { transferId: voided.transfer.id, idempotencyKey: idemKey() });
    await notifier().drain();
    expect([await kinds(alice), await kinds(bob)]).toEqual([[], []]);

    await bank.ledger.captureTransfer(alice.actor, { transferId: held.transfer.id, amount: 300n, idempotencyKey: idemKey() });
    const expiring = await pay(alice, bob, 40n, { hold: { ttlSeconds: 1 } });
    await db.pool.query(sql.unsafe`SELECT pg_sleep(1.1)`);
    await db.pool.query(sql.unsafe`SELECT ledger_expire_holds(100)`);
    await notifier().drain();

    const aliceRows = await emailsOf(alice);
    const bobRows = await emailsOf(bob);
    expect(aliceRows.map((r) => r.kind).sort()).toEqual([SEND_HOLD_CAPTURED_EMAIL, SEND_HOLD_EXPIRED_EMAIL].sort());
    // bob's capture opened his money-received window (the email at once); the expired hold moved nothing to him.
    expect(bobRows.map((r) => r.kind)).toEqual([SEND_MONEY_RECEIVED_EMAIL]);
    expect(aliceRows.find((r) => r.kind === SEND_HOLD_CAPTURED_EMAIL)?.payload).toMatchObject({ side: 'sender', heldAmount: '500', capturedAmount: '300', counterparty: bob.actor.username });
    expect(bobRows[0]?.payload).toMatchObject({ item: { kind: 'capture', amount: '300', sender: alice.actor.username, transferId: held.transfer.id.toString() } });
    expect(aliceRows.find((r) => r.kind === SEND_HOLD_EXPIRED_EMAIL)?.payload).toMatchObject({ transferId: expiring.transfer.id.toString(), amount: '40' });
  });

  it('a merchant capturing many holds in a window gets one email at once and one digest; each payer one email per capture', async () => {
    const shop = await holder();
    const payers = [await holder(10_000n), await holder(10_000n)];
    const clock = testClock();
    const holds = [];
    for (let i = 0; i < 6; i++) holds.push(await pay(payers[i % 2]!, shop, 100n + BigInt(i), { hold: { ttlSeconds: 600 } }));
    for (const [i, held] of holds.entries()) {
      await bank.ledger.captureTransfer(payers[i % 2]!.actor, { transferId: held.transfer.id, idempotencyKey: idemKey() });
    }
    await notifier(clock).drain();
    clock.advance(WINDOW_MS);
    await notifier(clock).drain();
    const shopRows = await emailsOf(shop);
    expect(shopRows.map((r) => r.kind)).toEqual([SEND_MONEY_RECEIVED_EMAIL, SEND_MONEY_RECEIVED_DIGEST_EMAIL]);
    expect(shopRows[0]?.payload).toMatchObject({ item: { kind: 'capture', amount: '100', sender: payers[0]!.actor.username } });
    const digest = moneyReceivedDigestEmailPayloadSchema.parse(shopRows[1]?.payload);
    expect(digest.items.map((item) => [item.kind, item.amount])).toEqual([101n, 102n, 103n, 104n, 105n].map((amount) => ['capture', amount.toString()]));
    for (const payer of payers) expect(await kinds(payer)).toEqual([SEND_HOLD_CAPTURED_EMAIL, SEND_HOLD_CAPTURED_EMAIL, SEND_HOLD_CAPTURED_EMAIL]);
  });

  it('tells the receiver of a refund and of a reversal', async () => {
    const alice = await holder(10_000n);
    const bob = await holder();
    const paid = await pay(alice, bob, 1_000n);
    await notifier().drain();
    await bank.ledger.refundTransfer(bob.actor, { transferId: paid.transfer.id, amount: 200n, idempotencyKey: idemKey() });
    const clock = testClock();
    await notifier(clock).drain();
    const again = await pay(alice, bob, 100n);
    await bank.ledger.reverseTransfer(banker, { transferId: again.transfer.id, memo: 'sent in error', idempotencyKey: idemKey() });
    clock.advance(WINDOW_MS * 2);
    await notifier(clock).drain();
    const aliceItems = (await emailsOf(alice)).map((r) => (r.kind === SEND_MONEY_RECEIVED_EMAIL ? [r.payload.item] : (r.payload.items as unknown[])));
    expect(aliceItems.flat()).toMatchObject([
      { kind: 'refund', amount: '200', sender: bob.actor.username },
      { kind: 'reversal', amount: '100', sender: bob.actor.username },
    ]);
  });
});

describe('notifier: money received is coalesced per recipient', () => {
  it('three transfers within the window: one email at once, then one digest with the other two when the window closes', async () => {
    const alice = await holder(10_000n);
    const bob = await holder();
    const clock = testClock();
    const transfers = [await pay(alice, bob, 100n), await pay(alice, bob, 200n), await pay(alice, bob, 300n)];
    await notifier(clock).drain();
    expect(await kinds(bob)).toEqual([SEND_MONEY_RECEIVED_EMAIL]);

    // Still inside the window: nothing more.
    clock.advance(WINDOW_MS - 1);
    await notifier(clock).drain();
    expect(await kinds(bob)).toEqual([SEND_MONEY_RECEIVED_EMAIL]);

    clock.advance(1);
    await notifier(clock).drain();
    const [first, digest, ...rest] = await emailsOf(bob);
    expect(rest).toEqual([]);
    expect(moneyReceivedEmailPayloadSchema.parse(first?.payload).item.transferId).toBe(transfers[0]?.transfer.id.toString());
    expect(digest?.kind).toBe(SEND_MONEY_RECEIVED_DIGEST_EMAIL);
    const items = moneyReceivedDigestEmailPayloadSchema.parse(digest?.payload).items;
    expect(items.map((i) => [i.transferId, i.amount])).toEqual([
      [transfers[1]?.transfer.id.toString(), '200'],
      [transfers[2]?.transfer.id.toString(), '300'],
    ]);

    // The window is over: the next payment is emailed at once again, and a quiet window sends no digest.
    await pay(alice, bob, 400n);
    await notifier(clock).drain();
    clock.advance(WINDOW_MS);
    await notifier(clock).drain();
    expect(await kinds(bob)).toEqual([SEND_MONEY_RECEIVED_EMAIL, SEND_MONEY_RECEIVED_DIGEST_EMAIL, SEND_MONEY_RECEIVED_EMAIL]);
  });

  it('a payment that finds its window closed but not yet flushed sends that digest, then opens the next window', async () => {
    const alice = await holder(10_000n);
    const bob = await holder();
    const clock = testClock();
    await pay(alice, bob, 1n);
    await notifier(clock).handleEvents();
    await pay(alice, bob, 2n);
    await notifier(clock).handleEvents();
    clock.advance(WINDOW_MS);
    await pay(alice, bob, 3n);
    await notifier(clock).handleEvents();
    // The digest and the new email are written in one transaction (same created_at): compare as sets.
    const rows = await emailsOf(bob);
    expect(rows.map((r) => r.kind).sort()).toEqual([SEND_MONEY_RECEIVED_DIGEST_EMAIL, SEND_MONEY_RECEIVED_EMAIL, SEND_MONEY_RECEIVED_EMAIL]);
    expect(rows.filter((r) => r.kind === SEND_MONEY_RECEIVED_DIGEST_EMAIL).map((r) => r.payload)).toMatchObject([{ items: [{ amount: '2' }] }]);
    expect(rows.filter((r) => r.kind === SEND_MONEY_RECEIVED_EMAIL).map((r) => r.payload)).toMatchObject([{ item: { amount: '1' } }, { item: { amount: '3' } }]);
  });

  it('a busy window lists its first DIGEST_MAX_ITEMS payments and counts and sums them all, over several batches', async () => {
    const alice = await holder(1_000_000n);
    const bob = await holder();
    const clock = testClock();
    const n = DIGEST_MAX_ITEMS + 25;
    const paid: string[] = [];
    for (let i = 1; i <= n; i += 1) paid.push((await pay(alice, bob, BigInt(i))).transfer.id.toString());
    // Batches of 7: the window is written once per batch, the first payment emailed at once.
    const busy = notifier(clock, { batchSize: 7 });
    await busy.drain();
    const window = await db.pool.one(sql.type(z.object({ listed: z.number(), item_count: z.number(), totals: z.record(z.string(), z.string()) }))`
      SELECT jsonb_array_length(items) AS listed, item_count, totals FROM notification_windows WHERE username = ${bob.actor.username}`);
    const others = (n * (n + 1)) / 2 - 1;
    expect(window).toEqual({ listed: DIGEST_MAX_ITEMS, item_count: n - 1, totals: { USD: String(others) } });

    clock.advance(WINDOW_MS);
    await busy.drain();
    const [first, digest, ...rest] = await emailsOf(bob);
    expect(rest).toEqual([]);
    expect(moneyReceivedEmailPayloadSchema.parse(first?.payload).item.transferId).toBe(paid[0]);
    const payload = moneyReceivedDigestEmailPayloadSchema.parse(digest?.payload);
    expect(payload.items.map((i) => i.transferId)).toEqual(paid.slice(1, 1 + DIGEST_MAX_ITEMS));
    expect(payload.count).toBe(n - 1);
    expect(payload.totals).toEqual([{ currency: 'USD', amount: String(others) }]);
    const rendered = renderMoneyReceivedDigestEmail(payload);
    expect(rendered.subject).toBe(`You received ${n - 1} more payments`);
    expect(rendered.text).toContain(`The first ${DIGEST_MAX_ITEMS} are listed; ${n - 1 - DIGEST_MAX_ITEMS} more are in your history. In all: ${formatMoney(BigInt(others), 'USD')}.`);
  });

  it('one batch with many payments to several recipients, one of them with a closed window: each told once of each', async () => {
    const payer = await holder(1_000_000n);
    const [ann, ben, cat] = [await holder(), await holder(), await holder()];
    const clock = testClock();
    await pay(payer, cat, 1n);
    await notifier(clock).drain(); // cat's window opens
    await pay(payer, cat, 2n);
    await notifier(clock).drain(); // and gathers one
    clock.advance(WINDOW_MS); // closed, not flushed: the next batch finds it so
    for (let i = 0; i < 5; i += 1) for (const who of [ann, ben, cat]) await pay(payer, who, BigInt(10 + i));
    await notifier(clock).handleEvents();
    expect(await kinds(ann)).toEqual([SEND_MONEY_RECEIVED_EMAIL]);
    expect(await kinds(ben)).toEqual([SEND_MONEY_RECEIVED_EMAIL]);
    const catRows = await emailsOf(cat);
    expect(catRows.map((r) => r.kind).sort()).toEqual([SEND_MONEY_RECEIVED_DIGEST_EMAIL, SEND_MONEY_RECEIVED_EMAIL, SEND_MONEY_RECEIVED_EMAIL]);
    expect(catRows.find((r) => r.kind === SEND_MONEY_RECEIVED_DIGEST_EMAIL)?.payload).toMatchObject({ items: [{ amount: '2' }], count: 1 });
    clock.advance(WINDOW_MS);
    await notifier(clock).drain();
    for (const who of [ann, ben, cat]) {
      const digests = (await emailsOf(who)).filter((r) => r.kind === SEND_MONEY_RECEIVED_DIGEST_EMAIL).map((r) => moneyReceivedDigestEmailPayloadSchema.parse(r.payload));
      const last = digests[digests.length - 1];
      expect(last?.items.map((i) => i.amount)).toEqual(['11', '12', '13', '14']);
      expect(last?.count).toBe(4);
      expect(last?.totals).toBeUndefined();
    }
  });

  it("writes a round's emails, and a flush's digests, into the outbox in one statement each, every id given back", async () => {
    const counted = await createCountingPool(db.url, { inserts: 'INSERT INTO outbox' }, { maximumPoolSize: 2 });
    try {
      const payer = await holder(1_000_000n);
      const receivers = [await holder(), await holder(), await holder(), await holder()];
      for (const receiver of receivers) for (const amount of [5n, 6n]) await pay(payer, receiver, amount);
      const clock = testClock();
      const counting = new Notifier({ pool: counted.pool, windowMs: WINDOW_MS, clock: clock.now, batchSize: 100, logger });
      await new Notifier({ pool: db.pool, clock: clock.now, logger }).drain(); // events written before this test
      counted.reset();
      // The events above were handled by the line before; these are this round's.
      for (const receiver of receivers) await pay(payer, receiver, 7n);
      clock.advance(WINDOW_MS);
      const round = await counting.handleEvents();
      expect(counted.counts.inserts).toBe(1);
      // Each receiver's window had closed: its digest (5 and 6) and the new payment's email, at once.
      expect(round.written).toEqual({ [SEND_MONEY_RECEIVED_DIGEST_EMAIL]: 4, [SEND_MONEY_RECEIVED_EMAIL]: 4 });
      const written = await db.pool.any(sql.type(z.object({ id: z.string(), kind: z.string() }))`
        SELECT id::text, kind FROM outbox WHERE id = ANY (${sql.array(round.outboxIds, 'uuid')})`);
      expect(written).toHaveLength(8);
      for (const receiver of receivers) {
        const rows = await emailsOf(receiver);
        expect(rows.map((r) => r.kind).sort()).toEqual([SEND_MONEY_RECEIVED_DIGEST_EMAIL, SEND_MONEY_RECEIVED_EMAIL, SEND_MONEY_RECEIVED_EMAIL]);
        const digest = rows.find((r) => r.kind === SEND_MONEY_RECEIVED_DIGEST_EMAIL);
        expect(moneyReceivedDigestEmailPayloadSchema.parse(digest?.payload).items.map((i) => i.amount)).toEqual(['6']);
        const atOnce = rows.filter((r) => r.kind === SEND_MONEY_RECEIVED_EMAIL).map((r) => moneyReceivedEmailPayloadSchema.parse(r.payload).item.amount);
        expect(atOnce.sort()).toEqual(['5', '7']);
      }
      // Two more payments each go into the windows just opened; closing them writes four digests at once.
      for (const receiver of receivers) for (const amount of [8n, 9n]) await pay(payer, receiver, amount);
      counted.reset();
      expect((await counting.handleEvents()).outboxIds).toEqual([]);
      clock.advance(WINDOW_MS);
      const flushed = await counting.flushClosedWindows();
      expect([flushed.windows, flushed.outboxIds.length, counted.counts.inserts]).toEqual([4, 4, 1]);
      for (const receiver of receivers) {
        const digests = (await emailsOf(receiver)).filter((r) => r.kind === SEND_MONEY_RECEIVED_DIGEST_EMAIL);
        expect(digests.map((r) => moneyReceivedDigestEmailPayloadSchema.parse(r.payload).items.map((i) => i.amount)).sort()).toEqual([['6'], ['8', '9']]);
      }
    } finally {
      await counted.pool.end();
    }
  });

  it('two notifiers at once never send a payment twice or drop one, and each window gives one digest', async () => {
    const payer = await holder(1_000_000n);
    const receivers = [await holder(), await holder(), await holder()];
    const paid = new Map<string, string[]>(receivers.map((r) => [r.actor.username, []]));
    for (let i = 0; i < 10; i += 1) {
      for (const receiver of receivers) {
        const result = await pay(payer, receiver, BigInt(i + 1));
        paid.get(receiver.actor.username)?.push(result.transfer.id.toString());
      }
    }
    const clock = testClock();
    const a = notifier(clock, { batchSize: 4 });
    const b = notifier(clock, { batchSize: 4 });
    await Promise.all([a.drain(), b.drain()]);
    // A notifier stops at a short batch, which SKIP LOCKED may give it while the other holds rows.
    await Promise.all([a.drain(), b.drain()]);
    expect(await eventsRepository.backlog(db.pool, 'notifications')).toBe(0);
    clock.advance(WINDOW_MS);
    await Promise.all([a.flushClosedWindows(), b.flushClosedWindows(), a.flushClosedWindows(), b.flushClosedWindows()]);
    await Promise.all([a.drain(), b.drain()]);

    for (const receiver of receivers) {
      const rows = await emailsOf(receiver);
      expect(rows.map((r) => r.kind).sort()).toEqual([SEND_MONEY_RECEIVED_DIGEST_EMAIL, SEND_MONEY_RECEIVED_EMAIL]);
      const told = rows.flatMap((r) =>
        r.kind === SEND_MONEY_RECEIVED_EMAIL
          ? [moneyReceivedEmailPayloadSchema.parse(r.payload).item.transferId]
          : moneyReceivedDigestEmailPayloadSchema.parse(r.payload).items.map((i) => i.transferId),
      );
      expect(told.sort()).toEqual([...(paid.get(receiver.actor.username) ?? [])].sort());
    }
  });
});

describe('notification settings', () => {
  it('hold back the informational kinds a user turned off, and only those', async () => {
    const alice = await holder(10_000n);
    const bob = await holder();
    await setSettings(bob, { moneyReceived: false });
    await setSettings(alice, { holds: false });
    await pay(alice, bob, 100n);
    const held = await pay(alice, bob, 50n, { hold: { ttlSeconds: 600 } });
    await bank.ledger.captureTransfer(alice.actor, { transferId: held.transfer.id, idempotencyKey: idemKey() });
    await bank.ledger.withdraw(alice.actor, { accountId: alice.account.id, amount: 10n, destination: 'DE89370400440532013000', idempotencyKey: idemKey() });
    await notifier().drain();
    // bob: no "received", the capture included (money received for him; his holds switch is for his
    // own holds); alice: the withdrawal, not the capture.
    expect(await kinds(bob)).toEqual([]);
    expect(await kinds(alice)).toEqual([SEND_WITHDRAWAL_EMAIL]);

    // Turned back on, the next payment is told again.
    const user = await setSettings(bob, { moneyReceived: true });
    expect(user.notificationSettings).toEqual({ moneyReceived: true, withdrawals: true, holds: true });
    await pay(alice, bob, 100n);
    await notifier().drain();
    expect(await kinds(bob)).toEqual([SEND_MONEY_RECEIVED_EMAIL]);
  });

  it('a digest gathered before the switch was turned off is not sent', async () => {
    const alice = await holder(10_000n);
    const bob = await holder();
    const clock = testClock();
    await pay(alice, bob, 1n);
    await pay(alice, bob, 2n);
    await notifier(clock).drain();
    await setSettings(bob, { moneyReceived: false });
    clock.advance(WINDOW_MS);
    await notifier(clock).drain();
    expect(await kinds(bob)).toEqual([SEND_MONEY_RECEIVED_EMAIL]);
  });

  it('keeps a setting left out of an update, and lets only the user or a banker change them', async () => {
    const erin = await holder();
    const other = await holder();
    await setSettings(erin, { withdrawals: false });
    expect((await setSettings(erin, { holds: false })).notificationSettings).toEqual({ moneyReceived: true, withdrawals: false, holds: false });
    await expect(bank.users.updateUser(other.actor, erin.actor.username, { notificationSettings: { holds: true } })).rejects.toBeInstanceOf(PermissionDenied);
    const byBanker = await bank.users.updateUser(banker, erin.actor.username, { notificationSettings: { holds: true } });
    expect(byBanker.notificationSettings).toEqual({ moneyReceived: true, withdrawals: false, holds: true });
    // A banker changes notifications only, never another user's profile.
    await expect(bank.users.updateUser(banker, erin.actor.username, { fullName: 'Not Erin' })).rejects.toBeInstanceOf(PermissionDenied);
    expect((await bank.users.getUser(erin.actor, erin.actor.username)).notificationSettings).toEqual({ moneyReceived: true, withdrawals: false, holds: true });
    await expect(bank.users.updateUser(erin.actor, erin.actor.username, { notificationSettings: {} })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });
});

describe('security notifications always go', () => {
  const login = async (user: Actor, clientIp: string) => {
    const found = await bank.users.getUser(user, user.username);
    return db.pool.transaction((tx) => noteLoginAddress(tx, { user: found, sessionId: '00000000-0000-4000-8000-000000000001', clientIp, userAgent: 'test-agent' }));
  };

  it('a login from an address not used before emails the user, the first login and a known address do not, whatever the settings', async () => {
    const frank = await holder();
    await setSettings(frank, { moneyReceived: false, withdrawals: false, holds: false });
    expect(await login(frank.actor, '198.51.100.7')).toBeUndefined(); // the first address: nothing to compare with
    expect(await login(frank.actor, '198.51.100.7')).toBeUndefined();
    expect(await login(frank.actor, '203.0.113.9')).toEqual(expect.any(String));
    expect(await login(frank.actor, '203.0.113.9')).toBeUndefined();
    // An IPv6 privacy address that changed within its /64 is the same address.
    expect(await login(frank.actor, '2001:db8:1:2::a')).toEqual(expect.any(String));
    expect(await login(frank.actor, '2001:db8:1:2::b')).toBeUndefined();
    const rows = await emailsOf(frank);
    expect(rows.map((r) => r.kind)).toEqual([SEND_NEW_LOGIN_ADDRESS_EMAIL, SEND_NEW_LOGIN_ADDRESS_EMAIL]);
    expect(rows[0]?.payload).toMatchObject({ to: `${frank.actor.username}@example.test`, address: '203.0.113.9', userAgent: 'test-agent' });
  });

  it('password changed and email change notices ignore the settings, and the notice goes to the old address', async () => {
    const username = `n${run}_pw`;
    await bank.users.signUp({ username, fullName: 'Grace', email: `${username}@example.test`, password: 'correct horse battery' });
    await db.pool.query(sql.unsafe`UPDATE users SET is_email_verified = true WHERE username = ${username}`);
    const grace: Actor = { username, role: 'depositor' };
    await bank.users.updateUser(grace, username, { notificationSettings: { moneyReceived: false, withdrawals: false, holds: false } });
    await bank.users.updateUser(grace, username, { password: 'another long password', currentPassword: 'correct horse battery' });
    await bank.users.updateUser(grace, username, { email: `${username}-new@example.test`, currentPassword: 'another long password' });
    const rows = await emailsOf(grace);
    expect(rows.filter((r) => r.kind === SEND_PASSWORD_CHANGED_EMAIL).map((r) => r.payload.to)).toEqual([`${username}@example.test`]);
    expect(rows.filter((r) => r.kind === SEND_EMAIL_CHANGE_NOTICE_EMAIL).map((r) => r.payload.to)).toEqual([`${username}@example.test`]);
  });
});
