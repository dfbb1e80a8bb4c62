// Freezing over both edges: a banker freezes an account with a reason; it stays readable, refuses
// money in and out with ACCOUNT_FROZEN (409 / FAILED_PRECONDITION), shows in the audit trail, and
// moves money again once unfrozen. Depositors may not freeze.
import { beforeAll, describe, expect, it } from '@jest/globals';
import * as grpc from '@grpc/grpc-js';
import { sql } from 'slonik';
import { z } from 'zod';
import { AccountService } from '@bank/proto/bank/v1/account_service_pb';
import { AuditService } from '@bank/proto/bank/v1/audit_service_pb';
import { TransferService } from '@bank/proto/bank/v1/transfer_service_pb';
import { AccountStatus } from '@bank/proto/bank/v1/types_pb';
import { idemKey } from '../factories.ts';
import { logIn, signUp, signUpAndLogIn, type LoggedInUser } from './flows.ts';
import { stackPerSuite } from './harness.ts';
import { failure, type Transport } from './transports.ts';

const suite = stackPerSuite();

describe.each(['http', 'grpc'] as const)('freezing over %s', (name) => {
  let t: Transport;
  let alice: LoggedInUser;
  let bob: LoggedInUser;
  let banker: LoggedInUser;
  let aliceAccount: bigint;
  let bobAccount: bigint;
  const status = (http: number, code: grpc.status) => (name === 'http' ? http : code);

  beforeAll(async () => {
    t = suite.transports.get(name)!;
    [alice, bob] = await Promise.all([signUpAndLogIn(t, suite.stack.smtp), signUpAndLogIn(t, suite.stack.smtp)]);
    const b = await signUp(t, suite.stack.smtp);
    await suite.stack.db.pool.query(sql.type(z.object({}))`UPDATE users SET role = 'banker' WHERE username = ${b.username}`);
    banker = await logIn(t, suite.stack.smtp, b, 'code');
    aliceAccount = (await t.call(AccountService, 'openAccount', { currency: 'USD' }, { token: alice.accessToken })).id;
    bobAccount = (await t.call(AccountService, 'openAccount', { currency: 'USD' }, { token: bob.accessToken })).id;
    await t.call(AccountService, 'deposit', { accountId: aliceAccount, amount: 500n, idempotencyKey: idemKey() }, { token: alice.accessToken });
  });

  it('a banker freezes an account with a reason; it stays readable and refuses money in and out', async () => {
    const frozen = await t.call(AccountService, 'freezeAccount', { accountId: aliceAccount, reason: 'chargeback investigation' }, { token: banker.accessToken });
    expect(frozen).toMatchObject({ id: aliceAccount, status: AccountStatus.FROZEN, balance: 500n });
    expect((await t.call(AccountService, 'getAccount', { accountId: aliceAccount }, { token: alice.accessToken })).status).toBe(AccountStatus.FROZEN);
    const refusals = [
      await failure(t.call(TransferService, 'createTransfer', { fromAccountId: aliceAccount, toAccountId: bobAccount, amount: 1n, currency: 'USD', idempotencyKey: idemKey() }, { token: alice.accessToken })),
      await failure(t.call(TransferService, 'createTransfer', { fromAccountId: bobAccount, toAccountId: aliceAccount, amount: 1n, currency: 'USD', idempotencyKey: idemKey() }, { token: bob.accessToken })),
      await failure(t.call(AccountService, 'deposit', { accountId: aliceAccount, amount: 1n, idempotencyKey: idemKey() }, { token: alice.accessToken })),
    ];
    for (const refusal of refusals) expect(refusal).toMatchObject({ code: 'ACCOUNT_FROZEN', status: status(409, grpc.status.FAILED_PRECONDITION) });
  });

  it('records the freeze in the audit trail a banker reads', async () => {
    const events = await t.call(AuditService, 'listAuditEvents', { pageSize: 50 }, { token: banker.accessToken });
    expect(events.auditEvents.find((e) => e.target === `account:${aliceAccount}`)).toMatchObject({
      actor: banker.username,
      action: 'account_frozen',
      reason: 'chargeback investigation',
    });
  });

  it('refuses a depositor who tries to freeze or unfreeze, and a freeze without a reason', async () => {
    expect(await failure(t.call(AccountService, 'freezeAccount', { accountId: bobAccount, reason: 'mine' }, { token: bob.accessToken }))).toMatchObject({
      code: 'PERMISSION_DENIED',
      status: status(403, grpc.status.PERMISSION_DENIED),
    });
    expect(await failure(t.call(AccountService, 'unfreezeAccount', { accountId: aliceAccount, reason: 'let me out' }, { token: alice.accessToken }))).toMatchObject({
      code: 'PERMISSION_DENIED',
    });
    const noReason = await failure(t.call(AccountService, 'freezeAccount', { accountId: bobAccount }, { token: banker.accessToken }));
    expect(noReason).toMatchObject({ code: 'INVALID_ARGUMENT', status: status(400, grpc.status.INVALID_ARGUMENT) });
    expect(noReason.fieldViolations.map((v) => v.field)).toEqual(['reason']);
    expect(await failure(t.call(AccountService, 'freezeAccount', { accountId: bobAccount, reason: 'x' }))).toMatchObject({ code: 'UNAUTHENTICATED' });
  });

  it('moves money again once a banker unfreezes it', async () => {
    const open = await t.call(AccountService, 'unfreezeAccount', { accountId: aliceAccount, reason: 'cleared' }, { token: banker.accessToken });
    expect(open.status).toBe(AccountStatus.OPEN);
    const moved = await t.call(TransferService, 'createTransfer', { fromAccountId: aliceAccount, toAccountId: bobAccount, amount: 5n, currency: 'USD', idempotencyKey: idemKey() }, { token: alice.accessToken });
    expect(moved.fromBalance).toBe(495n);
  });
});
