// ledger_apply() writes a batch's rows once, at its end (migration 0019): each operation of one
// call must still see what the earlier ones of the same call did, on the real PostgreSQL.
// Balances, the available balance after a hold, refunds and reversals of the same transfer, the
// answers' entries and balances against the rows written, and the events of the batch.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { sql } from 'slonik';
import { z } from 'zod';
import { createTestDatabase, type TestDatabase } from '../../../test/db.ts';
import { balanceOf, createUser, fundedHolder, idemKey, type Holder } from '../../../test/factories.ts';
import { checkLedgerInvariants } from '../../../test/ledger-invariants.ts';
import type { Actor } from '../auth/actor.ts';
import { InsufficientFunds, RefundExceedsTransfer, TransferAlreadyReversed, TransferNotRefundable, type DomainError } from '../errors/domain-error.ts';
import { LedgerService } from './ledger.service.ts';
import { ledgerRepository, type MoveCommand } from './ledger.repository.ts';
import type { TransferResult } from './ledger.types.ts';

let db: TestDatabase;
let ledger: LedgerService;

beforeAll(async () => {
  db = await createTestDatabase();
  ledger = new LedgerService({ pool: db.pool });
});
afterAll(async () => {
  await db?.drop();
});

const holder = (funds: bigint) => fundedHolder(db.pool, ledger, funds);

const NO_LIMITS = { depositMaxAmount: null, depositDailyLimit: null, outgoingDailyLimit: null };
const PLAIN = { targetTransferId: null, holdTtlSeconds: null, memo: null, reference: null, metadata: {}, destination: null } as const;

function command(actor: Actor, fields: Partial<MoveCommand> & Pick<MoveCommand, 'operation'>): MoveCommand {
  const idempotencyKey = idemKey();
  return {
    ...PLAIN,
    actor: actor.username,
    actorRole: actor.role,
    idempotencyKey,
    requestHash: `h-${idempotencyKey}`,
    fromAccountId: null,
    toAccountId: null,
    amount: null,
    currency: null,
    ...fields,
  };
}

const send = (from: Holder, to: Holder, amount: bigint, extra: Partial<MoveCommand> = {}) =>
  command(from.actor, { operation: 'transfer', fromAccountId: from.account.id, toAccountId: to.account.id, amount, currency: 'USD', ...extra });

/** One call of ledger_apply(): one batch. */
const batch = (commands: MoveCommand[]) => ledgerRepository.moveBatch(db.pool, commands, NO_LIMITS);

const ok = (answer: TransferResult | DomainError | undefined): TransferResult => {
  if (answer === undefined || !('transfer' in answer)) throw new Error(`expected a movement, got ${String((answer as DomainError | undefined)?.code)}`);
  return answer;
};

const balance = (id: bigint) => balanceOf(db.pool, id);

describe('one batch sees its own operations', () => {
  it('spends what the earlier operations left: balances, refusals and entries in the order applied', async () => {
    const [a, b, c] = [await holder(100n), await holder(50n), await holder(0n)] as [Holder, Holder, Holder];
    const answers = await batch([send(a, b, 60n), send(a, c, 60n), send(b, c, 110n), send(a, c, 40n), send(b, c, 1n)]);
    expect(ok(answers[0])).toMatchObject({ fromBalance: 40n, toBalance: 110n });
    expect(answers[1]).toBeInstanceOf(InsufficientFunds);
    expect(ok(answers[2])).toMatchObject({ fromBalance: 0n, toBalance: 110n });
    expect(ok(answers[3])).toMatchObject({ fromBalance: 0n, toBalance: 150n });
    expect(answers[4]).toBeInstanceOf(InsufficientFunds);
    expect([await balance(a.account.id), await balance(b.account.id), await balance(c.account.id)]).toEqual([0n, 0n, 150n]);

    // The entries the answers named are the rows written, and each account's history in
    // (created_at, id) order runs through the balances in the order they were applied.
    for (const answer of [answers[0], answers[2], answers[3]].map(ok)) {
      const rows = await db.pool.many(sql.type(z.object({ id: z.bigint(), account_id: z.bigint(), amount: z.bigint(), balance_after: z.bigint() }))`
        SELECT id, account_id, amount, balance_after FROM entries WHERE transfer_id = ${answer.transfer.id} ORDER BY id`);
      expect(rows).toEqual([
        { id: answer.fromEntry?.id, account_id: answer.transfer.fromAccountId, amount: -answer.transfer.amount, balance_after: answer.fromBalance },
        { id: answer.toEntry?.id, account_id: answer.transfer.toAccountId, amount: answer.transfer.amount, balance_after: answer.toBalance },
      ]);
    }
    const history = await db.pool.anyFirst(sql.type(z.object({ balance_after: z.bigint() }))`
      SELECT balance_after FROM entries WHERE account_id = ${c.account.id} ORDER BY created_at, id`);
    expect(history).toEqual([110n, 150n]);
    expect(await checkLedgerInvariants(db.pool)).toEqual([]);
  });

  it('counts a hold placed earlier in the batch against the available balance', async () => {
    const [a, b] = [await holder(100n), await holder(0n)] as [Holder, Holder];
    const answers = await batch([send(a, b, 70n, { holdTtlSeconds: 300 }), send(a, b, 50n), send(a, b, 30n)]);
    expect(ok(answers[0]).transfer).toMatchObject({ status: 'pending', amount: 70n });
    expect(answers[1]).toBeInstanceOf(InsufficientFunds);
    expect(ok(answers[2])).toMatchObject({ fromBalance: 70n, toBalance: 30n });
    expect(await ledger.getAccount(a.actor, a.account.id)).toMatchObject({ balance: 70n, availableBalance: 0n });
    expect(await checkLedgerInvariants(db.pool)).toEqual([]);
  });

  it('adds up refunds of one transfer in one batch, and refuses what exceeds it', async () => {
    const [a, b] = [await holder(100n), await holder(0n)] as [Holder, Holder];
    const original = ok((await batch([send(a, b, 100n)]))[0]);
    const refund = (amount: bigint) => command(b.actor, { operation: 'refund', targetTransferId: original.transfer.id, amount });
    const answers = await batch([refund(60n), refund(60n), refund(40n)]);
    expect(ok(answers[0]).transfer).toMatchObject({ kind: 'refund', amount: 60n });
    expect(answers[1]).toBeInstanceOf(RefundExceedsTransfer);
    expect((answers[1] as DomainError).message).toContain('40');
    expect(ok(answers[2])).toMatchObject({ fromBalance: 0n, toBalance: 100n });
    expect(await checkLedgerInvariants(db.pool)).toEqual([]);
  });

  it('reverses a transfer once per batch, and sees a reversal or refund made earlier in it', async () => {
    const banker = await createUser(db.pool, { role: 'banker' });
    const [a, b] = [await holder(300n), await holder(0n)] as [Holder, Holder];
    const [first, second] = (await batch([send(a, b, 100n), send(a, b, 100n)])).map(ok) as [TransferResult, TransferResult];
    const reverse = (target: TransferResult) => command(banker, { operation: 'reversal', targetTransferId: target.transfer.id });
    const refund = (target: TransferResult, amount: bigint) => command(b.actor, { operation: 'refund', targetTransferId: target.transfer.id, amount });

    const answers = await batch([reverse(first), reverse(first), refund(first, 10n), refund(second, 30n), reverse(second)]);
    expect(ok(answers[0]).transfer).toMatchObject({ kind: 'reversal', amount: 100n });
    expect(answers[1]).toBeInstanceOf(TransferAlreadyReversed);
    expect(answers[2]).toBeInstanceOf(TransferNotRefundable);
    expect(ok(answers[3]).transfer).toMatchObject({ kind: 'refund', amount: 30n });
    // What the refund earlier in the batch sent back is not reversed again.
    expect(ok(answers[4]).transfer).toMatchObject({ kind: 'reversal', amount: 70n });
    expect([await balance(a.account.id), await balance(b.account.id)]).toEqual([300n, 0n]);
    expect(await checkLedgerInvariants(db.pool)).toEqual([]);
  });

  it('writes one event per transfer it created, in id order, with the transfer as written', async () => {
    const [a, b] = [await holder(100n), await holder(0n)] as [Holder, Holder];
    const answers = (await batch([send(a, b, 10n), send(a, b, 20n, { holdTtlSeconds: 60 }), send(a, b, 30n, { memo: 'rent' })])).map(ok);
    const ids = answers.map((answer) => answer.transfer.id);
    const events = await db.pool.many(sql.type(z.object({ type: z.string(), transfer_id: z.bigint(), same: z.boolean(), born_notified: z.boolean(), born_webhooked: z.boolean() }))`
      SELECT e.type, e.transfer_id, e.data = to_jsonb(t) AS same,
             e.notified_at IS NOT NULL AS born_notified, e.webhooked_at IS NOT NULL AS born_webhooked
        FROM events e JOIN transfers t ON t.id = e.transfer_id
       WHERE e.transfer_id = ANY(${sql.array(ids.map(String), 'int8')}) ORDER BY e.id`);
    expect(events).toEqual([
      { type: 'transfer.posted', transfer_id: ids[0], same: true, born_notified: false, born_webhooked: true },
      { type: 'transfer.pending', transfer_id: ids[1], same: true, born_notified: true, born_webhooked: true },
      { type: 'transfer.posted', transfer_id: ids[2], same: true, born_notified: false, born_webhooked: true },
    ]);
  });

  it('answers a replay from the key written at the end of the batch, and leaves no key unanswered', async () => {
    const [a, b] = [await holder(100n), await holder(0n)] as [Holder, Holder];
    const first = send(a, b, 25n);
    const made = ok((await batch([first, send(a, b, 5n)]))[0]);
    const [again] = await batch([first]);
    expect(ok(again)).toEqual({ ...made, replayed: true });
    const unanswered = await db.pool.oneFirst(sql.type(z.object({ n: z.number() }))`
      SELECT count(*)::int AS n FROM idempotency_keys WHERE username = ${a.actor.username} AND response IS NULL`);
    expect(unanswered).toBe(0);
  });
});
