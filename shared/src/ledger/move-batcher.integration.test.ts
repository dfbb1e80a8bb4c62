// Group commit on the real PostgreSQL: movements fired in one tick share one database call and
// one commit, each keeps its own answer and refusal, and storms through several batchers (as
// several processes would run them) keep every invariant with zero deadlocks.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { sql } from 'slonik';
import { z } from 'zod';
import { poolGate } from '../db/bounded-pool.ts';
import { createDatabasePool, type DatabasePool } from '../db/pool.ts';
import { createTestDatabase, type TestDatabase } from '../../../test/db.ts';
import { runConcurrently } from '../../../test/concurrency.ts';
import { createUser, fundedHolder, holdAccountLock, idemKey, type Holder } from '../../../test/factories.ts';
import { checkLedgerInvariants, deadlockCount } from '../../../test/ledger-invariants.ts';
import type { Actor } from '../auth/actor.ts';
import { Overloaded, type DomainError } from '../errors/domain-error.ts';
import { LedgerService } from './ledger.service.ts';
import { ledgerRepository, type MoveCommand } from './ledger.repository.ts';
import type { TransferResult } from './ledger.types.ts';
import { MoveBatcher } from './move-batcher.ts';

let db: TestDatabase;
/** A pool whose queries are counted: every query outside a transaction is one commit. */
let counted: DatabasePool;
let queries = 0;
let ledger: LedgerService;
const batches: number[] = [];

beforeAll(async () => {
  db = await createTestDatabase({ poolSize: 16 });
  counted = await createDatabasePool(db.url, {
    maximumPoolSize: 8,
    interceptors: [
      {
        name: 'count-queries',
        beforeQueryExecution: async () => {
          queries += 1;
          return null;
        },
      },
    ],
  });
  ledger = new LedgerService({ pool: counted, observer: { batched: (size) => batches.push(size) } });
});
afterAll(async () => {
  await counted?.end();
  await db?.drop();
});

const holder = (funds: bigint) => fundedHolder(db.pool, ledger, funds);

const transfer = (from: Holder, to: Holder, amount: bigint, idempotencyKey = idemKey()) =>
  ledger.transfer(from.actor, { fromAccountId: from.account.id, toAccountId: to.account.id, amount, currency: 'USD', idempotencyKey });

/** How many transactions wrote these transfers (rows written by one transaction share its xmin). */
async function transactionsThatWrote(ids: readonly bigint[]): Promise<number> {
  return db.pool.oneFirst(sql.type(z.object({ n: z.number() }))`
    SELECT count(DISTINCT xmin::text)::int AS n FROM transfers WHERE id = ANY(${sql.array(ids.map(String), 'int8')})`);
}

const NO_LIMITS = { depositMaxAmount: null, depositDailyLimit: null, outgoingDailyLimit: null };
const ledgerRepositoryMoveAlone = (command: MoveCommand) => ledgerRepository.move(db.pool, command, NO_LIMITS);
const ledgerRepositoryMoveBatch = (commands: MoveCommand[]) => ledgerRepository.moveBatch(db.pool, commands, NO_LIMITS);
/** The fields of a plain transfer or deposit that MoveCommand has beyond the money. */
const PLAIN = { targetTransferId: null, holdTtlSeconds: null, memo: null, reference: null, metadata: {}, destination: null } as const;

const codeOf = (outcome: PromiseSettledResult<unknown>) => (outcome.status === 'fulfilled' ? 'ok' : (outcome.reason as DomainError).code);

describe('group commit', () => {
  it('sends N transfers fired in one tick as fewer than N database calls and commits, each with its own correct answer', async () => {
    const [a, b] = [await holder(1_000n), await holder(0n)] as [Holder, Holder];
    const n = 20;
    const before = queries;
    const results = await Promise.all(Array.from({ length: n }, (_, i) => transfer(a, b, BigInt(i + 1))));
    const calls = queries - before;
    expect(calls).toBeLessThan(n);
    expect(await transactionsThatWrote(results.map((r) => r.transfer.id))).toBeLessThan(n);
    // Each answer is its own: its amount, its own entries, and the balances right after it.
    expect(results.map((r) => r.transfer.amount)).toEqual(Array.from({ length: n }, (_, i) => BigInt(i + 1)));
    expect(new Set(results.map((r) => r.transfer.id)).size).toBe(n);
    const byId = [...results].sort((x, y) => (x.transfer.id < y.transfer.id ? -1 : 1));
    let balance = 1_000n;
    for (const r of byId) {
      balance -= r.transfer.amount;
      expect(r.fromBalance).toBe(balance);
      expect(r.fromEntry).toMatchObject({ accountId: a.account.id, amount: -r.transfer.amount, transferId: r.transfer.id });
      expect(r.toEntry).toMatchObject({ accountId: b.account.id, amount: r.transfer.amount, transferId: r.transfer.id });
      expect(r.replayed).toBe(false);
    }
    expect(await ledger.getAccount(a.actor, a.account.id)).toMatchObject({ balance: 1_000n - 210n });
    expect(await checkLedgerInvariants(db.pool)).toEqual([]);
  });

  it('refuses only the movements that break a rule; their neighbours in the batch move', async () => {
    const [a, b] = [await holder(100n), await holder(0n)] as [Holder, Holder];
    const stranger = await holder(0n);
    const outcomes = await Promise.allSettled([
      transfer(a, b, 60n), // ok: 40 left
      transfer(a, b, 50n), // insufficient: only 40 left after the first
      ledger.transfer(a.actor, { fromAccountId: stranger.account.id, toAccountId: b.account.id, amount: 1n, currency: 'USD', idempotencyKey: idemKey() }),
      transfer(a, b, 40n), // ok: exactly what is left
      ledger.transfer(a.actor, { fromAccountId: a.account.id, toAccountId: b.account.id, amount: 1n, currency: 'EUR', idempotencyKey: idemKey() }),
    ]);
    expect(outcomes.map(codeOf)).toEqual(['ok', 'INSUFFICIENT_FUNDS', 'ACCOUNT_NOT_FOUND', 'ok', 'CURRENCY_MISMATCH']);
    expect(await ledger.getAccount(b.actor, b.account.id)).toMatchObject({ balance: 100n });
    // A refused movement gave its key back: the same key with the same request may be tried again.
    expect(await checkLedgerInvariants(db.pool)).toEqual([]);
  });

  it('answers two requests with one idempotency key in one tick as one movement: the second is its replay', async () => {
    const [a, b] = [await holder(100n), await holder(0n)] as [Holder, Holder];
    const key = idemKey();
    const [first, second] = await Promise.all([transfer(a, b, 30n, key), transfer(a, b, 30n, key)]);
    expect(second.transfer.id).toBe(first.transfer.id);
    expect([first.replayed, second.replayed].sort()).toEqual([false, true]);
    expect(second.fromBalance).toBe(first.fromBalance);
    expect(await ledger.getAccount(a.actor, a.account.id)).toMatchObject({ balance: 70n });
  });

  it('refuses the second of two requests with one key and different bodies in one tick as an idempotency conflict', async () => {
    const [a, b] = [await holder(100n), await holder(0n)] as [Holder, Holder];
    const key = idemKey();
    const outcomes = await Promise.allSettled([transfer(a, b, 30n, key), transfer(a, b, 31n, key)]);
    expect(outcomes.map(codeOf)).toEqual(['ok', 'IDEMPOTENCY_CONFLICT']);
    expect(await ledger.getAccount(a.actor, a.account.id)).toMatchObject({ balance: 70n });
  });

  it('replays inside a batch a key answered by an earlier batch, without moving money', async () => {
    const [a, b] = [await holder(100n), await holder(0n)] as [Holder, Holder];
    const key = idemKey();
    const original = await transfer(a, b, 10n, key);
    const [replay, fresh] = await Promise.all([transfer(a, b, 10n, key), transfer(a, b, 5n)]);
    expect(replay).toMatchObject({ replayed: true, transfer: { id: original.transfer.id }, fromBalance: 90n });
    expect(fresh.replayed).toBe(false);
    expect(await ledger.getAccount(a.actor, a.account.id)).toMatchObject({ balance: 85n });
  });

  it('carries both directions of a pair in one batch, each on the balances the earlier ones left', async () => {
    const [a, b] = [await holder(10n), await holder(0n)] as [Holder, Holder];
    // b has nothing until a's first transfer lands, earlier in the same batch.
    const outcomes = await Promise.allSettled([transfer(a, b, 10n), transfer(b, a, 10n), transfer(a, b, 10n), transfer(b, a, 11n)]);
    expect(outcomes.map(codeOf)).toEqual(['ok', 'ok', 'ok', 'INSUFFICIENT_FUNDS']);
    expect(await ledger.getAccount(a.actor, a.account.id)).toMatchObject({ balance: 0n });
    expect(await ledger.getAccount(b.actor, b.account.id)).toMatchObject({ balance: 10n });
    expect(await checkLedgerInvariants(db.pool)).toEqual([]);
  });

  it('retries a batch that fails as a whole one movement at a time: the bad movement fails alone', async () => {
    const [a, b] = [await holder(100n), await holder(0n)] as [Holder, Holder];
    const batcher = new MoveBatcher({ pool: counted, maxBatchSize: 64, limits: NO_LIMITS });
    const command = (amount: bigint, idempotencyKey: string): MoveCommand => ({
      ...PLAIN,
      actor: a.actor.username,
      actorRole: 'depositor',
      idempotencyKey,
      requestHash: `h-${idempotencyKey}`,
      operation: 'transfer',
      fromAccountId: a.account.id,
      toAccountId: b.account.id,
      amount,
      currency: 'USD',
    });
    // A key over the column's 255-character CHECK fails the claim INSERT, and with it the whole call.
    const outcomes = await Promise.allSettled([batcher.move(command(1n, idemKey())), batcher.move(command(2n, 'x'.repeat(300))), batcher.move(command(3n, idemKey()))]);
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((outcomes[1] as PromiseRejectedResult).reason).toMatchObject({ constraint: 'idempotency_keys_key_length' });
    expect(await ledger.getAccount(a.actor, a.account.id)).toMatchObject({ balance: 96n });
    expect(await checkLedgerInvariants(db.pool)).toEqual([]);
  });

  it('gives every refusal in a batch the same answer the movement gets alone', async () => {
    const alice = await holder(50n);
    const bob = await holder(0n);
    const banker: Actor = await createUser(db.pool, { role: 'banker' });
    const closed = await holder(0n);
    await ledger.closeAccount(closed.actor, closed.account.id);
    const euro = await ledger.openAccount(bob.actor, { currency: 'EUR' });
    const frozen = await holder(10n);
    await ledger.freezeAccount(banker, { accountId: frozen.account.id, reason: 'parity test' });
    const systemUsd = await db.pool.oneFirst(sql.type(z.object({ id: z.bigint() }))`SELECT id FROM accounts WHERE is_system AND kind = 'funding' AND currency = 'USD'`);
    const base = (actor: Actor, overrides: Partial<MoveCommand>): MoveCommand => ({
      ...PLAIN,
      actor: actor.username,
      actorRole: actor.role,
      idempotencyKey: idemKey(),
      requestHash: 'h',
      operation: 'transfer',
      fromAccountId: alice.account.id,
      toAccountId: bob.account.id,
      amount: 1n,
      currency: 'USD',
      ...overrides,
    });
    const cases: MoveCommand[] = [
      base(bob.actor, {}), // someone else's account: not found
      base(banker, {}), // a banker may see it but not move it: permission denied
      base(alice.actor, { fromAccountId: 999_999_999n }),
      base(alice.actor, { toAccountId: 999_999_999n }),
      base(alice.actor, { toAccountId: systemUsd }), // a system account is never a target
      base(alice.actor, { toAccountId: closed.account.id }),
      base(closed.actor, { fromAccountId: closed.account.id }),
      base(alice.actor, { toAccountId: euro.id }),
      base(alice.actor, { toAccountId: frozen.account.id }), // into a frozen account
      base(frozen.actor, { fromAccountId: frozen.account.id }), // out of a frozen account
      base(frozen.actor, { operation: 'deposit', fromAccountId: null, currency: null, toAccountId: frozen.account.id }),
      base(alice.actor, { currency: 'EUR' }),
      base(alice.actor, { amount: 51n }),
      base(alice.actor, { operation: 'deposit', fromAccountId: null, currency: null, toAccountId: 999_999_999n }),
      base(bob.actor, { operation: 'deposit', fromAccountId: null, currency: null, toAccountId: alice.account.id }),
      base(alice.actor, { operation: 'deposit', fromAccountId: null, currency: null, toAccountId: closed.account.id }),
    ];
    const describeOutcome = (outcome: PromiseSettledResult<unknown>) =>
      outcome.status === 'fulfilled' ? 'moved' : `${(outcome.reason as DomainError).code}: ${(outcome.reason as Error).message}`;
    const alone = await Promise.allSettled(cases.map((c) => ledgerRepositoryMoveAlone(c)));
    const batched = await ledgerRepositoryMoveBatch(cases.map((c) => ({ ...c, idempotencyKey: idemKey() })));
    expect(batched.map((answer) => ('code' in answer ? `${answer.code}: ${answer.message}` : 'moved'))).toEqual(alone.map(describeOutcome));
    expect(alone.every((outcome) => outcome.status === 'rejected')).toBe(true);
    expect(await ledger.getAccount(alice.actor, alice.account.id)).toMatchObject({ balance: 50n });
  });

  it('pays deposits in one batch from the funding account of each receiving account’s currency', async () => {
    const usd = await holder(0n);
    const eur = await ledger.openAccount(usd.actor, { currency: 'EUR' });
    const deposit = (accountId: bigint, amount: bigint) => ledger.deposit(usd.actor, { accountId, amount, idempotencyKey: idemKey() });
    const before = queries;
    const results = await Promise.all([deposit(usd.account.id, 5n), deposit(eur.id, 7n), deposit(usd.account.id, 11n)]);
    expect(queries - before).toBe(1);
    expect(results.map((r) => [r.transfer.kind, r.transfer.currency, r.toBalance])).toEqual([
      ['deposit', 'USD', 5n],
      ['deposit', 'EUR', 7n],
      ['deposit', 'USD', 16n],
    ]);
    const funding = await db.pool.any(sql.type(z.object({ id: z.bigint(), currency: z.string() }))`SELECT id, currency FROM accounts WHERE is_system AND kind = 'funding'`);
    for (const r of results) expect(funding.find((f) => f.id === r.transfer.fromAccountId)?.currency).toBe(r.transfer.currency);
    expect(await checkLedgerInvariants(db.pool)).toEqual([]);
  });

  it('caps a batch at its maximum size and sends the rest in the next', async () => {
    const [a, b] = [await holder(1_000n), await holder(0n)] as [Holder, Holder];
    const small = new LedgerService({ pool: counted, maxBatchSize: 4, observer: { batched: (size) => sizes.push(size) } });
    const sizes: number[] = [];
    await Promise.all(
      Array.from({ length: 10 }, () =>
        small.transfer(a.actor, { fromAccountId: a.account.id, toAccountId: b.account.id, amount: 1n, currency: 'USD', idempotencyKey: idemKey() }),
      ),
    );
    expect(Math.max(...sizes)).toBeLessThanOrEqual(4);
    expect(sizes.reduce((sum, size) => sum + size, 0)).toBe(10);
  });

  it('tells the observer each batch’s size and database time once the database answered, before the answers are handed out', async () => {
    const [a, b] = [await holder(1_000n), await holder(0n)] as [Holder, Holder];
    const done: { size: number; seconds: number }[] = [];
    const service = new LedgerService({ pool: counted, observer: { batchDone: (size, seconds) => done.push({ size, seconds }) } });
    const move = () =>
      service.transfer(a.actor, { fromAccountId: a.account.id, toAccountId: b.account.id, amount: 1n, currency: 'USD', idempotencyKey: idemKey() });
    const seenByFirstCaller = await Promise.all([move(), move(), move()]).then(() => done.length);
    expect(seenByFirstCaller).toBe(1);
    expect(done[0]!.size).toBe(3);
    expect(done[0]!.seconds).toBeGreaterThan(0);
    expect(done[0]!.seconds).toBeLessThan(60);
    // A batch refused as a whole is timed too.
    await expect(
      service.transfer(a.actor, { fromAccountId: a.account.id, toAccountId: b.account.id, amount: 5_000n, currency: 'USD', idempotencyKey: idemKey() }),
    ).rejects.toMatchObject({ code: 'INSUFFICIENT_FUNDS' });
    expect(done.map((d) => d.size)).toEqual([3, 1]);
  });

  it('sends the next batch before it hands out the answers of the one that came back', async () => {
    const [a, b] = [await holder(1_000n), await holder(0n)] as [Holder, Holder];
    const sizes: number[] = [];
    const service = new LedgerService({ pool: counted, observer: { batched: (size) => sizes.push(size) } });
    const move = (amount: bigint) =>
      service.transfer(a.actor, { fromAccountId: a.account.id, toAccountId: b.account.id, amount, currency: 'USD', idempotencyKey: idemKey() });
    const first = move(1n);
    await new Promise<void>((resolve) => setImmediate(resolve)); // the first batch leaves alone
    expect(sizes).toEqual([1]);
    const waiting = [move(2n), move(3n), move(4n)];
    // When the first answer reaches its caller, the three that waited are already on their way.
    const batchesWhenAnswered = await first.then(() => [...sizes]);
    expect(batchesWhenAnswered).toEqual([1, 3]);
    const answers = await Promise.all(waiting);
    expect(answers.map((r) => r.transfer.amount)).toEqual([2n, 3n, 4n]);
    // Each on the balance the one before it left (999 after the first).
    expect(answers.map((r) => r.fromBalance)).toEqual([997n, 994n, 990n]);
  });

  it('keeps every invariant with zero deadlocks when three batchers (three processes) storm the same accounts both ways', async () => {
    const accounts = await Promise.all(Array.from({ length: 6 }, () => holder(10_000n)));
    const pools = await Promise.all([1, 2, 3].map(() => createDatabasePool(db.url, { maximumPoolSize: 4 })));
    try {
      const services = pools.map((pool) => new LedgerService({ pool }));
      const deadlocksBefore = await deadlockCount(db.pool);
      const outcomes = await runConcurrently(1_200, 48, (i) => {
        const service = services[i % services.length]!;
        const from = accounts[i % accounts.length]!;
        const to = accounts[(i * 7 + 1) % accounts.length]!;
        const target = to === from ? accounts[(accounts.indexOf(from) + 1) % accounts.length]! : to;
        return service.transfer(from.actor, {
          fromAccountId: from.account.id,
          toAccountId: target.account.id,
          amount: BigInt(1 + (i % 50)),
          currency: 'USD',
          idempotencyKey: idemKey(),
        });
      });
      const acknowledged = outcomes.flatMap((o) => (o.status === 'fulfilled' ? [(o.value as TransferResult).transfer.id] : []));
      const unexpected = outcomes.filter((o) => o.status === 'rejected' && (o.reason as DomainError).code !== 'INSUFFICIENT_FUNDS');
      expect(unexpected).toEqual([]);
      expect(acknowledged.length).toBeGreaterThan(1_000);
      expect(await checkLedgerInvariants(db.pool, { acknowledged })).toEqual([]);
      expect(await deadlockCount(db.pool)).toBe(deadlocksBefore);
    } finally {
      await Promise.all(pools.map((pool) => pool.end()));
    }
  });

  it('keeps an account’s history in (created_at, id) order the order its balances were applied in, under contention from several batchers', async () => {
    const hub = await holder(1_000_000n);
    const others = await Promise.all(Array.from({ length: 4 }, () => holder(1_000_000n)));
    const pools = await Promise.all([1, 2, 3].map(() => createDatabasePool(db.url, { maximumPoolSize: 4 })));
    try {
      const services = pools.map((pool) => new LedgerService({ pool }));
      // Every movement touches the hub, in or out, from three "processes" at once: the hub's row
      // lock orders them, and each answer reports the hub's balance right after it.
      const outcomes = await runConcurrently(300, 24, (i) => {
        const other = others[i % others.length]!;
        const [from, to] = i % 2 === 0 ? [hub, other] : [other, hub];
        return services[i % services.length]!.transfer(from.actor, {
          fromAccountId: from.account.id,
          toAccountId: to.account.id,
          amount: BigInt(1 + (i % 13)),
          currency: 'USD',
          idempotencyKey: idemKey(),
        });
      });
      const reported = new Map<string, bigint>();
      for (const outcome of outcomes) {
        expect(outcome.status).toBe('fulfilled');
        const r = (outcome as PromiseFulfilledResult<TransferResult>).value;
        reported.set(String(r.transfer.id), r.transfer.fromAccountId === hub.account.id ? r.fromBalance : r.toBalance);
      }
      const history = await db.pool.any(sql.type(z.object({ transfer_id: z.bigint(), amount: z.bigint() }))`
        SELECT transfer_id, amount FROM entries WHERE account_id = ${hub.account.id} ORDER BY created_at, id`);
      let running = 0n;
      const mismatches: string[] = [];
      for (const entry of history) {
        running += entry.amount;
        const balance = reported.get(String(entry.transfer_id));
        if (balance !== undefined && balance !== running) mismatches.push(`transfer ${entry.transfer_id}: history says ${running}, the movement said ${balance}`);
      }
      expect(mismatches).toEqual([]);
      expect(reported.size).toBe(300);
    } finally {
      await Promise.all(pools.map((pool) => pool.end()));
    }
  });

  it('reports each batch to the observer: one tick of movements is one batch after the one already in flight', () => {
    // Filled by the tests above through the shared service.
    expect(batches.length).toBeGreaterThan(0);
    expect(Math.max(...batches)).toBeGreaterThan(1);
  });
});

describe('group commit under overload', () => {
  /** The idempotency keys among these that moved money (their claim names a transfer), sorted. */
  const storedKeys = async (keys: readonly string[]) =>
    db.pool.anyFirst(sql.type(z.object({ key: z.string() }))`
      SELECT key FROM idempotency_keys WHERE key = ANY(${sql.array([...keys], 'text')}) AND transfer_id IS NOT NULL ORDER BY key`);
  const balanceOf = (h: Holder) => db.pool.oneFirst(sql.type(z.object({ balance: z.bigint() }))`SELECT balance FROM accounts WHERE id = ${h.account.id}`);
  const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

  it('refuses a movement past the queue limit before queuing it: it moves no money, and every queued one commits once the batch in flight does', async () => {
    const [a, b] = [await holder(1_000n), await holder(0n)] as [Holder, Holder];
    const bounded = new LedgerService({ pool: counted, queueLimit: 2 });
    const keys = [idemKey(), idemKey(), idemKey(), idemKey()] as const;
    const send = (key: string) =>
      bounded.transfer(a.actor, { fromAccountId: a.account.id, toAccountId: b.account.id, amount: 10n, currency: 'USD', idempotencyKey: key });
    const lock = await holdAccountLock(db.pool, a.account.id);
    let accepted: Promise<TransferResult>[] = [];
    try {
      accepted = [send(keys[0])];
      await nextTurn(); // the first leaves as a batch of its own and waits on the row lock
      accepted.push(send(keys[1]), send(keys[2]));
      const refused = await send(keys[3]).catch((error: unknown) => error);
      expect(refused).toBeInstanceOf(Overloaded);
      expect((refused as Error).message).toMatch(/2 money movements waiting/);
    } finally {
      await lock.release();
    }
    const results = await Promise.all(accepted);
    expect(results.map((r) => r.replayed)).toEqual([false, false, false]);
    expect(await storedKeys(keys)).toEqual([keys[0], keys[1], keys[2]].sort());
    expect([await balanceOf(a), await balanceOf(b)]).toEqual([970n, 30n]);
    expect(await checkLedgerInvariants(db.pool, { acknowledged: results.map((r) => r.transfer.id) })).toEqual([]);
  });

  it('sends a batch ahead of the calls waiting for a connection, and never refuses it for a full queue', async () => {
    const [a, b] = [await holder(1_000n), await holder(0n)] as [Holder, Holder];
    const pool = await createDatabasePool(db.url, { maximumPoolSize: 1, queueLimit: 1 });
    const lock = await holdAccountLock(db.pool, a.account.id);
    try {
      const bounded = new LedgerService({ pool });
      const order: string[] = [];
      // The pool's one connection waits on the row lock the test holds; one read waits for it.
      const occupying = pool.query(sql.unsafe`SELECT id FROM accounts WHERE id = ${a.account.id} FOR UPDATE`);
      const read = pool.oneFirst(sql.type(z.object({ n: z.number() }))`SELECT 1 AS n`).then(() => order.push('read'));
      await expect(pool.oneFirst(sql.type(z.object({ n: z.number() }))`SELECT 1 AS n`)).rejects.toBeInstanceOf(Overloaded);
      const moved = bounded
        .transfer(a.actor, { fromAccountId: a.account.id, toAccountId: b.account.id, amount: 5n, currency: 'USD', idempotencyKey: idemKey() })
        .then((result) => (order.push('transfer'), result));
      for (let turn = 0; turn < 100 && poolGate(pool)?.waiting !== 2; turn += 1) await nextTurn();
      expect(poolGate(pool)?.waiting).toBe(2);
      await lock.release();
      await Promise.all([occupying, read]);
      expect((await moved).replayed).toBe(false);
      expect(order).toEqual(['transfer', 'read']);
      expect(poolGate(pool)?.shed).toEqual({ queue_full: 1, queue_timeout: 0 });
      expect([await balanceOf(a), await balanceOf(b)]).toEqual([995n, 5n]);
    } finally {
      await lock.release();
      await pool.end();
    }
  });

  it('fails a whole batch without a retry when it waited the pool\'s whole wait timeout; none of it moves money, and the same keys move it once later', async () => {
    const [a, b] = [await holder(1_000n), await holder(0n)] as [Holder, Holder];
    const pool = await createDatabasePool(db.url, { maximumPoolSize: 1, queueLimit: 0, waitTimeoutMs: 50 });
    const lock = await holdAccountLock(db.pool, a.account.id);
    try {
      const bounded = new LedgerService({ pool });
      const keys = [idemKey(), idemKey(), idemKey()];
      const send = (key: string) =>
        bounded.transfer(a.actor, { fromAccountId: a.account.id, toAccountId: b.account.id, amount: 5n, currency: 'USD', idempotencyKey: key });
      // The pool's one connection waits on the row lock the test holds.
      const occupying = pool.query(sql.unsafe`SELECT id FROM accounts WHERE id = ${a.account.id} FOR UPDATE`);
      const outcomes = await Promise.allSettled(keys.map(send));
      expect(outcomes.map((o) => (o.status === 'rejected' ? (o.reason as DomainError).code : 'ok'))).toEqual(['OVERLOADED', 'OVERLOADED', 'OVERLOADED']);
      // One refusal: the batch asked once and did not retry its movements one by one.
      expect(poolGate(pool)?.shed).toEqual({ queue_full: 0, queue_timeout: 1 });
      await lock.release();
      await occupying;
      expect(await storedKeys(keys)).toEqual([]);
      expect(await balanceOf(a)).toBe(1_000n);

      const retried = await Promise.all(keys.map(send));
      expect(retried.map((r) => r.replayed)).toEqual([false, false, false]);
      expect([await balanceOf(a), await balanceOf(b)]).toEqual([985n, 15n]);
      expect(await checkLedgerInvariants(db.pool, { acknowledged: retried.map((r) => r.transfer.id) })).toEqual([]);
    } finally {
      await lock.release();
      await pool.end();
    }
  });
});
