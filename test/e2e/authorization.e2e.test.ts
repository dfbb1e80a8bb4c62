// Who may read and move whose money, over both transports. Another user's account or transfer
// answers exactly like one that does not exist, so nothing leaks whether it exists. Every route
// of the money model is in the matrix: sender, receiver, another user, a banker, no token.
import { beforeAll, describe, expect, it } from '@jest/globals';
import * as grpc from '@grpc/grpc-js';
import { sql } from 'slonik';
import { z } from 'zod';
import { AccountService } from '@bank/proto/bank/v1/account_service_pb';
import { AccountStatus } from '@bank/proto/bank/v1/types_pb';
import { AuditService } from '@bank/proto/bank/v1/audit_service_pb';
import { AuthService } from '@bank/proto/bank/v1/auth_service_pb';
import { TransferService } from '@bank/proto/bank/v1/transfer_service_pb';
import { UserService } from '@bank/proto/bank/v1/user_service_pb';
import { TokenMaker } from '@bank/shared/auth/token-maker';
import { idemKey } from '../factories.ts';
import { logIn, openAccount, signUpAndLogIn, type LoggedInUser } from './flows.ts';
import { stackPerSuite } from './harness.ts';
import { CallFailed, failure, type Transport } from './transports.ts';

const suite = stackPerSuite();

const MISSING_ID = 987_654_321n;

describe.each(['http', 'grpc'] as const)('authorization over %s', (name) => {
  let t: Transport;
  let alice: LoggedInUser;
  let mallory: LoggedInUser;
  let banker: LoggedInUser;
  let aliceAccount: bigint;
  let malloryAccount: bigint;
  let aliceTransfer: bigint;
  const expectedStatus = (httpStatus: number, grpcStatus: grpc.status) => (name === 'http' ? httpStatus : grpcStatus);

  beforeAll(async () => {
    t = suite.transports.get(name)!;
    alice = await signUpAndLogIn(t, suite.stack.smtp);
    mallory = await signUpAndLogIn(t, suite.stack.smtp);
    const b = await signUpAndLogIn(t, suite.stack.smtp);
    await suite.stack.db.pool.query(sql.type(z.object({}))`UPDATE users SET role = 'banker' WHERE username = ${b.username}`);
    banker = await logIn(t, suite.stack.smtp, b, 'code'); // a new session, so the token carries the role
    aliceAccount = (await t.call(AccountService, 'openAccount', { currency: 'EUR' }, { token: alice.accessToken })).id;
    malloryAccount = (await t.call(AccountService, 'openAccount', { currency: 'EUR' }, { token: mallory.accessToken })).id;
    await t.call(AccountService, 'deposit', { accountId: aliceAccount, amount: 5_000n, idempotencyKey: idemKey() }, { token: alice.accessToken });
    aliceTransfer = (
      await t.call(
        TransferService,
        'createTransfer',
        { fromAccountId: aliceAccount, toAccountId: malloryAccount, amount: 100n, currency: 'EUR', idempotencyKey: idemKey() },
        { token: alice.accessToken },
      )
    ).transfer!.id;
  });

  /** The same call on alice's resource and on one that does not exist must fail identically. */
  async function expectNoLeak(call: (id: bigint) => Promise<unknown>): Promise<CallFailed> {
    const onTheirs = await failure(call(aliceAccount));
    const onMissing = await failure(call(MISSING_ID));
    expect([expectedStatus(403, grpc.status.PERMISSION_DENIED), expectedStatus(404, grpc.status.NOT_FOUND)]).toContain(onTheirs.status);
    expect({ status: onTheirs.status, code: onTheirs.code }).toEqual({ status: onMissing.status, code: onMissing.code });
    expect(onTheirs.message.replaceAll(String(aliceAccount), '#')).toBe(onMissing.message.replaceAll(String(MISSING_ID), '#'));
    return onTheirs;
  }

  it('a second user can neither read nor move the first user\'s money, and learns nothing about it', async () => {
    const token = mallory.accessToken;
    await expectNoLeak((accountId) => t.call(AccountService, 'getAccount', { accountId }, { token }));
    await expectNoLeak((accountId) => t.call(AccountService, 'listEntries', { accountId }, { token }));
    await expectNoLeak((accountId) => t.call(AccountService, 'getBalance', { accountId }, { token }));
    await expectNoLeak((accountId) => t.call(TransferService, 'listTransfers', { accountId }, { token }));
    await expectNoLeak((accountId) => t.call(AccountService, 'closeAccount', { accountId }, { token }));
    await expectNoLeak((accountId) => t.call(AccountService, 'deposit', { accountId, amount: 10n, idempotencyKey: idemKey() }, { token }));
    await expectNoLeak((accountId) => t.call(AccountService, 'withdraw', { accountId, amount: 10n, destination: 'DE89370400440532013000', idempotencyKey: idemKey() }, { token }));
    await expectNoLeak((accountId) => t.call(TransferService, 'listTransfers', { accountId, reference: 'inv-1' }, { token }));
    // Freezing is for bankers: any other user is refused before the account is looked up.
    await expectNoLeak((accountId) => t.call(AccountService, 'freezeAccount', { accountId, reason: 'matrix' }, { token }));
    await expectNoLeak((accountId) => t.call(AccountService, 'unfreezeAccount', { accountId, reason: 'matrix' }, { token }));
    await expectNoLeak(
      (fromAccountId) =>
        t.call(TransferService, 'createTransfer', { fromAccountId, toAccountId: malloryAccount, amount: 10n, currency: 'EUR', idempotencyKey: idemKey() }, { token }),
    );
    const transferOfOthers = await failure(t.call(TransferService, 'getTransfer', { transferId: aliceTransfer }, { token: (await signUpAndLogIn(t, suite.stack.smtp)).accessToken }));
    const missingTransfer = await failure(t.call(TransferService, 'getTransfer', { transferId: MISSING_ID }, { token }));
    expect(transferOfOthers.code).toBe('TRANSFER_NOT_FOUND');
    expect(transferOfOthers.status).toBe(missingTransfer.status);
    expect(transferOfOthers.status).toBe(expectedStatus(404, grpc.status.NOT_FOUND));

    const profile = await failure(t.call(UserService, 'updateUser', { username: alice.username, fullName: 'Owned' }, { token }));
    expect(profile).toMatchObject({ code: 'PERMISSION_DENIED', status: expectedStatus(403, grpc.status.PERMISSION_DENIED) });
    const read = await failure(t.call(UserService, 'getUser', { username: alice.username }, { token }));
    expect([expectedStatus(403, grpc.status.PERMISSION_DENIED), expectedStatus(404, grpc.status.NOT_FOUND)]).toContain(read.status);
    const logout = await failure(t.call(AuthService, 'logout', { sessionId: alice.sessionId }, { token }));
    expect([expectedStatus(403, grpc.status.PERMISSION_DENIED), expectedStatus(404, grpc.status.NOT_FOUND)]).toContain(logout.status);

    // Nothing moved: alice still has 5000 - 100.
    expect((await t.call(AccountService, 'getAccount', { accountId: aliceAccount }, { token: alice.accessToken })).balance).toBe(4_900n);
  });

  it('a banker can read the first user\'s money but not move it', async () => {
    const token = banker.accessToken;
    expect((await t.call(AccountService, 'getAccount', { accountId: aliceAccount }, { token })).owner).toBe(alice.username);
    expect((await t.call(AccountService, 'listEntries', { accountId: aliceAccount }, { token })).entries.length).toBeGreaterThanOrEqual(2);
    expect((await t.call(TransferService, 'listTransfers', { accountId: aliceAccount }, { token })).transfers.length).toBeGreaterThanOrEqual(2);
    expect((await t.call(TransferService, 'getTransfer', { transferId: aliceTransfer }, { token })).amount).toBe(100n);
    expect((await t.call(UserService, 'getUser', { username: alice.username }, { token })).email).toBe(alice.email);

    const denied = [expectedStatus(403, grpc.status.PERMISSION_DENIED), expectedStatus(404, grpc.status.NOT_FOUND)];
    const bankerAccount = (await t.call(AccountService, 'openAccount', { currency: 'EUR' }, { token })).id;
    const moves = [
      t.call(AccountService, 'withdraw', { accountId: aliceAccount, amount: 10n, destination: 'DE89370400440532013000', idempotencyKey: idemKey() }, { token }),
      t.call(TransferService, 'createTransfer', { fromAccountId: aliceAccount, toAccountId: bankerAccount, amount: 10n, currency: 'EUR', idempotencyKey: idemKey() }, { token }),
      t.call(AccountService, 'closeAccount', { accountId: aliceAccount }, { token }),
      t.call(UserService, 'updateUser', { username: alice.username, fullName: 'Changed by banker' }, { token }),
    ];
    for (const move of moves) expect(denied).toContain((await failure(move)).status);
    // A banker credits a user's account only at the counter, with a memo for the audit trail.
    const credit = await failure(t.call(AccountService, 'deposit', { accountId: aliceAccount, amount: 10n, idempotencyKey: idemKey() }, { token }));
    expect(credit).toMatchObject({ code: 'INVALID_ARGUMENT', status: expectedStatus(400, grpc.status.INVALID_ARGUMENT) });
    expect(credit.fieldViolations.map((v) => v.field)).toEqual(['memo']);
    expect((await t.call(AccountService, 'getAccount', { accountId: aliceAccount }, { token: alice.accessToken })).balance).toBe(4_900n);
  });

  it('holds, withdrawals, reversals, refunds, credits and freezes: who may call each, and a stranger learns nothing', async () => {
    const [dave, erin] = await Promise.all([signUpAndLogIn(t, suite.stack.smtp), signUpAndLogIn(t, suite.stack.smtp)]);
    const daveAccount = await openAccount(t, dave, 'EUR', 5_000n);
    // Frozen and unfrozen by the matrix's banker: an account of its own, so no other route runs on a frozen account.
    const daveFreezable = await openAccount(t, dave, 'USD');
    const erinAccount = await openAccount(t, erin, 'EUR');
    const send = async (amount: bigint, hold = false) =>
      (
        await t.call(
          TransferService,
          'createTransfer',
          { fromAccountId: daveAccount, toAccountId: erinAccount, amount, currency: 'EUR', idempotencyKey: idemKey(), ...(hold ? { hold: { ttlSeconds: 600 } } : {}) },
          { token: dave.accessToken },
        )
      ).transfer!.id;
    const as = (user: LoggedInUser | undefined) => ({ token: user?.accessToken });
    const capture = (transferId: bigint, user?: LoggedInUser) => t.call(TransferService, 'captureTransfer', { transferId, idempotencyKey: idemKey() }, as(user));
    const voidHold = (transferId: bigint, user?: LoggedInUser) => t.call(TransferService, 'voidTransfer', { transferId, idempotencyKey: idemKey() }, as(user));
    const reverse = (transferId: bigint, user?: LoggedInUser) => t.call(TransferService, 'reverseTransfer', { transferId, memo: 'matrix', idempotencyKey: idemKey() }, as(user));
    const refund = (transferId: bigint, user?: LoggedInUser) => t.call(TransferService, 'refundTransfer', { transferId, amount: 1n, idempotencyKey: idemKey() }, as(user));
    const routes: Record<string, (user: LoggedInUser | undefined) => Promise<unknown>> = {
      CaptureTransfer: async (user) => capture(await send(10n, true), user),
      VoidTransfer: async (user) => voidHold(await send(10n, true), user),
      ReverseTransfer: async (user) => reverse(await send(10n), user),
      RefundTransfer: async (user) => refund(await send(10n), user),
      Withdraw: (user) => t.call(AccountService, 'withdraw', { accountId: daveAccount, amount: 1n, destination: 'DE89370400440532013000', idempotencyKey: idemKey() }, as(user)),
      Deposit: (user) => t.call(AccountService, 'deposit', { accountId: daveAccount, amount: 1n, memo: 'matrix', idempotencyKey: idemKey() }, as(user)),
      'ListTransfers by reference': (user) => t.call(TransferService, 'listTransfers', { accountId: daveAccount, reference: 'matrix' }, as(user)),
      FreezeAccount: (user) => t.call(AccountService, 'freezeAccount', { accountId: daveFreezable, reason: 'matrix' }, as(user)),
      UnfreezeAccount: (user) => t.call(AccountService, 'unfreezeAccount', { accountId: daveFreezable, reason: 'matrix' }, as(user)),
    };
    const callers: Record<string, LoggedInUser | undefined> = { sender: dave, receiver: erin, stranger: mallory, banker, 'no token': undefined };
    const statusOf: Record<string, number> = {
      PERMISSION_DENIED: expectedStatus(403, grpc.status.PERMISSION_DENIED),
      TRANSFER_NOT_FOUND: expectedStatus(404, grpc.status.NOT_FOUND),
      ACCOUNT_NOT_FOUND: expectedStatus(404, grpc.status.NOT_FOUND),
      UNAUTHENTICATED: expectedStatus(401, grpc.status.UNAUTHENTICATED),
    };
    const matrix: Record<string, Record<string, string>> = {};
    for (const [route, call] of Object.entries(routes)) {
      matrix[route] = {};
      for (const [who, user] of Object.entries(callers)) {
        matrix[route][who] = await call(user).then(
          () => 'ok',
          (error: unknown) => {
            if (!(error instanceof CallFailed)) throw error;
            expect({ route, who, code: error.code, status: error.status }).toEqual({ route, who, code: error.code, status: statusOf[error.code] });
            return error.code;
          },
        );
      }
    }
    const settle = { sender: 'ok', receiver: 'PERMISSION_DENIED', stranger: 'TRANSFER_NOT_FOUND', banker: 'ok', 'no token': 'UNAUTHENTICATED' };
    const sendersAccount = { sender: 'ok', receiver: 'ACCOUNT_NOT_FOUND', stranger: 'ACCOUNT_NOT_FOUND', 'no token': 'UNAUTHENTICATED' };
    expect(matrix).toEqual({
      CaptureTransfer: settle,
      VoidTransfer: settle,
      ReverseTransfer: { sender: 'PERMISSION_DENIED', receiver: 'PERMISSION_DENIED', stranger: 'PERMISSION_DENIED', banker: 'ok', 'no token': 'UNAUTHENTICATED' },
      RefundTransfer: { sender: 'PERMISSION_DENIED', receiver: 'ok', stranger: 'TRANSFER_NOT_FOUND', banker: 'PERMISSION_DENIED', 'no token': 'UNAUTHENTICATED' },
      Withdraw: { ...sendersAccount, banker: 'PERMISSION_DENIED' },
      Deposit: { ...sendersAccount, banker: 'ok' },
      'ListTransfers by reference': { ...sendersAccount, banker: 'ok' },
      // Bankers only, the account's owner included; the banker's freeze is undone by the unfreeze after it.
      FreezeAccount: { sender: 'PERMISSION_DENIED', receiver: 'PERMISSION_DENIED', stranger: 'PERMISSION_DENIED', banker: 'ok', 'no token': 'UNAUTHENTICATED' },
      UnfreezeAccount: { sender: 'PERMISSION_DENIED', receiver: 'PERMISSION_DENIED', stranger: 'PERMISSION_DENIED', banker: 'ok', 'no token': 'UNAUTHENTICATED' },
    });
    // The banker's calls did what they say: the freeze was audited and undone; the refusals changed nothing.
    expect((await t.call(AccountService, 'getAccount', { accountId: daveFreezable }, as(dave))).status).toBe(AccountStatus.OPEN);
    const trail = (await t.call(AuditService, 'listAuditEvents', { pageSize: 200 }, as(banker))).auditEvents.filter((e) => e.target === `account:${daveFreezable}`);
    expect(trail.map((e) => [e.action, e.actor]).sort()).toEqual([['account_frozen', banker.username], ['account_unfrozen', banker.username]]);

    // A stranger's refusal on a real transfer reads exactly like one on a transfer that does not exist.
    const hold = await send(10n, true);
    const posted = await send(10n);
    for (const [call, id] of [[capture, hold], [voidHold, hold], [refund, posted]] as const) {
      const onTheirs = await failure(call(id, mallory));
      const onMissing = await failure(call(MISSING_ID, mallory));
      expect({ status: onTheirs.status, code: onTheirs.code }).toEqual({ status: onMissing.status, code: onMissing.code });
      expect(onTheirs.message.replaceAll(String(id), '#')).toBe(onMissing.message.replaceAll(String(MISSING_ID), '#'));
    }
  });

  it('the audit trail: a banker reads it; the account owner, another user and no token do not', async () => {
    expect((await t.call(AuditService, 'listAuditEvents', { pageSize: 5 }, { token: banker.accessToken })).auditEvents.length).toBeLessThanOrEqual(5);
    const denied = { code: 'PERMISSION_DENIED', status: expectedStatus(403, grpc.status.PERMISSION_DENIED) };
    for (const [label, user] of [['depositor', alice], ['other user', mallory]] as const) {
      const error = await failure(t.call(AuditService, 'listAuditEvents', {}, { token: user.accessToken }));
      expect({ label, code: error.code, status: error.status }).toEqual({ label, ...denied });
    }
    const anonymous = await failure(t.call(AuditService, 'listAuditEvents', {}, {}));
    expect({ code: anonymous.code, status: anonymous.status }).toEqual({ code: 'UNAUTHENTICATED', status: expectedStatus(401, grpc.status.UNAUTHENTICATED) });
  });

  it('no token, a malformed token, an expired token, a refresh token or a logged-out token: all unauthenticated', async () => {
    const unauthenticated = { code: 'UNAUTHENTICATED', status: expectedStatus(401, grpc.status.UNAUTHENTICATED) };
    const expiredMaker = await TokenMaker.create({
      secretKey: suite.stack.config.PASETO_SECRET_KEY!,
      now: () => new Date(Date.now() - 2 * 3_600_000),
    });
    const expired = await expiredMaker.issue('access', { username: alice.username, role: 'depositor', sessionId: alice.sessionId, ttlSeconds: 60 });
    const otherKey = await TokenMaker.create({ secretKey: (await import('@bank/shared/auth/token-maker').then((m) => m.generatePasetoKeyPair())).secretKey });
    const forged = await otherKey.issue('access', { username: alice.username, role: 'banker', sessionId: alice.sessionId, ttlSeconds: 600 });
    const session = await signUpAndLogIn(t, suite.stack.smtp);
    await t.call(AuthService, 'logout', { sessionId: session.sessionId }, { token: session.accessToken });

    const tokens: [string, string | undefined][] = [
      ['none', undefined],
      ['garbage', 'not-a-token'],
      ['expired', expired.token],
      ['refresh token', alice.refreshToken],
      ['signed by another key', forged.token],
      ['logged out', session.accessToken],
    ];
    for (const [label, token] of tokens) {
      for (const call of [
        () => t.call(AccountService, 'listAccounts', {}, { token }),
        () => t.call(AccountService, 'getAccount', { accountId: aliceAccount }, { token }),
        () => t.call(AccountService, 'deposit', { accountId: aliceAccount, amount: 1n, idempotencyKey: idemKey() }, { token }),
        () => t.call(TransferService, 'createTransfer', { fromAccountId: aliceAccount, toAccountId: malloryAccount, amount: 1n, currency: 'EUR', idempotencyKey: idemKey() }, { token }),
        () => t.call(UserService, 'getUser', { username: alice.username }, { token }),
        () => t.call(AuditService, 'listAuditEvents', {}, { token }),
        () => t.call(AccountService, 'getBalance', { accountId: aliceAccount }, { token }),
        () => t.call(AccountService, 'withdraw', { accountId: aliceAccount, amount: 1n, destination: 'DE89370400440532013000', idempotencyKey: idemKey() }, { token }),
        () => t.call(TransferService, 'captureTransfer', { transferId: aliceTransfer, idempotencyKey: idemKey() }, { token }),
        () => t.call(TransferService, 'voidTransfer', { transferId: aliceTransfer, idempotencyKey: idemKey() }, { token }),
        () => t.call(TransferService, 'reverseTransfer', { transferId: aliceTransfer, memo: 'x', idempotencyKey: idemKey() }, { token }),
        () => t.call(TransferService, 'refundTransfer', { transferId: aliceTransfer, idempotencyKey: idemKey() }, { token }),
        () => t.call(AccountService, 'freezeAccount', { accountId: aliceAccount, reason: 'x' }, { token }),
        () => t.call(AccountService, 'unfreezeAccount', { accountId: aliceAccount, reason: 'x' }, { token }),
      ]) {
        const error = await failure(call());
        expect({ label, code: error.code, status: error.status }).toEqual({ label, ...unauthenticated });
      }
    }
    expect((await t.call(AccountService, 'getAccount', { accountId: aliceAccount }, { token: alice.accessToken })).balance).toBe(4_900n);
  });
});
