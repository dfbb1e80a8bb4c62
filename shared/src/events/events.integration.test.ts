// Events on the real database (migration 0013): every cause writes its event in its own
// transaction, with the row as it was; consumers claim disjoint batches and mark them done.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { sql } from 'slonik';
import { z } from 'zod';
import { createTestDatabase, type TestDatabase } from '../../../test/db.ts';
import { createUser, fundedHolder, idemKey, type Holder } from '../../../test/factories.ts';
import type { Actor } from '../auth/actor.ts';
import { LedgerService } from '../ledger/ledger.service.ts';
import { eventsRepository, type BankEvent } from './events.repository.ts';

let db: TestDatabase;
let ledger: LedgerService;
let banker: Actor;

beforeAll(async () => {
  db = await createTestDatabase();
  ledger = new LedgerService({ pool: db.pool });
  banker = await createUser(db.pool, { role: 'banker' });
});
afterAll(async () => {
  await db?.drop();
});

const funded = (amount: bigint) => fundedHolder(db.pool, ledger, amount);

const send = (from: Holder, to: Holder, amount: bigint, extra: Partial<Parameters<LedgerService['transfer']>[1]> = {}) =>
  ledger.transfer(from.actor, { fromAccountId: from.account.id, toAccountId: to.account.id, amount, currency: 'USD', idempotencyKey: idemKey(), ...extra });

/** Claims (and so marks done) everything the consumer has not handled: the events since the last call. */
const drain = (consumer: 'notifications' | 'webhooks') => db.pool.transaction((tx) => eventsRepository.claim(tx, consumer, 1_000));

/** Every event written after the one with id `afterId`, in id order, whoever has handled it. */
async function writtenAfter(afterId: bigint): Promise<BankEvent[]> {
  const ids = await db.pool.anyFirst(sql.type(z.object({ public_id: z.string() }))`SELECT public_id FROM events WHERE id > ${afterId} ORDER BY id`);
  return (await Promise.all(ids.map((id) => eventsRepository.findByPublicId(db.pool, id)))).filter((e): e is BankEvent => e !== null);
}
const lastEventId = () => db.pool.oneFirst(sql.type(z.object({ id: z.bigint() }))`SELECT coalesce(max(id), 0)::bigint AS id FROM events`);

/**
 * A webhook of `owner` for `types` (as the create call stores it), so that those events of the
 * owner's accounts (of every account with `allAccounts`) wait for the fan-out.
 */
async function webhookFor(owner: Actor, types: string[], allAccounts = false): Promise<bigint> {
  return db.pool.oneFirst(sql.type(z.object({ id: z.bigint() }))`
    INSERT INTO webhooks (owner, url, event_types, all_accounts, signing_secret)
    VALUES (${owner.username}, 'https://hooks.example.test/bank', ${sql.array(types, 'text')}, ${allAccounts}, 'whsec_test') RETURNING id`);
}
const dropWebhook = (id: bigint) => db.pool.query(sql.unsafe`DELETE FROM webhooks WHERE id = ${id}`);

const concerning = (events: BankEvent[], accountId: bigint) => events.filter((e) => e.accounts.some((a) => a.id === accountId));

describe('events', () => {
  it('writes one event per cause, typed, with the transfer as it was at the time', async () => {
    const before = await lastEventId();
    const alice = await funded(1_000n);
    const bob = await funded(0n);
    const posted = await send(alice, bob, 100n, { memo: 'lunch', reference: 'R-1' });
    const held = await send(alice, bob, 300n, { hold: { ttlSeconds: 600 } });
    await ledger.captureTransfer(alice.actor, { transferId: held.transfer.id, amount: 200n, idempotencyKey: idemKey() });
    const voided = await send(alice, bob, 50n, { hold: { ttlSeconds: 600 } });
    await ledger.voidTransfer(alice.actor, { transferId: voided.transfer.id, idempotencyKey: idemKey() });
    await ledger.withdraw(alice.actor, { accountId: alice.account.id, amount: 10n, destination: 'DE89370400440532013000', idempotencyKey: idemKey() });
    await ledger.reverseTransfer(banker, { transferId: posted.transfer.id, memo: 'mistake', idempotencyKey: idemKey() });
    await ledger.freezeAccount(banker, { accountId: bob.account.id, reason: 'review' });
    await ledger.unfreezeAccount(banker, { accountId: bob.account.id, reason: 'cleared' });

    const all = (await writtenAfter(before)).filter((e) => e.accounts.some((a) => a.id === alice.account.id || a.id === bob.account.id));
    expect(all.map((e) => e.type)).toEqual([
      'transfer.posted', // the deposit
      'transfer.posted',
      'transfer.pending',
      'transfer.captured',
      'transfer.pending',
      'transfer.voided',
      'withdrawal.created',
      'transfer.reversed',
      'account.frozen',
      'account.unfrozen',
    ]);
    const [deposit, first, pending, captured] = all;
    expect(deposit?.accounts.map((a) => a.owner)).toEqual([null, alice.actor.username]);
    expect(first).toMatchObject({
      subject: 'transfer',
      transfer: { id: posted.transfer.id, amount: 100n, memo: 'lunch', reference: 'R-1', status: 'posted', kind: 'transfer', metadata: {} },
      accounts: [{ id: alice.account.id, owner: alice.actor.username }, { id: bob.account.id, owner: bob.actor.username }],
    });
    // The row as it was: the pending event keeps status pending though the hold was captured since.
    expect(pending).toMatchObject({ transfer: { status: 'pending', capturedAmount: null } });
    expect(pending?.subject === 'transfer' && pending.transfer.expiresAt).toBeInstanceOf(Date);
    expect(captured).toMatchObject({ transfer: { status: 'posted', capturedAmount: 200n } });
    expect(all.at(-2)).toMatchObject({ subject: 'account', account: { id: bob.account.id, status: 'frozen', balance: 200n, availableBalance: 200n } });
    expect(new Set(all.map((e) => e.publicId)).size).toBe(all.length);
  });

  it('writes nothing for a refused or replayed call', async () => {
    const alice = await funded(100n);
    const bob = await funded(0n);
    await drain('notifications');
    const key = idemKey();
    await send(alice, bob, 10n, { idempotencyKey: key });
    await send(alice, bob, 10n, { idempotencyKey: key });
    await expect(send(alice, bob, 1_000n)).rejects.toMatchObject({ code: 'INSUFFICIENT_FUNDS' });
    expect(concerning(await drain('notifications'), alice.account.id).map((e) => e.type)).toEqual(['transfer.posted']);
  });

  it('lets each consumer keep its own progress, and two instances of one consumer claim disjoint events', async () => {
    const alice = await funded(1_000n);
    const bob = await funded(0n);
    const webhook = await webhookFor(bob.actor, ['transfer.posted']);
    await drain('notifications');
    await drain('webhooks');
    for (let i = 0; i < 6; i += 1) await send(alice, bob, 1n);
    await dropWebhook(webhook);

    // Two transactions of the same consumer at once: SKIP LOCKED splits the work.
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let firstClaimed!: (ids: bigint[]) => void;
    const firstIds = new Promise<bigint[]>((resolve) => (firstClaimed = resolve));
    const first = db.pool.transaction(async (tx) => {
      const events = await eventsRepository.claim(tx, 'notifications', 3);
      firstClaimed(events.map((e) => e.id));
      await held;
    });
    const a = await firstIds;
    const b = await db.pool.transaction(async (tx) => {
      const events = await eventsRepository.claim(tx, 'notifications', 100);
      return events.map((e) => e.id);
    });
    release();
    await first;
    expect(a).toHaveLength(3);
    expect(b).toHaveLength(3);
    expect(a.filter((id) => b.includes(id))).toEqual([]);
    expect(await eventsRepository.backlog(db.pool, 'notifications')).toBe(0);

    // The webhooks consumer has not seen them yet (a webhook asks for them: see below for none).
    expect(await eventsRepository.backlog(db.pool, 'webhooks')).toBe(6);
    const forWebhooks = await drain('webhooks');
    expect(forWebhooks.map((e) => e.id).sort()).toEqual([...a, ...b].sort());
    const found = await eventsRepository.findByPublicId(db.pool, forWebhooks[0]!.publicId);
    expect(found).toMatchObject({ id: forWebhooks[0]!.id, type: 'transfer.posted' });
    await expect(eventsRepository.findByPublicId(db.pool, '00000000-0000-4000-8000-000000000000')).resolves.toBeNull();
  });

  it('a claim rolled back (the consumer failed) leaves its events to be claimed again, in id order', async () => {
    const alice = await funded(10n);
    const bob = await funded(0n);
    await drain('notifications');
    for (let i = 0; i < 3; i += 1) await send(alice, bob, 1n);
    const failed = db.pool.transaction(async (tx) => {
      const events = await eventsRepository.claim(tx, 'notifications', 100);
      expect(events).toHaveLength(3);
      throw new Error('the consumer failed');
    });
    await expect(failed).rejects.toThrow('the consumer failed');
    expect(await eventsRepository.backlog(db.pool, 'notifications')).toBe(3);
    const again = await drain('notifications');
    expect(again.map((e) => e.id)).toEqual([...again.map((e) => e.id)].sort((x, y) => (x < y ? -1 : 1)));
    expect(again).toHaveLength(3);
    expect(await eventsRepository.backlog(db.pool, 'notifications')).toBe(0);
  });

  it('records expiry by the sweep as transfer.expired', async () => {
    const alice = await funded(100n);
    const bob = await funded(0n);
    const held = await send(alice, bob, 40n, { hold: { ttlSeconds: 1 } });
    await drain('notifications');
    // Let the hold's deadline pass on the database's clock, then sweep as the worker does.
    await db.pool.query(sql.unsafe`SELECT pg_sleep(1.1)`);
    await db.pool.query(sql.unsafe`SELECT ledger_expire_holds(100)`);
    const events = concerning(await drain('notifications'), alice.account.id);
    expect(events).toMatchObject([{ type: 'transfer.expired', transfer: { id: held.transfer.id, status: 'expired' } }]);
    const stored = await db.pool.oneFirst(sql.type(z.object({ n: z.number() }))`
      SELECT count(*)::int AS n FROM events WHERE transfer_id = ${held.transfer.id}`);
    expect(stored).toBe(2);
  });

  it('writes an event nobody will read as already handled: no email for pending, voided or freezes; no webhook asking for its type on one of its accounts', async () => {
    const alice = await funded(1_000n);
    const bob = await funded(0n);
    // Bob's webhook asks for withdrawals, but Alice's withdrawal touches none of his accounts;
    // Alice's asks for her posted transfers.
    const other = await webhookFor(bob.actor, ['withdrawal.created']);
    const mine = await webhookFor(alice.actor, ['transfer.posted']);
    await drain('notifications');
    await drain('webhooks');
    const before = await lastEventId();
    await send(alice, bob, 5n);
    const voided = await send(alice, bob, 7n, { hold: { ttlSeconds: 600 } });
    await ledger.voidTransfer(alice.actor, { transferId: voided.transfer.id, idempotencyKey: idemKey() });
    await ledger.freezeAccount(banker, { accountId: bob.account.id, reason: 'review' });
    await ledger.unfreezeAccount(banker, { accountId: bob.account.id, reason: 'cleared' });
    await ledger.withdraw(alice.actor, { accountId: alice.account.id, amount: 3n, destination: 'DE89370400440532013000', idempotencyKey: idemKey() });
    const marks = await db.pool.any(sql.type(z.object({ type: z.string(), notified: z.boolean(), webhooked: z.boolean() }))`
      SELECT type, notified_at IS NOT NULL AS notified, webhooked_at IS NOT NULL AS webhooked FROM events WHERE id > ${before} ORDER BY id`);
    expect(marks).toEqual([
      { type: 'transfer.posted', notified: false, webhooked: false },
      { type: 'transfer.pending', notified: true, webhooked: true },
      { type: 'transfer.voided', notified: true, webhooked: true },
      { type: 'account.frozen', notified: true, webhooked: true },
      { type: 'account.unfrozen', notified: true, webhooked: true },
      { type: 'withdrawal.created', notified: false, webhooked: true },
    ]);
    // What is left is claimed as before.
    expect((await drain('notifications')).filter((e) => e.id > before).map((e) => e.type)).toEqual(['transfer.posted', 'withdrawal.created']);
    expect((await drain('webhooks')).filter((e) => e.id > before).map((e) => e.type)).toEqual(['transfer.posted']);

    // A banker's webhook for all accounts waits for every event of its types.
    const everyone = await webhookFor(banker, ['withdrawal.created'], true);
    const afterBanker = await lastEventId();
    await ledger.withdraw(alice.actor, { accountId: alice.account.id, amount: 2n, destination: 'DE89370400440532013000', idempotencyKey: idemKey() });
    expect((await drain('webhooks')).filter((e) => e.id > afterBanker).map((e) => e.type)).toEqual(['withdrawal.created']);
    await Promise.all([dropWebhook(other), dropWebhook(mine), dropWebhook(everyone)]);
  });

  it('asks whether a webhook wants an event through a plan kept by the connection, which still sees webhooks made and dropped after it', async () => {
    // Migration 0021: plpgsql keeps its query's plan; a SQL body was planned again by every statement.
    const language = await db.pool.oneFirst(sql.type(z.object({ lanname: z.string() }))`
      SELECT l.lanname FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang WHERE p.proname = 'events_wanted_by_webhook'`);
    expect(language).toBe('plpgsql');
    const carol = await funded(0n);
    const dave = await funded(0n);
    // One connection throughout: its cached plan must answer from the rows as they are now.
    const answers = await db.pool.connect(async (connection) => {
      const wanted = () =>
        connection.oneFirst(sql.type(z.object({ wanted: z.boolean() }))`
          SELECT events_wanted_by_webhook('transfer.posted', ${sql.array([String(carol.account.id)], 'int8')}) AS wanted`);
      const seen: boolean[] = [];
      for (let i = 0; i < 6; i++) seen.push(await wanted()); // past plpgsql's first five custom plans
      const hook = await webhookFor(carol.actor, ['transfer.posted']);
      seen.push(await wanted());
      const elsewhere = await webhookFor(dave.actor, ['transfer.posted']);
      await dropWebhook(hook);
      seen.push(await wanted());
      await dropWebhook(elsewhere);
      return seen;
    });
    expect(answers).toEqual([false, false, false, false, false, false, true, false]);
  });
});
