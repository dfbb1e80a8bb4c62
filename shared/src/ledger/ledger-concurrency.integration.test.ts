import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createTestDatabase, type TestDatabase } from '../../../test/db.ts';
import { runConcurrently } from '../../../test/concurrency.ts';
import { createUser, idemKey } from '../../../test/factories.ts';
import { checkLedgerInvariants, deadlockCount } from '../../../test/ledger-invariants.ts';
import type { Actor } from '../auth/actor.ts';
import type { DomainError } from '../errors/domain-error.ts';
import { LedgerService } from './ledger.service.ts';
import type { Account } from './ledger.types.ts';

// Storms through the real use case on the real PostgreSQL, 32 requests in flight on a pool of
// 32 connections, then the five invariants of DESIGN.md by SQL and the deadlock counter.
let db: TestDatabase;
let ledger: LedgerService;

beforeAll(async () => {
  db = await createTestDatabase({ poolSize: 32 });
  ledger = new LedgerService({ pool: db.pool });
});
afterAll(async () => {
  await db?.drop();
});

type Holder = { actor: Actor; account: Account };

async function holders(count: number, funds: bigint): Promise<Holder[]> {
  const out: Holder[] = [];
  for (let i = 0; i < count; i++) {
    const actor = await createUser(db.pool);
    const account = await ledger.openAccount(actor, { currency: 'USD' });
    if (funds > 0n) await ledger.deposit(actor, { accountId: account.id, amount: funds, idempotencyKey: idemKey() });
    out.push({ actor, account });
  }
  return out;
}

/** Only these failures are a correct answer under load; anything else fails the test. */
const EXPECTED_FAILURES = new Set(['INSUFFICIENT_FUNDS']);

function tally(results: PromiseSettledResult<{ transfer: { id: bigint } }>[]) {
  const acknowledged: bigint[] = [];
  const unexpected: string[] = [];
  let refused = 0;
  for (const result of results) {
    if (result.status === 'fulfilled') acknowledged.push(result.value.transfer.id);
    else if (EXPECTED_FAILURES.has((result.reason as DomainError).code)) refused++;
    else unexpected.push(String((result.reason as Error).message));
  }
  return { acknowledged, unexpected, refused };
}

describe('ledger under concurrency', () => {
  it('keeps every invariant through 2,000 random transfers among 20 accounts at concurrency 32', async () => {
    const people = await holders(20, 5_000n);
    const deadlocksBefore = await deadlockCount(db.pool);
    let seed = 42;
    const random = () => ((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31), seed / 2 ** 31);
    const results = await runConcurrently(2_000, 32, () => {
      const from = people[Math.floor(random() * people.length)]!;
      let to = people[Math.floor(random() * people.length)]!;
      if (to === from) to = people[(people.indexOf(from) + 1) % people.length]!;
      return ledger.transfer(from.actor, {
        fromAccountId: from.account.id,
        toAccountId: to.account.id,
        amount: BigInt(1 + Math.floor(random() * 900)),
        currency: 'USD',
        idempotencyKey: idemKey(),
      });
    });
    const { acknowledged, unexpected } = tally(results);
    expect(unexpected).toEqual([]);
    expect(acknowledged.length).toBeGreaterThan(1_000);
    expect(await checkLedgerInvariants(db.pool, { acknowledged })).toEqual([]);
    expect(await deadlockCount(db.pool)).toBe(deadlocksBefore);
    const total = (await Promise.all(people.map((p) => ledger.getAccount(p.actor, p.account.id)))).reduce((s, a) => s + a.balance, 0n);
    expect(total).toBe(20n * 5_000n);
  });

  it('runs 600 transfers between two accounts in both directions at concurrency 32 with no deadlock', async () => {
    const [a, b] = (await holders(2, 1_000n)) as [Holder, Holder];
    const deadlocksBefore = await deadlockCount(db.pool);
    const results = await runConcurrently(600, 32, (i) => {
      const [from, to] = i % 2 === 0 ? [a, b] : [b, a];
      return ledger.transfer(from.actor, {
        fromAccountId: from.account.id,
        toAccountId: to.account.id,
        amount: BigInt(1 + (i % 7)),
        currency: 'USD',
        idempotencyKey: idemKey(),
      });
    });
    const { acknowledged, unexpected } = tally(results);
    expect(unexpected).toEqual([]);
    expect(acknowledged.length).toBeGreaterThan(500);
    expect(await deadlockCount(db.pool)).toBe(deadlocksBefore);
    expect(await checkLedgerInvariants(db.pool, { acknowledged })).toEqual([]);
  });

  it('never overdraws: 200 concurrent withdrawals of 10 from a balance of 1,000 let exactly 100 through', async () => {
    const [rich, sink] = (await holders(2, 0n)) as [Holder, Holder];
    await ledger.deposit(rich.actor, { accountId: rich.account.id, amount: 1_000n, idempotencyKey: idemKey() });
    const results = await runConcurrently(200, 32, () =>
      ledger.transfer(rich.actor, {
        fromAccountId: rich.account.id,
        toAccountId: sink.account.id,
        amount: 10n,
        currency: 'USD',
        idempotencyKey: idemKey(),
      }),
    );
    const { acknowledged, unexpected, refused } = tally(results);
    expect(unexpected).toEqual([]);
    expect(acknowledged).toHaveLength(100);
    expect(refused).toBe(100);
    expect((await ledger.getAccount(rich.actor, rich.account.id)).balance).toBe(0n);
    expect(await checkLedgerInvariants(db.pool, { acknowledged })).toEqual([]);
  });

  it('replays, never repeats, when a storm retries every request with its key', async () => {
    const people = await holders(6, 10_000n);
    const requests = Array.from({ length: 150 }, (_, i) => {
      const from = people[i % 6]!;
      const to = people[(i + 1 + (i % 5)) % 6]!;
      return { from, to, key: idemKey(), amount: BigInt(1 + (i % 50)) };
    });
    // Each request is sent three times, the copies interleaved with the others.
    const results = await runConcurrently(450, 32, (i) => {
      const r = requests[i % 150]!;
      return ledger.transfer(r.from.actor, {
        fromAccountId: r.from.account.id,
        toAccountId: r.to.account.id,
        amount: r.amount,
        currency: 'USD',
        idempotencyKey: r.key,
      });
    });
    const { acknowledged, unexpected } = tally(results);
    expect(unexpected).toEqual([]);
    expect(acknowledged).toHaveLength(450);
    const distinct = [...new Set(acknowledged.map(String))].map(BigInt);
    expect(distinct).toHaveLength(150);
    for (let i = 0; i < 150; i++) {
      const copies = [i, i + 150, i + 300].map((j) => (results[j] as PromiseFulfilledResult<{ transfer: { id: bigint } }>).value.transfer.id);
      expect(new Set(copies).size).toBe(1);
    }
    expect(await checkLedgerInvariants(db.pool, { acknowledged: distinct })).toEqual([]);
  });
});
