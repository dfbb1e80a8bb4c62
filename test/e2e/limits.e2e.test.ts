// Limits over both edges, on a stack with small ones: a self-service deposit is capped per
// deposit and per user per rolling day; outgoing transfers, holds and withdrawals per account per
// rolling day. A refusal is LIMIT_EXCEEDED (422 / FAILED_PRECONDITION) naming the limit and what
// remains (a decimal string), in the problem JSON and in the gRPC ErrorInfo metadata alike. A
// banker's credit at the counter is not capped but needs a memo.
import { beforeAll, describe, expect, it } from '@jest/globals';
import * as grpc from '@grpc/grpc-js';
import { AccountService } from '@bank/proto/bank/v1/account_service_pb';
import { AuditService } from '@bank/proto/bank/v1/audit_service_pb';
import { TransferService } from '@bank/proto/bank/v1/transfer_service_pb';
import { TransferKind } from '@bank/proto/bank/v1/types_pb';
import { idemKey } from '../factories.ts';
import { openAccount, signUpAndLogIn, signUpBanker, type LoggedInUser } from './flows.ts';
import { stackPerSuite } from './harness.ts';
import { failure, type Transport } from './transports.ts';

const suite = stackPerSuite({ env: { DEPOSIT_MAX_AMOUNT: '1000', DEPOSIT_DAILY_LIMIT: '2500', OUTGOING_DAILY_LIMIT: '1500' } });

describe.each(['http', 'grpc'] as const)('limits over %s', (name) => {
  let t: Transport;
  let banker: LoggedInUser;
  let payee: bigint;
  const status = (http: number, code: grpc.status) => (name === 'http' ? http : code);
  const limitExceeded = (limit: string, remaining: bigint) => ({
    code: 'LIMIT_EXCEEDED',
    status: status(422, grpc.status.FAILED_PRECONDITION),
    facts: { limit, remaining: String(remaining) },
  });

  beforeAll(async () => {
    t = suite.transports.get(name)!;
    banker = await signUpBanker(t, suite.stack.smtp, suite.stack.db.pool);
    payee = await openAccount(t, await signUpAndLogIn(t, suite.stack.smtp), 'USD');
  });

  /** A new user with a USD account (each test its own, so no two share a rolling day's total). */
  const newUser = async (): Promise<{ user: LoggedInUser; account: bigint }> => {
    const user = await signUpAndLogIn(t, suite.stack.smtp);
    return { user, account: await openAccount(t, user, 'USD') };
  };
  const deposit = (user: LoggedInUser, accountId: bigint, amount: bigint, memo?: string) =>
    t.call(AccountService, 'deposit', { accountId, amount, idempotencyKey: idemKey(), ...(memo ? { memo } : {}) }, { token: user.accessToken });
  const transfer = (user: LoggedInUser, fromAccountId: bigint, amount: bigint, hold = false) =>
    t.call(
      TransferService,
      'createTransfer',
      { fromAccountId, toAccountId: payee, amount, currency: 'USD', idempotencyKey: idemKey(), ...(hold ? { hold: { ttlSeconds: 600 } } : {}) },
      { token: user.accessToken },
    );
  const withdraw = (user: LoggedInUser, accountId: bigint, amount: bigint) =>
    t.call(AccountService, 'withdraw', { accountId, amount, destination: 'GB29 NWBK 6016 1331 9268 19', idempotencyKey: idemKey() }, { token: user.accessToken });
  /** Funds beyond the deposit limits, credited by the banker. */
  const fund = (accountId: bigint, amount: bigint) => deposit(banker, accountId, amount, 'opening balance');

  it('a deposit of exactly the cap passes; one minor unit more is refused, naming deposit_max_amount and the cap', async () => {
    const { user, account } = await newUser();
    expect((await deposit(user, account, 1_000n)).balance).toBe(1_000n);
    expect(await failure(deposit(user, account, 1_001n))).toMatchObject(limitExceeded('deposit_max_amount', 1_000n));
  });

  it('a user\'s deposits stop at the daily limit, and the refusal says how much is left today', async () => {
    const { user, account } = await newUser();
    await deposit(user, account, 1_000n);
    await deposit(user, account, 1_000n);
    expect(await failure(deposit(user, account, 501n))).toMatchObject(limitExceeded('deposit_daily_limit', 500n));
    expect((await deposit(user, account, 500n)).balance).toBe(2_500n);
    expect(await failure(deposit(user, account, 1n))).toMatchObject(limitExceeded('deposit_daily_limit', 0n));
    // A refused deposit changed nothing.
    expect((await t.call(AccountService, 'getAccount', { accountId: account }, { token: user.accessToken })).balance).toBe(2_500n);
  });

  it('a banker credits any user\'s account above the caps, with a memo kept in the audit trail; without a memo it is refused', async () => {
    const { user, account } = await newUser();
    const credit = await deposit(banker, account, 50_000n, 'cash at the counter');
    expect(credit.transfer).toMatchObject({ kind: TransferKind.DEPOSIT, amount: 50_000n, memo: 'cash at the counter', initiatedBy: banker.username, toAccountId: account });
    expect((await t.call(AccountService, 'getAccount', { accountId: account }, { token: user.accessToken })).balance).toBe(50_000n);
    // The owner's own deposits are still capped as if the credit had not happened.
    expect((await deposit(user, account, 1_000n)).balance).toBe(51_000n);
    const noMemo = await failure(deposit(banker, account, 10n));
    expect(noMemo).toMatchObject({ code: 'INVALID_ARGUMENT', status: status(400, grpc.status.INVALID_ARGUMENT) });
    expect(noMemo.fieldViolations.map((v) => v.field)).toEqual(['memo']);
    const events = await t.call(AuditService, 'listAuditEvents', { pageSize: 50 }, { token: banker.accessToken });
    expect(events.auditEvents.find((e) => e.target === `account:${account}`)).toMatchObject({ actor: banker.username, action: 'account_credited', reason: 'cash at the counter' });
  });

  it('transfers, holds and withdrawals share the outgoing daily limit; a voided hold gives its share back', async () => {
    const { user, account } = await newUser();
    await fund(account, 10_000n);
    await transfer(user, account, 500n);
    const held = await transfer(user, account, 500n, true);
    expect(await failure(withdraw(user, account, 600n))).toMatchObject(limitExceeded('outgoing_daily_limit', 500n));
    expect(await failure(transfer(user, account, 501n, true))).toMatchObject(limitExceeded('outgoing_daily_limit', 500n));
    await t.call(TransferService, 'voidTransfer', { transferId: held.transfer!.id, idempotencyKey: idemKey() }, { token: user.accessToken });
    await withdraw(user, account, 600n);
    expect(await failure(transfer(user, account, 401n))).toMatchObject(limitExceeded('outgoing_daily_limit', 400n));
    await transfer(user, account, 400n);
    expect(await failure(withdraw(user, account, 1n))).toMatchObject(limitExceeded('outgoing_daily_limit', 0n));
  });

  it('a hold counts once: at creation, not again when it is captured; a partial capture gives back the rest', async () => {
    const { user, account } = await newUser();
    await fund(account, 10_000n);
    const whole = await transfer(user, account, 1_000n, true);
    await t.call(TransferService, 'captureTransfer', { transferId: whole.transfer!.id, idempotencyKey: idemKey() }, { token: user.accessToken });
    const part = await transfer(user, account, 400n, true);
    await t.call(TransferService, 'captureTransfer', { transferId: part.transfer!.id, amount: 100n, idempotencyKey: idemKey() }, { token: user.accessToken });
    // Used: 1000 + 100 captured; the 300 released is free again.
    expect(await failure(transfer(user, account, 401n))).toMatchObject(limitExceeded('outgoing_daily_limit', 400n));
    await transfer(user, account, 400n);
  });
});
