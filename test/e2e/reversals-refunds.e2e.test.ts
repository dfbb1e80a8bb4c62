// Reversals and refunds over both edges. A banker reverses a posted transfer with a memo: one
// compensating REVERSAL back to where the money came from, at most once, recorded in the audit
// trail, allowed on a frozen account. The receiver of a transfer refunds it, in parts or at once,
// never more than it moved. Both are new transfers linked to the original, take idempotency keys,
// and refuse what would overdraw.
import { beforeAll, describe, expect, it } from '@jest/globals';
import * as grpc from '@grpc/grpc-js';
import { AccountService } from '@bank/proto/bank/v1/account_service_pb';
import { AuditService } from '@bank/proto/bank/v1/audit_service_pb';
import { TransferService } from '@bank/proto/bank/v1/transfer_service_pb';
import { TransferKind, TransferStatus } from '@bank/proto/bank/v1/types_pb';
import { idemKey } from '../factories.ts';
import { moneyCast, openAccount, signUpAndLogIn, type LoggedInUser } from './flows.ts';
import { stackPerSuite } from './harness.ts';
import { failure, type Transport } from './transports.ts';

const suite = stackPerSuite();

const MISSING_ID = 987_654_321n;

describe.each(['http', 'grpc'] as const)('reversals and refunds over %s', (name) => {
  let t: Transport;
  let alice: LoggedInUser;
  let bob: LoggedInUser;
  let carol: LoggedInUser;
  let banker: LoggedInUser;
  let aliceAccount: bigint;
  let bobAccount: bigint;
  const status = (http: number, code: grpc.status) => (name === 'http' ? http : code);

  beforeAll(async () => {
    t = suite.transports.get(name)!;
    ({ alice, bob, carol, banker, aliceAccount, bobAccount } = await moneyCast(t, suite.stack.smtp, suite.stack.db.pool, 100_000n));
  });

  const send = async (amount: bigint, options: { hold?: boolean } = {}) =>
    (
      await t.call(
        TransferService,
        'createTransfer',
        {
          fromAccountId: aliceAccount,
          toAccountId: bobAccount,
          amount,
          currency: 'USD',
          idempotencyKey: idemKey(),
          ...(options.hold ? { hold: { ttlSeconds: 600 } } : {}),
        },
        { token: alice.accessToken },
      )
    ).transfer!;
  const reverse = (transferId: bigint, options: { user?: LoggedInUser; memo?: string; idempotencyKey?: string } = {}) =>
    t.call(
      TransferService,
      'reverseTransfer',
      { transferId, memo: options.memo ?? 'sent in error', idempotencyKey: options.idempotencyKey ?? idemKey() },
      { token: (options.user ?? banker).accessToken },
    );
  const refund = (transferId: bigint, options: { user?: LoggedInUser; amount?: bigint; idempotencyKey?: string; memo?: string; reference?: string } = {}) =>
    t.call(
      TransferService,
      'refundTransfer',
      {
        transferId,
        idempotencyKey: options.idempotencyKey ?? idemKey(),
        ...(options.amount !== undefined ? { amount: options.amount } : {}),
        ...(options.memo !== undefined ? { memo: options.memo } : {}),
        ...(options.reference !== undefined ? { reference: options.reference } : {}),
      },
      { token: (options.user ?? bob).accessToken },
    );
  const balances = async () => ({
    alice: (await t.call(AccountService, 'getAccount', { accountId: aliceAccount }, { token: alice.accessToken })).balance,
    bob: (await t.call(AccountService, 'getAccount', { accountId: bobAccount }, { token: bob.accessToken })).balance,
  });

  it('a banker reverses a transfer: a REVERSAL of its amount back to the sender, linked to it, with the memo, in the audit trail', async () => {
    const original = await send(500n);
    const before = await balances();
    const reversed = await reverse(original.id, { memo: 'customer complaint #12' });
    expect(reversed.transfer).toMatchObject({
      kind: TransferKind.REVERSAL,
      status: TransferStatus.POSTED,
      fromAccountId: bobAccount,
      toAccountId: aliceAccount,
      amount: 500n,
      reversesTransferId: original.id,
      memo: 'customer complaint #12',
      initiatedBy: banker.username,
    });
    expect(reversed.transfer?.refundsTransferId).toBeUndefined();
    expect(reversed.fromEntry).toMatchObject({ accountId: bobAccount, amount: -500n });
    expect(reversed).toMatchObject({ fromBalance: before.bob - 500n, replayed: false });
    expect(await balances()).toEqual({ alice: before.alice + 500n, bob: before.bob - 500n });
    // Both parties see the reversal.
    expect((await t.call(TransferService, 'getTransfer', { transferId: reversed.transfer!.id }, { token: alice.accessToken })).reversesTransferId).toBe(original.id);
    const events = await t.call(AuditService, 'listAuditEvents', { pageSize: 50 }, { token: banker.accessToken });
    expect(events.auditEvents.find((e) => e.target === `transfer:${original.id}`)).toMatchObject({
      actor: banker.username,
      action: 'transfer_reversed',
      reason: 'customer complaint #12',
    });
  });

  it('reverses a transfer at most once; the same key replays the reversal', async () => {
    const original = await send(40n);
    const key = idemKey();
    const first = await reverse(original.id, { idempotencyKey: key });
    const again = await reverse(original.id, { idempotencyKey: key });
    expect(again).toMatchObject({ replayed: true });
    expect(again.transfer?.id).toBe(first.transfer?.id);
    expect(await failure(reverse(original.id))).toMatchObject({ code: 'TRANSFER_ALREADY_REVERSED', status: status(409, grpc.status.FAILED_PRECONDITION) });
  });

  it('only a banker reverses, not even the sender or the receiver; a reversal needs a memo', async () => {
    const original = await send(30n);
    const denied = { code: 'PERMISSION_DENIED', status: status(403, grpc.status.PERMISSION_DENIED) };
    for (const user of [alice, bob, carol]) expect(await failure(reverse(original.id, { user }))).toMatchObject(denied);
    for (const memo of ['', '   ', 'x'.repeat(141)]) {
      const refusal = await failure(reverse(original.id, { memo }));
      expect(refusal).toMatchObject({ code: 'INVALID_ARGUMENT', status: status(400, grpc.status.INVALID_ARGUMENT) });
      expect(refusal.fieldViolations.map((v) => v.field)).toEqual(['memo']);
    }
    expect(await failure(reverse(MISSING_ID))).toMatchObject({ code: 'TRANSFER_NOT_FOUND', status: status(404, grpc.status.NOT_FOUND) });
  });

  it('what moved no money, and a reversal itself, cannot be reversed', async () => {
    const notReversible = { code: 'TRANSFER_NOT_REVERSIBLE', status: status(409, grpc.status.FAILED_PRECONDITION) };
    const pending = await send(20n, { hold: true });
    expect(await failure(reverse(pending.id))).toMatchObject(notReversible);
    await t.call(TransferService, 'voidTransfer', { transferId: pending.id, idempotencyKey: idemKey() }, { token: alice.accessToken });
    expect(await failure(reverse(pending.id))).toMatchObject(notReversible);
    const reversal = (await reverse((await send(20n)).id)).transfer!;
    expect(await failure(reverse(reversal.id))).toMatchObject(notReversible);
  });

  it('a captured hold reverses by what was captured', async () => {
    const held = await send(300n, { hold: true });
    await t.call(TransferService, 'captureTransfer', { transferId: held.id, amount: 120n, idempotencyKey: idemKey() }, { token: alice.accessToken });
    expect((await reverse(held.id)).transfer).toMatchObject({ amount: 120n, reversesTransferId: held.id });
  });

  it('a reversal that would overdraw the receiver is refused', async () => {
    const dave = await signUpAndLogIn(t, suite.stack.smtp);
    const daveAccount = await openAccount(t, dave, 'USD');
    const original = (
      await t.call(TransferService, 'createTransfer', { fromAccountId: aliceAccount, toAccountId: daveAccount, amount: 300n, currency: 'USD', idempotencyKey: idemKey() }, { token: alice.accessToken })
    ).transfer!;
    await t.call(AccountService, 'withdraw', { accountId: daveAccount, amount: 250n, destination: 'NL91 ABNA 0417 1643 00', idempotencyKey: idemKey() }, { token: dave.accessToken });
    expect(await failure(reverse(original.id))).toMatchObject({ code: 'INSUFFICIENT_FUNDS', status: status(422, grpc.status.FAILED_PRECONDITION) });
  });

  it('a banker\'s reversal reaches a frozen account, which refuses everything else', async () => {
    const original = await send(60n);
    await t.call(AccountService, 'freezeAccount', { accountId: bobAccount, reason: 'reversal e2e' }, { token: banker.accessToken });
    try {
      expect(await failure(refund(original.id, { amount: 1n }))).toMatchObject({ code: 'ACCOUNT_FROZEN', status: status(409, grpc.status.FAILED_PRECONDITION) });
      expect((await reverse(original.id)).transfer).toMatchObject({ kind: TransferKind.REVERSAL, amount: 60n });
    } finally {
      await t.call(AccountService, 'unfreezeAccount', { accountId: bobAccount, reason: 'reversal e2e done' }, { token: banker.accessToken });
    }
  });

  it('the receiver refunds in parts; refunds never sum to more than the transfer, and a refusal says what remains', async () => {
    const original = await send(400n);
    const before = await balances();
    const part = await refund(original.id, { amount: 150n, memo: 'damaged item', reference: 'rma-1' });
    expect(part.transfer).toMatchObject({
      kind: TransferKind.REFUND,
      status: TransferStatus.POSTED,
      fromAccountId: bobAccount,
      toAccountId: aliceAccount,
      amount: 150n,
      refundsTransferId: original.id,
      memo: 'damaged item',
      reference: 'rma-1',
      initiatedBy: bob.username,
    });
    expect(part.transfer?.reversesTransferId).toBeUndefined();
    expect(part).toMatchObject({ fromBalance: before.bob - 150n, replayed: false, fromEntry: { accountId: bobAccount, amount: -150n } });

    const tooMuch = await failure(refund(original.id, { amount: 251n }));
    expect(tooMuch).toMatchObject({ code: 'REFUND_EXCEEDS_TRANSFER', status: status(422, grpc.status.FAILED_PRECONDITION), facts: { remaining: '250' } });
    expect(tooMuch.fieldViolations.map((v) => v.field)).toEqual(['amount']);

    const rest = await refund(original.id);
    expect(rest.transfer).toMatchObject({ amount: 250n, refundsTransferId: original.id });
    expect(await balances()).toEqual({ alice: before.alice + 400n, bob: before.bob - 400n });
    expect(await failure(refund(original.id, { amount: 1n }))).toMatchObject({ code: 'REFUND_EXCEEDS_TRANSFER', facts: { remaining: '0' } });
  });

  it('a refund replays with its key and moves the money once', async () => {
    const original = await send(90n);
    const before = await balances();
    const key = idemKey();
    const first = await refund(original.id, { amount: 30n, idempotencyKey: key });
    const again = await refund(original.id, { amount: 30n, idempotencyKey: key });
    expect(again).toMatchObject({ replayed: true, fromBalance: first.fromBalance });
    expect(again.transfer?.id).toBe(first.transfer?.id);
    expect(await balances()).toEqual({ alice: before.alice + 30n, bob: before.bob - 30n });
    expect(await failure(refund(original.id, { amount: 31n, idempotencyKey: key }))).toMatchObject({ code: 'IDEMPOTENCY_CONFLICT' });
  });

  it('only the receiver refunds: the sender and a banker are refused, another user finds nothing', async () => {
    const original = await send(50n);
    const denied = { code: 'PERMISSION_DENIED', status: status(403, grpc.status.PERMISSION_DENIED) };
    expect(await failure(refund(original.id, { user: alice }))).toMatchObject(denied);
    expect(await failure(refund(original.id, { user: banker }))).toMatchObject(denied);
    const notFound = { code: 'TRANSFER_NOT_FOUND', status: status(404, grpc.status.NOT_FOUND) };
    expect(await failure(refund(original.id, { user: carol }))).toMatchObject(notFound);
    expect(await failure(refund(MISSING_ID, { user: carol }))).toMatchObject(notFound);
  });

  it('refuses a refund of a deposit, of a hold, of a reversed transfer, and bad amounts naming the field', async () => {
    const notRefundable = { code: 'TRANSFER_NOT_REFUNDABLE', status: status(409, grpc.status.FAILED_PRECONDITION) };
    const deposit = await t.call(AccountService, 'deposit', { accountId: bobAccount, amount: 10n, idempotencyKey: idemKey() }, { token: bob.accessToken });
    expect(await failure(refund(deposit.transfer!.id))).toMatchObject(notRefundable);
    const pending = await send(10n, { hold: true });
    expect(await failure(refund(pending.id))).toMatchObject(notRefundable);
    const reversed = await send(10n);
    await reverse(reversed.id);
    expect(await failure(refund(reversed.id))).toMatchObject(notRefundable);
    for (const amount of [0n, -1n]) {
      const refusal = await failure(refund((await send(10n)).id, { amount }));
      expect(refusal).toMatchObject({ status: status(400, grpc.status.INVALID_ARGUMENT) });
      expect(refusal.fieldViolations.map((v) => v.field)).toEqual(['amount']);
    }
  });

  it('a partly refunded transfer reverses only what is left, and then refunds nothing more', async () => {
    const original = await send(600n);
    await refund(original.id, { amount: 200n });
    expect((await reverse(original.id)).transfer).toMatchObject({ amount: 400n, reversesTransferId: original.id });
    expect(await failure(refund(original.id, { amount: 1n }))).toMatchObject({ code: 'TRANSFER_NOT_REFUNDABLE' });
  });
});
