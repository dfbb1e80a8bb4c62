// A concurrent storm of the money model over real HTTP (issue 11): holds, captures (full and
// partial), voids, transfers, withdrawals, deposits (and a banker's credits), refunds and reversals
// between a handful of users, one call in five sent twice with the same idempotency key and body
// (both at once, or again once the first answered, as a retrying client does). Then: the DESIGN.md
// invariants by SQL (every currency sums to zero, no user balance below zero, each balance the sum
// of its entries, each available balance at least zero, ...) and no new deadlock; and each key
// moved money at most once: per key one first answer (any other a replay of the same transfer),
// its row in idempotency_keys naming that transfer (none for a key only ever refused), exactly the
// acknowledged transfers created, every hold in the state its answers say, and every balance and
// available balance what the acknowledged answers, each applied once, add up to.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { sql } from 'slonik';
import { z } from 'zod';
import { AccountService } from '@bank/proto/bank/v1/account_service_pb';
import { TransferService } from '@bank/proto/bank/v1/transfer_service_pb';
import { TransferStatus, type Transfer } from '@bank/proto/bank/v1/types_pb';
import { runConcurrently } from '../concurrency.ts';
import { idemKey } from '../factories.ts';
import { checkLedgerInvariants, deadlockCount } from '../ledger-invariants.ts';
import { openAccount, signUpAndLogIn, signUpBanker, type LoggedInUser } from './flows.ts';
import { startStack, type Stack } from './harness.ts';
import { CallFailed, httpTransport } from './transports.ts';

const OPERATIONS = 700;
const CONCURRENCY = 24;
const USERS = 5;
const FUNDS = 100_000n;
const CURRENCY = 'EUR';

/** Refusals that are a correct answer when many clients race over the same money. */
const RACE_REFUSALS = new Set([
  'INSUFFICIENT_FUNDS',
  'TRANSFER_NOT_PENDING',
  'TRANSFER_ALREADY_REVERSED',
  'TRANSFER_NOT_REVERSIBLE',
  'TRANSFER_NOT_REFUNDABLE',
  'REFUND_EXCEEDS_TRANSFER',
]);

type Operation = 'transfer' | 'hold' | 'capture' | 'void' | 'withdrawal' | 'deposit' | 'credit' | 'refund' | 'reversal';
/** Operations that create a transfer row (capture and void change a hold's). */
const CREATING = new Set<Operation>(['transfer', 'hold', 'withdrawal', 'deposit', 'credit', 'refund', 'reversal']);
type Answer = { transfer?: Transfer | undefined; replayed: boolean };
type Attempt = { ok: true; transfer: Transfer; replayed: boolean } | { ok: false; code: string };
type Sent = { operation: Operation; caller: LoggedInUser; key: string; attempts: Attempt[] };

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ poolSize: 20 });
});
afterAll(async () => {
  await stack?.stop();
});

describe('HTTP money storm', () => {
  it(`${OPERATIONS} mixed money calls at concurrency ${CONCURRENCY}, some retried on their keys: invariants hold, each key moved money at most once, no deadlocks`, async () => {
    const t = httpTransport(stack.api.url);
    const [banker, ...users] = await Promise.all([
      signUpBanker(t, stack.smtp, stack.db.pool),
      ...Array.from({ length: USERS }, () => signUpAndLogIn(t, stack.smtp)),
    ]);
    const people = await Promise.all(users.map(async (user) => ({ user, account: await openAccount(t, user, CURRENCY, FUNDS) })));
    const ownerOf = new Map(people.map((p) => [p.account, p.user]));
    const before = await stack.db.pool.oneFirst(sql.type(z.object({ id: z.bigint() }))`SELECT coalesce(max(id), 0)::int8 AS id FROM transfers`);
    const deadlocksBefore = await deadlockCount(stack.db.pool);

    // A seeded generator (32-bit LCG, exact in integer arithmetic): the same plan every run, though
    // the interleaving of answers, and so what is left to act on, varies.
    let seed = 11;
    const random = () => ((seed = (Math.imul(seed, 1_103_515_245) + 12_345) >>> 0), seed / 2 ** 32);
    const pick = <T>(list: readonly T[]): T | undefined => list[Math.floor(random() * list.length)];
    const amountUpTo = (max: bigint) => 1n + BigInt(Math.floor(random() * Number(max)));
    // What the storm may act on, filled in as answers arrive.
    const holds: Transfer[] = [];
    const refundable: Transfer[] = [];
    const reversible: Transfer[] = [];
    const sent: Sent[] = [];
    const unexpected: string[] = [];

    const results = await runConcurrently(OPERATIONS, CONCURRENCY, async () => {
      const me = pick(people)!;
      let other = pick(people)!;
      if (other === me) other = people[(people.indexOf(me) + 1) % people.length]!;
      const dice = random();
      const key = `storm-${idemKey()}`;
      let operation: Operation;
      let caller = me.user;
      let call: () => Promise<Answer>;
      const as = (user: LoggedInUser) => ({ token: user.accessToken });
      const held = pick(holds);
      const posted = pick(refundable);
      const reversed = pick(reversible);
      if (dice < 0.2 && held) {
        operation = 'capture';
        caller = random() < 0.1 ? banker : ownerOf.get(held.fromAccountId)!;
        // Half full, half partial (the rest of the reservation released).
        const amount = random() < 0.5 ? undefined : amountUpTo(held.amount);
        call = () => t.call(TransferService, 'captureTransfer', { transferId: held.id, idempotencyKey: key, ...(amount === undefined ? {} : { amount }) }, as(caller));
      } else if (dice < 0.3 && held) {
        operation = 'void';
        caller = ownerOf.get(held.fromAccountId)!;
        call = () => t.call(TransferService, 'voidTransfer', { transferId: held.id, idempotencyKey: key }, as(caller));
      } else if (dice < 0.42 && posted) {
        operation = 'refund';
        caller = ownerOf.get(posted.toAccountId)!;
        const moved = posted.capturedAmount ?? posted.amount;
        const amount = random() < 0.4 ? undefined : amountUpTo(moved);
        call = () => t.call(TransferService, 'refundTransfer', { transferId: posted.id, idempotencyKey: key, ...(amount === undefined ? {} : { amount }) }, as(caller));
      } else if (dice < 0.48 && reversed) {
        operation = 'reversal';
        caller = banker;
        call = () => t.call(TransferService, 'reverseTransfer', { transferId: reversed.id, memo: 'storm reversal', idempotencyKey: key }, as(caller));
      } else if (dice < 0.58) {
        operation = 'withdrawal';
        const amount = amountUpTo(1_500n);
        call = () => t.call(AccountService, 'withdraw', { accountId: me.account, amount, destination: 'DE89 3704 0044 0532 0130 00', idempotencyKey: key }, as(caller));
      } else if (dice < 0.66) {
        const credit = random() < 0.25;
        operation = credit ? 'credit' : 'deposit';
        if (credit) caller = banker;
        const amount = amountUpTo(1_500n);
        call = () => t.call(AccountService, 'deposit', { accountId: me.account, amount, idempotencyKey: key, ...(credit ? { memo: 'storm credit' } : {}) }, as(caller));
      } else {
        const hold = dice < 0.84;
        operation = hold ? 'hold' : 'transfer';
        const amount = amountUpTo(1_500n);
        call = () =>
          t.call(
            TransferService,
            'createTransfer',
            { fromAccountId: me.account, toAccountId: other.account, amount, currency: CURRENCY, idempotencyKey: key, ...(hold ? { hold: { ttlSeconds: 600 } } : {}) },
            as(caller),
          );
      }
      const attempt = async (): Promise<Attempt> => {
        try {
          const answer = await call();
          return { ok: true, transfer: answer.transfer!, replayed: answer.replayed };
        } catch (error) {
          if (!(error instanceof CallFailed)) throw error;
          if (!RACE_REFUSALS.has(error.code)) unexpected.push(`${operation}: ${error.message}`);
          return { ok: false, code: error.code };
        }
      };
      const retry = random();
      const attempts = retry < 0.1 ? await Promise.all([attempt(), attempt()]) : retry < 0.2 ? [await attempt(), await attempt()] : [await attempt()];
      sent.push({ operation, caller, key, attempts });
      const first = attempts.find((a) => a.ok);
      if (first) {
        const transfer = first.transfer;
        if (operation === 'hold') holds.push(transfer);
        if (operation === 'transfer' || operation === 'capture') refundable.push(transfer);
        if (operation !== 'hold' && operation !== 'void') reversible.push(transfer);
      }
    });
    expect(results.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason))).toEqual([]);
    expect(unexpected).toEqual([]);

    // Every kind of call was made, acknowledged at least once, and some retried.
    const acknowledged = sent.filter((s) => s.attempts.some((a) => a.ok));
    for (const operation of ['transfer', 'hold', 'capture', 'void', 'withdrawal', 'deposit', 'credit', 'refund', 'reversal'] as const) {
      expect({ operation, acknowledged: acknowledged.some((s) => s.operation === operation) }).toEqual({ operation, acknowledged: true });
    }
    const partial = acknowledged.filter((s) => s.operation === 'capture').map((s) => s.attempts.find((a) => a.ok)!).filter((a) => a.ok && a.transfer.capturedAmount! < a.transfer.amount);
    expect(partial.length).toBeGreaterThan(0);
    expect(sent.filter((s) => s.attempts.length === 2 && s.attempts.every((a) => a.ok)).length).toBeGreaterThan(20);

    // Per key: one first answer at most; any other success replays the same transfer.
    const problems: string[] = [];
    for (const s of sent) {
      const successes = s.attempts.filter((a): a is Extract<Attempt, { ok: true }> => a.ok);
      if (successes.length === 0) continue;
      if (successes.filter((a) => !a.replayed).length !== 1) problems.push(`${s.operation} ${s.key}: ${successes.filter((a) => !a.replayed).length} first answers`);
      if (new Set(successes.map((a) => a.transfer.id)).size !== 1) problems.push(`${s.operation} ${s.key}: answered with different transfers`);
    }

    // By SQL: a key answered holds its transfer; a key only ever refused was given back.
    const keyRows = await stack.db.pool.any(sql.type(z.object({ username: z.string(), key: z.string(), transfer_id: z.bigint().nullable(), answered: z.boolean() }))`
      SELECT k.username, k.key, k.transfer_id, k.response IS NOT NULL AS answered FROM idempotency_keys k
       JOIN unnest(${sql.array(sent.map((s) => s.caller.username), 'text')}, ${sql.array(sent.map((s) => s.key), 'text')}) AS u(username, key)
         ON k.username = u.username AND k.key = u.key`);
    const rowOf = new Map(keyRows.map((r) => [`${r.username}/${r.key}`, r]));
    for (const s of sent) {
      const row = rowOf.get(`${s.caller.username}/${s.key}`);
      const success = s.attempts.find((a) => a.ok);
      if (!success && row) problems.push(`${s.operation} ${s.key}: refused, yet its key is kept`);
      if (success && (!row?.answered || row.transfer_id !== success.transfer.id)) problems.push(`${s.operation} ${s.key}: key row ${JSON.stringify(row ?? null, (_, v: unknown) => (typeof v === 'bigint' ? String(v) : v))}`);
    }
    // Exactly the acknowledged transfers were created: no key created a second one.
    const created = await stack.db.pool.anyFirst(sql.type(z.object({ id: z.bigint() }))`SELECT id FROM transfers WHERE id > ${before} ORDER BY id`);
    const answeredIds = acknowledged.filter((s) => CREATING.has(s.operation)).map((s) => s.attempts.find((a) => a.ok)!).map((a) => (a.ok ? a.transfer.id : 0n));
    expect(created.map(String)).toEqual([...answeredIds].sort((a, b) => (a < b ? -1 : 1)).map(String));

    // Each hold is in the state its answers say: captured (for the amount answered) or voided by
    // exactly one key, else still pending.
    const settled = new Map<bigint, Transfer>();
    for (const s of acknowledged.filter((a) => a.operation === 'capture' || a.operation === 'void')) {
      const answer = s.attempts.find((a) => a.ok)!;
      if (!answer.ok) continue;
      if (settled.has(answer.transfer.id)) problems.push(`hold ${answer.transfer.id}: settled by two keys`);
      settled.set(answer.transfer.id, answer.transfer);
    }
    const holdRows = await stack.db.pool.any(sql.type(z.object({ id: z.bigint(), status: z.string(), captured_amount: z.bigint().nullable() }))`
      SELECT id, status, captured_amount FROM transfers WHERE id = ANY(${sql.array(holds.map((h) => h.id), 'int8')})`);
    for (const row of holdRows) {
      const answer = settled.get(row.id);
      const want = !answer ? 'pending' : answer.status === TransferStatus.POSTED ? 'posted' : 'voided';
      if (row.status !== want || (row.captured_amount ?? undefined) !== (answer?.capturedAmount ?? undefined)) {
        problems.push(`hold ${row.id}: ${row.status} captured ${row.captured_amount}, answers say ${want} captured ${answer?.capturedAmount}`);
      }
    }
    expect(holdRows.length).toBe(holds.length);

    // Every balance is the funding plus each acknowledged movement applied once; every available
    // balance that less the holds still pending.
    const expected = new Map(people.map((p) => [p.account, { balance: FUNDS, held: 0n }]));
    for (const s of acknowledged) {
      const answer = s.attempts.find((a) => a.ok)!;
      if (!answer.ok) continue;
      const transfer = answer.transfer;
      const moved = s.operation === 'capture' ? transfer.capturedAmount! : s.operation === 'hold' || s.operation === 'void' ? 0n : transfer.amount;
      const from = expected.get(transfer.fromAccountId);
      const to = expected.get(transfer.toAccountId);
      if (from) from.balance -= moved;
      if (to) to.balance += moved;
      if (s.operation === 'hold' && !settled.has(transfer.id) && from) from.held += transfer.amount;
    }
    for (const p of people) {
      const account = await t.call(AccountService, 'getAccount', { accountId: p.account }, { token: p.user.accessToken });
      const want = expected.get(p.account)!;
      if (account.balance !== want.balance || account.availableBalance !== want.balance - want.held) {
        problems.push(`account ${p.account}: balance ${account.balance} available ${account.availableBalance}, answers add up to ${want.balance} and ${want.balance - want.held}`);
      }
    }
    expect(problems).toEqual([]);

    expect(await checkLedgerInvariants(stack.db.pool, { acknowledged: created })).toEqual([]);
    // Backends flush their statistics at most once a second; wait so a deadlock would be counted.
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect(await deadlockCount(stack.db.pool)).toBe(deadlocksBefore);
    const counts = Object.fromEntries(['transfer', 'hold', 'capture', 'void', 'withdrawal', 'deposit', 'credit', 'refund', 'reversal'].map((o) => [
      o, `${acknowledged.filter((s) => s.operation === o).length}/${sent.filter((s) => s.operation === o).length}`,
    ]));
    console.log(`money storm: acknowledged/sent ${JSON.stringify(counts)}, ${sent.filter((s) => s.attempts.length === 2).length} retried on their keys`);
  }, 60_000);
});
