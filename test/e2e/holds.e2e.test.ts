// Holds over both edges: a transfer with `hold` reserves the amount on the sender's account
// (PENDING; the available balance drops, the balance does not, nothing reaches the receiver) until
// it is captured (in full or in part), voided or expires. Capture and void are idempotent, and only
// the sender or a banker settles a hold. The sweep is off in this suite, so expiry is seen where
// the issue says it is enforced: at the moment of a later read or use.
import { beforeAll, describe, expect, it } from '@jest/globals';
import { timestampDate, timestampFromDate } from '@bufbuild/protobuf/wkt';
import * as grpc from '@grpc/grpc-js';
import { AccountService } from '@bank/proto/bank/v1/account_service_pb';
import { TransferService } from '@bank/proto/bank/v1/transfer_service_pb';
import { AccountStatus, TransferKind, TransferStatus } from '@bank/proto/bank/v1/types_pb';
import { idemKey } from '../factories.ts';
import { moneyCast, openAccount, signUpAndLogIn, type LoggedInUser } from './flows.ts';
import { stackPerSuite } from './harness.ts';
import { failure, type Transport } from './transports.ts';

const suite = stackPerSuite({ env: { HOLD_SWEEP_INTERVAL_MS: '3600000' } });

const MISSING_ID = 987_654_321n;

describe.each(['http', 'grpc'] as const)('holds over %s', (name) => {
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
    ({ alice, bob, carol, banker, aliceAccount, bobAccount } = await moneyCast(t, suite.stack.smtp, suite.stack.db.pool, 10_000n));
  });

  const account = async (id: bigint, user: LoggedInUser) => t.call(AccountService, 'getAccount', { accountId: id }, { token: user.accessToken });
  const hold = (amount: bigint, ttlSeconds = 3_600, idempotencyKey = idemKey()) =>
    t.call(
      TransferService,
      'createTransfer',
      { fromAccountId: aliceAccount, toAccountId: bobAccount, amount, currency: 'USD', idempotencyKey, hold: { ttlSeconds } },
      { token: alice.accessToken },
    );
  const capture = (transferId: bigint, amount?: bigint, user = alice, idempotencyKey = idemKey()) =>
    t.call(TransferService, 'captureTransfer', { transferId, idempotencyKey, ...(amount !== undefined ? { amount } : {}) }, { token: user.accessToken });
  const voidHold = (transferId: bigint, user = alice, idempotencyKey = idemKey()) =>
    t.call(TransferService, 'voidTransfer', { transferId, idempotencyKey }, { token: user.accessToken });

  it('a hold reserves the amount: PENDING until its deadline, no entry, the balance unchanged and the available balance lower', async () => {
    const before = await account(aliceAccount, alice);
    const bobBefore = await account(bobAccount, bob);
    const placed = await hold(300n, 600);
    const transfer = placed.transfer!;
    expect(transfer).toMatchObject({ kind: TransferKind.TRANSFER, status: TransferStatus.PENDING, amount: 300n, fromAccountId: aliceAccount, toAccountId: bobAccount });
    expect(transfer.capturedAmount).toBeUndefined();
    expect(timestampDate(transfer.expiresAt!).getTime() - timestampDate(transfer.createdAt!).getTime()).toBe(600_000);
    expect(placed.fromEntry).toBeUndefined();
    expect(placed).toMatchObject({ fromBalance: before.balance, replayed: false });

    const after = await account(aliceAccount, alice);
    expect({ balance: after.balance, available: after.availableBalance }).toEqual({ balance: before.balance, available: before.availableBalance - 300n });
    expect((await account(bobAccount, bob)).balance).toBe(bobBefore.balance);
    expect((await t.call(TransferService, 'getTransfer', { transferId: transfer.id }, { token: bob.accessToken })).status).toBe(TransferStatus.PENDING);
    // GetBalance says the same now, and at an instant before the hold its reservation did not exist.
    const now = await t.call(AccountService, 'getBalance', { accountId: aliceAccount }, { token: alice.accessToken });
    expect({ balance: now.balance, available: now.availableBalance }).toEqual({ balance: before.balance, available: before.availableBalance - 300n });
    const createdAt = timestampDate(transfer.createdAt!);
    const earlier = await t.call(AccountService, 'getBalance', { accountId: aliceAccount, at: timestampFromDate(new Date(createdAt.getTime() - 1)) }, { token: alice.accessToken });
    expect({ balance: earlier.balance, available: earlier.availableBalance }).toEqual({ balance: before.balance, available: before.availableBalance });
    await voidHold(transfer.id);
    const afterVoid = await t.call(AccountService, 'getBalance', { accountId: aliceAccount, at: timestampFromDate(new Date(createdAt.getTime() + 1)) }, { token: alice.accessToken });
    expect(afterVoid.availableBalance).toBe(before.availableBalance - 300n);
  });

  it('a hold spends from the available balance: what is reserved cannot be sent again', async () => {
    const { availableBalance } = await account(aliceAccount, alice);
    const big = await hold(availableBalance - 10n);
    const refusal = await failure(
      t.call(TransferService, 'createTransfer', { fromAccountId: aliceAccount, toAccountId: bobAccount, amount: 11n, currency: 'USD', idempotencyKey: idemKey() }, { token: alice.accessToken }),
    );
    expect(refusal).toMatchObject({ code: 'INSUFFICIENT_FUNDS', status: status(422, grpc.status.FAILED_PRECONDITION) });
    await voidHold(big.transfer!.id);
  });

  it('a partial capture moves what it names to the receiver and releases the rest', async () => {
    const before = await account(aliceAccount, alice);
    const bobBefore = await account(bobAccount, bob);
    const placed = (await hold(300n)).transfer!;
    const captured = await capture(placed.id, 120n);
    expect(captured.transfer).toMatchObject({ id: placed.id, status: TransferStatus.POSTED, amount: 300n, capturedAmount: 120n });
    expect(captured.fromEntry).toMatchObject({ accountId: aliceAccount, transferId: placed.id, amount: -120n, balanceAfter: before.balance - 120n });
    expect(captured).toMatchObject({ fromBalance: before.balance - 120n, replayed: false });
    const after = await account(aliceAccount, alice);
    expect({ balance: after.balance, available: after.availableBalance }).toEqual({ balance: before.balance - 120n, available: before.availableBalance - 120n });
    expect((await account(bobAccount, bob)).balance).toBe(bobBefore.balance + 120n);
  });

  it('captures all that is held by default; the same key replays the capture and moves nothing more', async () => {
    const before = await account(aliceAccount, alice);
    const placed = (await hold(200n)).transfer!;
    const key = idemKey();
    const first = await capture(placed.id, undefined, alice, key);
    expect(first.transfer).toMatchObject({ status: TransferStatus.POSTED, capturedAmount: 200n });
    const again = await capture(placed.id, undefined, alice, key);
    expect(again).toMatchObject({ replayed: true, fromBalance: first.fromBalance });
    expect(again.transfer?.id).toBe(placed.id);
    expect((await account(aliceAccount, alice)).balance).toBe(before.balance - 200n);
    expect(await failure(capture(placed.id, 1n, alice, key))).toMatchObject({ code: 'IDEMPOTENCY_CONFLICT', status: status(409, grpc.status.FAILED_PRECONDITION) });
  });

  it('refuses a capture above the held amount, or of nothing, naming the amount', async () => {
    const placed = (await hold(100n)).transfer!;
    const above = await failure(capture(placed.id, 101n));
    expect(above).toMatchObject({ code: 'AMOUNT_OUT_OF_RANGE', status: status(400, grpc.status.INVALID_ARGUMENT) });
    expect(above.fieldViolations.map((v) => v.field)).toEqual(['amount']);
    const zero = await failure(capture(placed.id, 0n));
    expect(zero).toMatchObject({ status: status(400, grpc.status.INVALID_ARGUMENT) });
    expect(zero.fieldViolations.map((v) => v.field)).toEqual(['amount']);
    expect((await t.call(TransferService, 'getTransfer', { transferId: placed.id }, { token: alice.accessToken })).status).toBe(TransferStatus.PENDING);
    await voidHold(placed.id);
  });

  it('a void releases the reservation and moves nothing; it replays with its key, and a second void or a capture is refused', async () => {
    const before = await account(aliceAccount, alice);
    const placed = (await hold(250n)).transfer!;
    const key = idemKey();
    const voided = await voidHold(placed.id, alice, key);
    expect(voided).toMatchObject({ replayed: false, transfer: { id: placed.id, status: TransferStatus.VOIDED, amount: 250n } });
    expect(voided.transfer?.capturedAmount).toBeUndefined();
    const after = await account(aliceAccount, alice);
    expect({ balance: after.balance, available: after.availableBalance }).toEqual({ balance: before.balance, available: before.availableBalance });
    expect(await voidHold(placed.id, alice, key)).toMatchObject({ replayed: true, transfer: { id: placed.id, status: TransferStatus.VOIDED } });
    const notPending = { code: 'TRANSFER_NOT_PENDING', status: status(409, grpc.status.FAILED_PRECONDITION) };
    expect(await failure(voidHold(placed.id))).toMatchObject(notPending);
    expect(await failure(capture(placed.id))).toMatchObject(notPending);
  });

  it('a posted transfer is not a hold: capture and void are refused', async () => {
    const posted = await t.call(
      TransferService,
      'createTransfer',
      { fromAccountId: aliceAccount, toAccountId: bobAccount, amount: 5n, currency: 'USD', idempotencyKey: idemKey() },
      { token: alice.accessToken },
    );
    expect(posted.transfer?.status).toBe(TransferStatus.POSTED);
    expect(posted.transfer?.expiresAt).toBeUndefined();
    const notPending = { code: 'TRANSFER_NOT_PENDING', status: status(409, grpc.status.FAILED_PRECONDITION) };
    expect(await failure(capture(posted.transfer!.id))).toMatchObject(notPending);
    expect(await failure(voidHold(posted.transfer!.id))).toMatchObject(notPending);
  });

  it('only the sender or a banker settles a hold: the receiver is refused, another user finds nothing', async () => {
    const placed = (await hold(40n)).transfer!;
    const denied = { code: 'PERMISSION_DENIED', status: status(403, grpc.status.PERMISSION_DENIED) };
    expect(await failure(capture(placed.id, undefined, bob))).toMatchObject(denied);
    expect(await failure(voidHold(placed.id, bob))).toMatchObject(denied);
    const notFound = { code: 'TRANSFER_NOT_FOUND', status: status(404, grpc.status.NOT_FOUND) };
    for (const call of [capture(placed.id, undefined, carol), voidHold(placed.id, carol), capture(MISSING_ID, undefined, carol), voidHold(MISSING_ID, carol)]) {
      expect(await failure(call)).toMatchObject(notFound);
    }
    expect((await voidHold(placed.id, banker)).transfer?.status).toBe(TransferStatus.VOIDED);
    const another = (await hold(30n)).transfer!;
    expect((await capture(another.id, 10n, banker)).transfer).toMatchObject({ status: TransferStatus.POSTED, capturedAmount: 10n, initiatedBy: alice.username });
  });

  it('refuses a hold whose ttl is outside 1..2592000 seconds, naming hold.ttl_seconds', async () => {
    for (const ttl of [0, -1, 2_592_001]) {
      const refusal = await failure(hold(10n, ttl));
      expect(refusal).toMatchObject({ code: 'INVALID_ARGUMENT', status: status(400, grpc.status.INVALID_ARGUMENT) });
      expect(refusal.fieldViolations.map((v) => v.field)).toEqual(['hold.ttl_seconds']);
    }
    expect((await hold(10n, 2_592_000)).transfer?.status).toBe(TransferStatus.PENDING);
  });

  it('a hold replays with its key: one reservation, the same transfer', async () => {
    const before = await account(aliceAccount, alice);
    const key = idemKey();
    const first = await hold(70n, 3_600, key);
    const again = await hold(70n, 3_600, key);
    expect(again).toMatchObject({ replayed: true, fromBalance: first.fromBalance });
    expect(again.transfer?.id).toBe(first.transfer?.id);
    expect((await account(aliceAccount, alice)).availableBalance).toBe(before.availableBalance - 70n);
    expect(await failure(hold(70n, 60, key))).toMatchObject({ code: 'IDEMPOTENCY_CONFLICT' });
    await voidHold(first.transfer!.id);
  });

  it('a frozen receiver stops a capture, not a void; a frozen sender cannot place a hold', async () => {
    const placed = (await hold(60n)).transfer!;
    await t.call(AccountService, 'freezeAccount', { accountId: bobAccount, reason: 'holds e2e' }, { token: banker.accessToken });
    try {
      expect(await failure(capture(placed.id))).toMatchObject({ code: 'ACCOUNT_FROZEN', status: status(409, grpc.status.FAILED_PRECONDITION) });
      expect((await voidHold(placed.id)).transfer?.status).toBe(TransferStatus.VOIDED);
    } finally {
      await t.call(AccountService, 'unfreezeAccount', { accountId: bobAccount, reason: 'holds e2e done' }, { token: banker.accessToken });
    }
    await t.call(AccountService, 'freezeAccount', { accountId: aliceAccount, reason: 'holds e2e' }, { token: banker.accessToken });
    try {
      expect((await account(aliceAccount, alice)).status).toBe(AccountStatus.FROZEN);
      expect(await failure(hold(10n))).toMatchObject({ code: 'ACCOUNT_FROZEN' });
    } finally {
      await t.call(AccountService, 'unfreezeAccount', { accountId: aliceAccount, reason: 'holds e2e done' }, { token: banker.accessToken });
    }
  });

  it('an expired hold reads EXPIRED, no longer counts against the available balance, and cannot be captured', async () => {
    const before = await account(aliceAccount, alice);
    const placed = (await hold(90n, 1)).transfer!;
    // Waits for the server's clock to pass the deadline (the sweep is off): polls the read.
    const deadline = Date.now() + 10_000;
    let read = await t.call(TransferService, 'getTransfer', { transferId: placed.id }, { token: alice.accessToken });
    while (read.status === TransferStatus.PENDING && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      read = await t.call(TransferService, 'getTransfer', { transferId: placed.id }, { token: alice.accessToken });
    }
    expect(read.status).toBe(TransferStatus.EXPIRED);
    const after = await account(aliceAccount, alice);
    expect({ balance: after.balance, available: after.availableBalance }).toEqual({ balance: before.balance, available: before.availableBalance });
    expect(await failure(capture(placed.id))).toMatchObject({ code: 'HOLD_EXPIRED', status: status(409, grpc.status.FAILED_PRECONDITION) });
    // The refused capture marked it expired for good: a later use finds it settled.
    expect(await failure(voidHold(placed.id))).toMatchObject({ code: 'TRANSFER_NOT_PENDING' });
    expect((await t.call(TransferService, 'getTransfer', { transferId: placed.id }, { token: alice.accessToken })).status).toBe(TransferStatus.EXPIRED);
  });
});

describe('holds in canonical proto3 JSON', () => {
  it('a hold answers without fromEntry, with its status and deadline; a capture with capturedAmount as a decimal string', async () => {
    const t = suite.transports.get('http')!;
    const [alice, bob] = await Promise.all([signUpAndLogIn(t, suite.stack.smtp), signUpAndLogIn(t, suite.stack.smtp)]);
    const from = await openAccount(t, alice, 'EUR', 1_000n);
    const to = await openAccount(t, bob, 'EUR');
    const post = async (path: string, body: unknown, status: number) => {
      const response = await fetch(`${suite.stack.api.url}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${alice.accessToken}`, 'idempotency-key': idemKey() },
        body: JSON.stringify(body),
      });
      expect(response.status).toBe(status);
      return (await response.json()) as Record<string, unknown> & { transfer: Record<string, unknown> };
    };
    const placed = await post('/v1/transfers', { fromAccountId: String(from), toAccountId: String(to), amount: '400', currency: 'EUR', hold: { ttlSeconds: 60 } }, 201);
    expect(placed).not.toHaveProperty('fromEntry');
    expect(placed.fromBalance).toBe('1000');
    expect(placed.transfer).toMatchObject({ status: 'TRANSFER_STATUS_PENDING', kind: 'TRANSFER_KIND_TRANSFER', amount: '400' });
    expect(placed.transfer.expiresAt).toMatch(/^\d{4}-\d\d-\d\dT/);
    // The gateway writes every field (alwaysEmitImplicit): what a transfer lacks is an unset
    // optional, left out, or an empty string or map.
    for (const absent of ['capturedAmount', 'reversesTransferId', 'refundsTransferId']) expect(placed.transfer).not.toHaveProperty(absent);
    expect(placed.transfer).toMatchObject({ memo: '', reference: '', destination: '', metadata: {} });
    const captured = await post(`/v1/transfers/${String(placed.transfer.id)}/capture`, { amount: '150' }, 200);
    expect(captured.transfer).toMatchObject({ status: 'TRANSFER_STATUS_POSTED', capturedAmount: '150' });
    expect(captured).toMatchObject({ fromBalance: '850', fromEntry: { amount: '-150', balanceAfter: '850' } });
    const other = await post('/v1/transfers', { fromAccountId: String(from), toAccountId: String(to), amount: '5', currency: 'EUR', hold: { ttlSeconds: 60 } }, 201);
    const voided = await post(`/v1/transfers/${String(other.transfer.id)}/void`, {}, 200);
    expect(voided).toEqual({ transfer: expect.objectContaining({ status: 'TRANSFER_STATUS_VOIDED' }), replayed: false });
    const account = (await (await fetch(`${suite.stack.api.url}/v1/accounts/${from}`, { headers: { authorization: `Bearer ${alice.accessToken}` } })).json()) as Record<string, unknown>;
    expect(account).toMatchObject({ balance: '850', availableBalance: '850' });
  });
});
