// The whole user journey, the same steps over HTTP (generated REST client) and gRPC.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as grpc from '@grpc/grpc-js';
import { AccountService } from '../../proto/gen/bank/v1/account_service_pb.ts';
import { AuthService } from '../../proto/gen/bank/v1/auth_service_pb.ts';
import { TransferService } from '../../proto/gen/bank/v1/transfer_service_pb.ts';
import { AccountStatus, TransferKind } from '../../proto/gen/bank/v1/types_pb.ts';
import { UserService } from '../../proto/gen/bank/v1/user_service_pb.ts';
import { checkLedgerInvariants } from '../ledger-invariants.ts';
import { idemKey } from '../factories.ts';
import { loginEmailFor, signUpAndLogIn, verificationLinkFor } from './flows.ts';
import { startStack, uniqueName, type Stack } from './harness.ts';
import { failure, grpcTransport, httpTransport, type Transport, type TransportName } from './transports.ts';

let stack: Stack;
const transports = new Map<TransportName, Transport>();
beforeAll(async () => {
  stack = await startStack();
  transports.set('http', httpTransport(stack.api.url));
  transports.set('grpc', grpcTransport(stack.grpc.address));
});
afterAll(async () => {
  for (const t of transports.values()) t.close();
  await stack?.stop();
});

const status = (name: TransportName, http: number, grpcCode: grpc.status) => (name === 'http' ? http : grpcCode);

describe.each(['http', 'grpc'] as const)('the user journey over %s', (name) => {
  it('signs up, verifies from the emailed link, logs in from the emailed code, moves money, pages history, closes, refreshes and logs out', async () => {
    const t = transports.get(name)!;

    // Sign up; the verification link arrives by SMTP. Over HTTP the link itself is followed.
    const username = uniqueName('alice');
    const email = `${username}@example.test`;
    const password = 'correct horse battery';
    const created = await t.call(UserService, 'createUser', { username, fullName: 'Alice Example', email, password });
    expect(created).toMatchObject({ username, email, isEmailVerified: false });
    const link = await verificationLinkFor(stack.smtp, email);
    expect(link.pathname).toBe('/v1/verify-email');
    if (name === 'http') {
      const response = await fetch(`${stack.api.url}${link.pathname}${link.search}`);
      expect(response.status).toBe(200);
      expect(await response.json()).toEqual({ isVerified: true });
    } else {
      const verified = await t.call(UserService, 'verifyEmail', {
        emailId: BigInt(link.searchParams.get('email_id')!),
        secretCode: link.searchParams.get('secret_code')!,
      });
      expect(verified.isVerified).toBe(true);
    }

    // Two-step login: step 1 answers only the pending session id; the email has code and token.
    const { sessionId } = await t.call(AuthService, 'login', { username, password });
    expect(sessionId).toMatch(/^[0-9a-f-]{36}$/);
    const mail = await loginEmailFor(stack.smtp, sessionId);
    const tokens = await t.call(AuthService, 'confirmLogin', name === 'http' ? { sessionId, token: mail.token } : { sessionId, code: mail.code });
    expect(tokens.accessToken).toMatch(/^v4\.public\./);
    expect(tokens.refreshToken).toMatch(/^v4\.public\./);
    expect(tokens.user?.isEmailVerified).toBe(true);
    const token = tokens.accessToken;

    const bob = await signUpAndLogIn(t, stack.smtp);

    // Accounts and a deposit, replayed with the same Idempotency-Key.
    const mine = await t.call(AccountService, 'openAccount', { currency: 'USD' }, { token });
    expect(mine).toMatchObject({ owner: username, currency: 'USD', balance: 0n, status: AccountStatus.OPEN });
    const theirs = await t.call(AccountService, 'openAccount', { currency: 'USD' }, { token: bob.accessToken });
    const depositKey = idemKey();
    const deposit = await t.call(AccountService, 'deposit', { accountId: mine.id, amount: 10_000n, idempotencyKey: depositKey }, { token });
    expect(deposit).toMatchObject({ balance: 10_000n, replayed: false });
    expect(deposit.transfer?.kind).toBe(TransferKind.DEPOSIT);
    const replay = await t.call(AccountService, 'deposit', { accountId: mine.id, amount: 10_000n, idempotencyKey: depositKey }, { token });
    expect(replay).toMatchObject({ balance: 10_000n, replayed: true });
    expect(replay.transfer?.id).toBe(deposit.transfer?.id);
    const conflict = await failure(t.call(AccountService, 'deposit', { accountId: mine.id, amount: 5n, idempotencyKey: depositKey }, { token }));
    expect(conflict).toMatchObject({ code: 'IDEMPOTENCY_CONFLICT', status: status(name, 409, grpc.status.FAILED_PRECONDITION) });

    // Twelve transfers to bob, then one too many.
    const transferIds: bigint[] = [];
    for (let i = 0; i < 12; i++) {
      const result = await t.call(
        TransferService,
        'createTransfer',
        { fromAccountId: mine.id, toAccountId: theirs.id, amount: 700n, currency: 'USD', idempotencyKey: idemKey() },
        { token },
      );
      expect(result.fromBalance).toBe(10_000n - 700n * BigInt(i + 1));
      transferIds.push(result.transfer!.id);
    }
    const tooMuch = await failure(
      t.call(TransferService, 'createTransfer', { fromAccountId: mine.id, toAccountId: theirs.id, amount: 2_000n, currency: 'USD', idempotencyKey: idemKey() }, { token }),
    );
    expect(tooMuch).toMatchObject({ code: 'INSUFFICIENT_FUNDS', status: status(name, 422, grpc.status.FAILED_PRECONDITION) });
    expect((await t.call(AccountService, 'getAccount', { accountId: mine.id }, { token })).balance).toBe(1_600n);
    expect((await t.call(TransferService, 'getTransfer', { transferId: transferIds[3]! }, { token })).amount).toBe(700n);

    // History, page by page (5 per page): 1 deposit + 12 transfers, newest first, no repeats.
    const entries: bigint[] = [];
    let pageToken = '';
    let pages = 0;
    do {
      const page = await t.call(AccountService, 'listEntries', { accountId: mine.id, pageSize: 5, pageToken }, { token });
      expect(page.entries.length).toBeLessThanOrEqual(5);
      entries.push(...page.entries.map((e) => e.amount));
      pageToken = page.nextPageToken;
      pages++;
    } while (pageToken !== '' && pages < 10);
    expect(pages).toBe(3);
    expect(entries).toEqual([...Array.from({ length: 12 }, () => -700n), 10_000n]);
    const seenTransfers: bigint[] = [];
    pageToken = '';
    do {
      const page = await t.call(TransferService, 'listTransfers', { accountId: mine.id, pageSize: 4, pageToken }, { token });
      seenTransfers.push(...page.transfers.map((x) => x.id));
      pageToken = page.nextPageToken;
    } while (pageToken !== '');
    expect(new Set(seenTransfers).size).toBe(13);
    expect(seenTransfers).toEqual(expect.arrayContaining(transferIds));

    // Close: refused while money is there, then accepted at zero; history stays readable.
    const notEmpty = await failure(t.call(AccountService, 'closeAccount', { accountId: mine.id }, { token }));
    expect(notEmpty).toMatchObject({ code: 'ACCOUNT_NOT_EMPTY', status: status(name, 409, grpc.status.FAILED_PRECONDITION) });
    await t.call(TransferService, 'createTransfer', { fromAccountId: mine.id, toAccountId: theirs.id, amount: 1_600n, currency: 'USD', idempotencyKey: idemKey() }, { token });
    const closed = await t.call(AccountService, 'closeAccount', { accountId: mine.id }, { token });
    expect(closed.status).toBe(AccountStatus.CLOSED);
    expect(closed.closedAt).toBeDefined();
    const afterClose = await failure(t.call(AccountService, 'deposit', { accountId: mine.id, amount: 1n, idempotencyKey: idemKey() }, { token }));
    expect(afterClose).toMatchObject({ code: 'ACCOUNT_CLOSED', status: status(name, 409, grpc.status.FAILED_PRECONDITION) });
    expect((await t.call(AccountService, 'listEntries', { accountId: mine.id, pageSize: 50 }, { token })).entries).toHaveLength(14);
    expect((await t.call(AccountService, 'listAccounts', {}, { token })).accounts.map((a) => a.id)).toEqual([mine.id]);

    // Profile update.
    const updated = await t.call(UserService, 'updateUser', { username, fullName: 'Alice Renamed' }, { token });
    expect(updated.fullName).toBe('Alice Renamed');

    // Refresh rotates; the old refresh token then fails; logout ends the session.
    const refreshed = await t.call(AuthService, 'refreshToken', { refreshToken: tokens.refreshToken });
    expect(refreshed.refreshToken).not.toBe(tokens.refreshToken);
    expect((await t.call(UserService, 'getUser', { username }, { token: refreshed.accessToken })).fullName).toBe('Alice Renamed');
    await t.call(AuthService, 'logout', { sessionId: refreshed.sessionId }, { token: refreshed.accessToken });
    const afterLogout = await failure(t.call(AccountService, 'listAccounts', {}, { token: refreshed.accessToken }));
    expect(afterLogout).toMatchObject({ code: 'UNAUTHENTICATED', status: status(name, 401, grpc.status.UNAUTHENTICATED) });
    const reuse = await failure(t.call(AuthService, 'refreshToken', { refreshToken: tokens.refreshToken }));
    expect(reuse).toMatchObject({ code: 'UNAUTHENTICATED', status: status(name, 401, grpc.status.UNAUTHENTICATED) });

    expect(await checkLedgerInvariants(stack.db.pool)).toEqual([]);
  });
});
