// Storms of the whole money model on the real PostgreSQL (issue 11): transfers, holds, captures
// (full and partial), voids, expiries with the sweep running, withdrawals, refunds and reversals
// from many concurrent clients, then invariants 1-9 of DESIGN.md by SQL and the deadlock counter;
// and limits under concurrent movements (exactly the allowed total passes).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { setTimeout as sleep } from 'node:timers/promises';
import { createTestDatabase, type TestDatabase } from '../../../test/db.ts';
import { runConcurrently } from '../../../test/concurrency.ts';
import { createUser, idemKey } from '../../../test/factories.ts';
import { checkLedgerInvariants, deadlockCount } from '../../../test/ledger-invariants.ts';
import type { Actor } from '../auth/actor.ts';
import type { DomainError } from '../errors/domain-error.ts';
import { ledgerRepository } from './ledger.repository.ts';
import { LedgerService } from './ledger.service.ts';
import type { Account, Transfer, TransferResult } from './ledger.types.ts';

let db: TestDatabase;
let ledger: LedgerService;
let banker: Actor;

beforeAll(async () => {
  db = await createTestDatabase({ poolSize: 32 });
  ledger = new LedgerService({
    pool: db.pool,
    limits: { depositMaxAmount: 10n ** 12n, depositDailyLimit: 10n ** 13n, outgoingDailyLimit: 10n ** 13n },
  });
  banker = await createUser(db.pool, { role: 'banker' });
});
afterAll(async () => {
  await db?.drop();
});

type Holder = { actor: Actor; account: Account };

async function holders(count: number, funds: bigint, on = ledger): Promise<Holder[]> {
  const out: Holder[] = [];
  for (let i = 0; i < count; i++) {
    const actor = await createUser(db.pool);
    const account = await on.openAccount(actor, { currency: 'USD' });
    if (funds > 0n) await ledger.deposit(actor, { accountId: account.id, amount: funds, idempotencyKey: idemKey() });
    out.push({ actor, account });
  }
  return out;
}

/** Refusals that are a correct answer when many clients race over the same money. */
const RACE_REFUSALS = new Set([
  'INSUFFICIENT_FUNDS',
  'TRANSFER_NOT_PENDING',
  'HOLD_EXPIRED',
  'TRANSFER_ALREADY_REVERSED',
  'TRANSFER_NOT_REVERSIBLE',
  'TRANSFER_NOT_REFUNDABLE',
  'REFUND_EXCEEDS_TRANSFER',
]);

/** Runs the expiry sweep every 50 ms until stopped, as the worker does (at a faster pace). */
function sweeping(): { stop(): Promise<number> } {
  let running = true;
  let expired = 0;
  const loop = (async () => {
    while (running) {
      expired += await ledgerRepository.expireHolds(db.pool, 100);
      await sleep(50);
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return expired;
    },
  };
}

describe('money model storm', () => {
  it('keeps invariants 1-9 through 1,500 mixed operations at concurrency 32 with the sweep running, and never deadlocks', async () => {
    const people = await holders(16, 50_000n);
    const deadlocksBefore = await deadlockCount(db.pool);
    let seed = 7;
    const random = () => ((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31), seed / 2 ** 31);
    const pick = <T>(list: readonly T[]): T | undefined => list[Math.floor(random() * list.length)];
    const holds: Transfer[] = [];
    const posted: { transfer: Transfer; receiver: Holder }[] = [];
    const acknowledged: bigint[] = [];
    const unexpected: string[] = [];
    const operations: Record<string, number> = {};
    const sweep = sweeping();

    const results = await runConcurrently(1_500, 32, async () => {
      const from = pick(people)!;
      let to = pick(people)!;
      if (to === from) to = people[(people.indexOf(from) + 1) % people.length]!;
      const amount = BigInt(1 + Math.floor(random() * 2_000));
      const dice = random();
      let operation: string;
      let call: () => Promise<TransferResult>;
      const target = dice < 0.5 ? undefined : dice < 0.75 ? pick(holds) : pick(posted);
      if (dice < 0.3 || (dice >= 0.5 && target === undefined)) {
        operation = 'transfer';
        call = () => ledger.transfer(from.actor, { fromAccountId: from.account.id, toAccountId: to.account.id, amount, currency: 'USD', idempotencyKey: idemKey() });
      } else if (dice < 0.45) {
        operation = 'hold';
        // Short holds: many expire during the storm, some while a capture races the sweep.
        const ttlSeconds = 1 + Math.floor(random() * 2);
        call = () => ledger.transfer(from.actor, { fromAccountId: from.account.id, toAccountId: to.account.id, amount, currency: 'USD', idempotencyKey: idemKey(), hold: { ttlSeconds } });
      } else if (dice < 0.5) {
        operation = 'withdrawal';
        call = () => ledger.withdraw(from.actor, { accountId: from.account.id, amount, destination: 'DE00 STORM', idempotencyKey: idemKey() });
      } else if (dice < 0.75) {
        const held = target as Transfer;
        const sender = people.find((p) => p.account.id === held.fromAccountId)!;
        if (dice < 0.62) {
          operation = 'capture';
          const part = random() < 0.5 ? undefined : 1n + BigInt(Math.floor(random() * Number(held.amount)));
          call = () => ledger.captureTransfer(random() < 0.1 ? banker : sender.actor, { transferId: held.id, amount: part, idempotencyKey: idemKey() });
        } else {
          operation = 'void';
          call = () => ledger.voidTransfer(sender.actor, { transferId: held.id, idempotencyKey: idemKey() });
        }
      } else {
        const { transfer, receiver } = target as { transfer: Transfer; receiver: Holder };
        if (dice < 0.9) {
          operation = 'refund';
          const part = random() < 0.5 ? undefined : 1n + BigInt(Math.floor(random() * Number(transfer.amount)));
          call = () => ledger.refundTransfer(receiver.actor, { transferId: transfer.id, amount: part, idempotencyKey: idemKey() });
        } else {
          operation = 'reversal';
          call = () => ledger.reverseTransfer(banker, { transferId: transfer.id, memo: 'storm reversal', idempotencyKey: idemKey() });
        }
      }
      operations[operation] = (operations[operation] ?? 0) + 1;
      try {
        const result = await call();
        acknowledged.push(result.transfer.id);
        if (operation === 'hold') holds.push(result.transfer);
        if (operation === 'transfer') posted.push({ transfer: result.transfer, receiver: to });
        return result;
      } catch (error) {
        const code = (error as DomainError).code;
        if (!RACE_REFUSALS.has(code)) unexpected.push(`${operation}: ${code ?? ''} ${(error as Error).message}`);
        throw error;
      }
    });
    // Let the last holds run out and the sweep see them.
    await sleep(2_100);
    const swept = await sweep.stop();

    expect(unexpected).toEqual([]);
    expect(results.filter((r) => r.status === 'fulfilled').length).toBeGreaterThan(700);
    for (const operation of ['transfer', 'hold', 'withdrawal', 'capture', 'void', 'refund', 'reversal']) {
      expect(operations[operation] ?? 0).toBeGreaterThan(0);
    }
    expect(swept).toBeGreaterThan(0);
    const distinct = [...new Set(acknowledged.map(String))].map(BigInt);
    expect(await checkLedgerInvariants(db.pool, { acknowledged: distinct })).toEqual([]);
    expect(await deadlockCount(db.pool)).toBe(deadlocksBefore);
    // Every hold ended settled: none is left pending past its deadline.
    for (const held of holds) expect(['posted', 'voided', 'expired']).toContain((await ledger.getTransfer(banker, held.id)).status);
  });

  it('settles a hold exactly once when its sender, a banker and the sweep race for it', async () => {
    const [alice, bob] = (await holders(2, 100_000n)) as [Holder, Holder];
    const placed = await Promise.all(Array.from({ length: 40 }, (_, i) =>
      ledger.transfer(alice.actor, { fromAccountId: alice.account.id, toAccountId: bob.account.id, amount: 100n + BigInt(i), currency: 'USD', idempotencyKey: idemKey(), hold: { ttlSeconds: 1 } })));
    await sleep(900);
    const sweep = sweeping();
    const outcomes = await runConcurrently(120, 32, async (i) => {
      const held = placed[i % 40]!.transfer;
      const kind = Math.floor(i / 40);
      return kind === 0
        ? ledger.captureTransfer(alice.actor, { transferId: held.id, idempotencyKey: idemKey() })
        : kind === 1
          ? ledger.voidTransfer(alice.actor, { transferId: held.id, idempotencyKey: idemKey() })
          : ledger.captureTransfer(banker, { transferId: held.id, amount: 50n, idempotencyKey: idemKey() });
    });
    await sleep(300);
    await sweep.stop();
    for (const outcome of outcomes) {
      if (outcome.status === 'rejected') expect(['TRANSFER_NOT_PENDING', 'HOLD_EXPIRED']).toContain((outcome.reason as DomainError).code);
    }
    // Per hold at most one capture or void won; the rest (and the expired) are refused.
    for (let h = 0; h < 40; h++) {
      const won = [h, h + 40, h + 80].filter((i) => outcomes[i]!.status === 'fulfilled');
      expect(won.length).toBeLessThanOrEqual(1);
    }
    expect(await checkLedgerInvariants(db.pool)).toEqual([]);
  });
});

describe('limits under concurrency', () => {
  it('lets exactly the daily deposit allowance through when 50 deposits race', async () => {
    const small = new LedgerService({ pool: db.pool, limits: { depositMaxAmount: 1_000n, depositDailyLimit: 1_000n, outgoingDailyLimit: 10n ** 12n } });
    const [alice] = (await holders(1, 0n, small)) as [Holder];
    const results = await runConcurrently(50, 32, () => small.deposit(alice.actor, { accountId: alice.account.id, amount: 100n, idempotencyKey: idemKey() }));
    const passed = results.filter((r) => r.status === 'fulfilled').length;
    const refused = results.filter((r) => r.status === 'rejected' && (r.reason as DomainError).code === 'LIMIT_EXCEEDED').length;
    expect([passed, refused]).toEqual([10, 40]);
    expect((await small.getAccount(alice.actor, alice.account.id)).balance).toBe(1_000n);
    expect(await checkLedgerInvariants(db.pool)).toEqual([]);
  });

  it('lets exactly the outgoing allowance through when transfers, holds and withdrawals race', async () => {
    const small = new LedgerService({ pool: db.pool, limits: { depositMaxAmount: 10n ** 12n, depositDailyLimit: 10n ** 13n, outgoingDailyLimit: 1_000n } });
    const [alice, bob] = (await holders(2, 100_000n, small)) as [Holder, Holder];
    const results = await runConcurrently(60, 32, (i) => {
      const base = { amount: 50n, idempotencyKey: idemKey() };
      if (i % 3 === 0) return small.withdraw(alice.actor, { ...base, accountId: alice.account.id, destination: 'IBAN' });
      return small.transfer(alice.actor, {
        ...base, fromAccountId: alice.account.id, toAccountId: bob.account.id, currency: 'USD', ...(i % 3 === 1 ? { hold: { ttlSeconds: 600 } } : {}),
      });
    });
    const passed = results.filter((r) => r.status === 'fulfilled').length;
    const refused = results.filter((r) => r.status === 'rejected' && (r.reason as DomainError).code === 'LIMIT_EXCEEDED').length;
    expect([passed, refused]).toEqual([20, 40]);
    expect(await checkLedgerInvariants(db.pool)).toEqual([]);
  });
});
