// The user journey, one behaviour per test, the same tests over HTTP (generated REST client) and
// gRPC. Each test takes users no other test touched and opens the accounts it needs, so any one
// of them runs alone (`-t '<name>'`); tests that only read a longer history share one built in a
// beforeAll.
import { beforeAll, describe, expect, it } from '@jest/globals';
import * as grpc from '@grpc/grpc-js';
import { AccountService } from '@bank/proto/bank/v1/account_service_pb';
import { AuthService } from '@bank/proto/bank/v1/auth_service_pb';
import { TransferService } from '@bank/proto/bank/v1/transfer_service_pb';
import { AccountStatus, TransferKind, type Account } from '@bank/proto/bank/v1/types_pb';
import { UserService } from '@bank/proto/bank/v1/user_service_pb';
import { checkLedgerInvariants } from '../ledger-invariants.ts';
import { idemKey } from '../factories.ts';
import { loginEmailFor, signUp, signUpAndLogIn, verificationLinkFor, type LoggedInUser } from './flows.ts';
import { stackPerSuite, uniqueName } from './harness.ts';
import { failure, type Transport, type TransportName } from './transports.ts';

const suite = stackPerSuite();

const status = (name: TransportName, http: number, grpcCode: grpc.status) => (name === 'http' ? http : grpcCode);

describe.each(['http', 'grpc'] as const)('the user journey over %s', (name) => {
  let t: Transport;
  /** Another user's USD account: where the transfers of every test go. */
  let theirs: Account;
  // Each sign-up waits for two emails, so the users the tests below take are made all at once.
  let readyUsers: LoggedInUser[] = [];
  beforeAll(async () => {
    t = suite.transports.get(name)!;
    const [bob, ...others] = await Promise.all(Array.from({ length: 14 }, () => signUpAndLogIn(t, suite.stack.smtp)));
    theirs = await t.call(AccountService, 'openAccount', { currency: 'USD' }, { token: bob!.accessToken });
    readyUsers = others;
  });

  /** A new logged-in user that no other test has seen. */
  async function newUser(): Promise<LoggedInUser> {
    return readyUsers.pop() ?? signUpAndLogIn(t, suite.stack.smtp);
  }

  /** A new logged-in user with an empty USD account. */
  async function customerWithAccount(): Promise<{ user: LoggedInUser; token: string; account: Account }> {
    const user = await newUser();
    const account = await t.call(AccountService, 'openAccount', { currency: 'USD' }, { token: user.accessToken });
    return { user, token: user.accessToken, account };
  }

  /** A new USD account with a deposit of 10000 and then twelve transfers of 700 to `theirs`, leaving 1600. */
  async function accountWithHistory(): Promise<{ user: LoggedInUser; token: string; account: Account; transferIds: bigint[] }> {
    const { user, token, account } = await customerWithAccount();
    await t.call(AccountService, 'deposit', { accountId: account.id, amount: 10_000n, idempotencyKey: idemKey() }, { token });
    const transferIds: bigint[] = [];
    for (let i = 0; i < 12; i++) {
      const result = await t.call(
        TransferService,
        'createTransfer',
        { fromAccountId: account.id, toAccountId: theirs.id, amount: 700n, currency: 'USD', idempotencyKey: idemKey() },
        { token },
      );
      transferIds.push(result.transfer!.id);
    }
    return { user, token, account, transferIds };
  }

  describe('signing up and logging in', () => {
    it('a user who signs up gets a verification email whose link verifies the address once', async () => {
      const username = uniqueName('alice');
      const email = `${username}@example.test`;
      const created = await t.call(UserService, 'createUser', { username, fullName: 'Alice Example', email, password: 'correct horse battery' });
      expect(created).toMatchObject({ username, email, isEmailVerified: false });

      // The link arrives by SMTP and opens a page; the page posts its two values to VerifyEmail.
      const link = await verificationLinkFor(suite.stack.smtp, email);
      expect(link.pathname).toBe('/app/verify-email');
      const fromLink = { emailId: BigInt(link.searchParams.get('email_id')!), secretCode: link.searchParams.get('secret_code')! };
      if (name === 'http') {
        const response = await fetch(`${suite.stack.api.url}/v1/verify-email`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ emailId: link.searchParams.get('email_id'), secretCode: link.searchParams.get('secret_code') }),
        });
        expect(response.status).toBe(200);
        expect(await response.json()).toEqual({ isVerified: true });
      } else {
        const verified = await t.call(UserService, 'verifyEmail', fromLink);
        expect(verified.isVerified).toBe(true);
      }

      const again = await failure(t.call(UserService, 'verifyEmail', fromLink));
      expect(again).toMatchObject({ code: 'FAILED_PRECONDITION', status: status(name, 409, grpc.status.FAILED_PRECONDITION) });
    });

    it(`logging in takes two steps: the password opens a pending session, the login secret with the emailed ${name === 'http' ? 'token' : 'code'} confirms it`, async () => {
      const { username, password } = await signUp(t, suite.stack.smtp);

      const { sessionId, loginSecret } = await t.call(AuthService, 'login', { username, password });
      expect(sessionId).toMatch(/^[0-9a-f-]{36}$/);
      expect(loginSecret).toMatch(/^[A-Za-z0-9_-]{43}$/);

      // The login email carries both a token and a code; each transport confirms with one.
      const mail = await loginEmailFor(suite.stack.smtp, sessionId);
      const tokens = await t.call(AuthService, 'confirmLogin', name === 'http' ? { sessionId, loginSecret, token: mail.token } : { sessionId, loginSecret, code: mail.code });
      expect(tokens.accessToken).toMatch(/^v4\.public\./);
      expect(tokens.refreshToken).toMatch(/^v4\.public\./);
      expect(tokens.user?.isEmailVerified).toBe(true);
    });
  });

  describe('accounts, deposits and transfers', () => {
    it('a new account is open, empty, in the asked currency and owned by the user who opened it', async () => {
      const user = await newUser();
      const mine = await t.call(AccountService, 'openAccount', { currency: 'USD' }, { token: user.accessToken });
      expect(mine).toMatchObject({ owner: user.username, currency: 'USD', balance: 0n, status: AccountStatus.OPEN });
    });

    it('a deposit adds its amount to the balance and is recorded as a deposit transfer', async () => {
      const { token, account } = await customerWithAccount();
      const deposit = await t.call(AccountService, 'deposit', { accountId: account.id, amount: 10_000n, idempotencyKey: idemKey() }, { token });
      expect(deposit).toMatchObject({ balance: 10_000n, replayed: false });
      expect(deposit.transfer?.kind).toBe(TransferKind.DEPOSIT);
    });

    it('a deposit sent again with the same idempotency key and body is replayed and adds nothing', async () => {
      const { token, account } = await customerWithAccount();
      const request = { accountId: account.id, amount: 10_000n, idempotencyKey: idemKey() };
      const deposit = await t.call(AccountService, 'deposit', request, { token });
      const replay = await t.call(AccountService, 'deposit', request, { token });
      expect(replay).toMatchObject({ balance: 10_000n, replayed: true });
      expect(replay.transfer?.id).toBe(deposit.transfer?.id);
    });

    it('a deposit sent again with the same idempotency key but another body is refused as a conflict', async () => {
      const { token, account } = await customerWithAccount();
      const depositKey = idemKey();
      await t.call(AccountService, 'deposit', { accountId: account.id, amount: 10_000n, idempotencyKey: depositKey }, { token });
      const conflict = await failure(t.call(AccountService, 'deposit', { accountId: account.id, amount: 5n, idempotencyKey: depositKey }, { token }));
      expect(conflict).toMatchObject({ code: 'IDEMPOTENCY_CONFLICT', status: status(name, 409, grpc.status.FAILED_PRECONDITION) });
    });

    it("each transfer takes its amount from the sender's balance", async () => {
      const { token, account } = await customerWithAccount();
      await t.call(AccountService, 'deposit', { accountId: account.id, amount: 10_000n, idempotencyKey: idemKey() }, { token });
      for (let i = 0; i < 12; i++) {
        const result = await t.call(
          TransferService,
          'createTransfer',
          { fromAccountId: account.id, toAccountId: theirs.id, amount: 700n, currency: 'USD', idempotencyKey: idemKey() },
          { token },
        );
        expect(result.fromBalance).toBe(10_000n - 700n * BigInt(i + 1));
      }
    });
  });

  describe('an account with a deposit of 10000 and twelve transfers of 700', () => {
    let history: Awaited<ReturnType<typeof accountWithHistory>>;
    beforeAll(async () => {
      history = await accountWithHistory();
    });

    it('a transfer of more than the balance is refused as insufficient funds and moves nothing', async () => {
      const { token, account } = history;
      const tooMuch = await failure(
        t.call(TransferService, 'createTransfer', { fromAccountId: account.id, toAccountId: theirs.id, amount: 2_000n, currency: 'USD', idempotencyKey: idemKey() }, { token }),
      );
      expect(tooMuch).toMatchObject({ code: 'INSUFFICIENT_FUNDS', status: status(name, 422, grpc.status.FAILED_PRECONDITION) });
      expect((await t.call(AccountService, 'getAccount', { accountId: account.id }, { token })).balance).toBe(1_600n);
    });

    it('a transfer can be read back by its id', async () => {
      const { token, transferIds } = history;
      expect((await t.call(TransferService, 'getTransfer', { transferId: transferIds[3]! }, { token })).amount).toBe(700n);
    });

    it('the entries of an account come five per page, newest first, each once', async () => {
      const { token, account } = history;
      const entries: bigint[] = [];
      let pageToken = '';
      let pages = 0;
      do {
        const page = await t.call(AccountService, 'listEntries', { accountId: account.id, pageSize: 5, pageToken }, { token });
        expect(page.entries.length).toBeLessThanOrEqual(5);
        entries.push(...page.entries.map((e) => e.amount));
        pageToken = page.nextPageToken;
        pages++;
      } while (pageToken !== '' && pages < 10);
      expect(pages).toBe(3);
      expect(entries).toEqual([...Array.from({ length: 12 }, () => -700n), 10_000n]);
    });

    it('the transfers of an account page through every transfer exactly once', async () => {
      const { token, account, transferIds } = history;
      const seenTransfers: bigint[] = [];
      let pageToken = '';
      do {
        const page = await t.call(TransferService, 'listTransfers', { accountId: account.id, pageSize: 4, pageToken }, { token });
        seenTransfers.push(...page.transfers.map((x) => x.id));
        pageToken = page.nextPageToken;
      } while (pageToken !== '');
      expect(new Set(seenTransfers).size).toBe(13);
      expect(seenTransfers).toEqual(expect.arrayContaining(transferIds));
    });

    it('an account with money in it cannot be closed', async () => {
      const { token, account } = history;
      const notEmpty = await failure(t.call(AccountService, 'closeAccount', { accountId: account.id }, { token }));
      expect(notEmpty).toMatchObject({ code: 'ACCOUNT_NOT_EMPTY', status: status(name, 409, grpc.status.FAILED_PRECONDITION) });
    });
  });

  describe('closing an account', () => {
    /** Empties an account with history by transferring its last 1600 away. */
    async function emptiedAccountWithHistory() {
      const history = await accountWithHistory();
      const { token, account } = history;
      await t.call(TransferService, 'createTransfer', { fromAccountId: account.id, toAccountId: theirs.id, amount: 1_600n, currency: 'USD', idempotencyKey: idemKey() }, { token });
      return history;
    }

    it('an account emptied by a transfer can be closed', async () => {
      const { token, account } = await emptiedAccountWithHistory();
      const closed = await t.call(AccountService, 'closeAccount', { accountId: account.id }, { token });
      expect(closed.status).toBe(AccountStatus.CLOSED);
      expect(closed.closedAt).toBeDefined();
    });

    describe('once closed', () => {
      let closed: Awaited<ReturnType<typeof emptiedAccountWithHistory>>;
      beforeAll(async () => {
        closed = await emptiedAccountWithHistory();
        await t.call(AccountService, 'closeAccount', { accountId: closed.account.id }, { token: closed.token });
      });

      it('a closed account refuses deposits', async () => {
        const { token, account } = closed;
        const afterClose = await failure(t.call(AccountService, 'deposit', { accountId: account.id, amount: 1n, idempotencyKey: idemKey() }, { token }));
        expect(afterClose).toMatchObject({ code: 'ACCOUNT_CLOSED', status: status(name, 409, grpc.status.FAILED_PRECONDITION) });
      });

      it('the history of a closed account stays readable', async () => {
        const { token, account } = closed;
        expect((await t.call(AccountService, 'listEntries', { accountId: account.id, pageSize: 50 }, { token })).entries).toHaveLength(14);
      });

      it("a closed account is still listed among its owner's accounts", async () => {
        const { token, account } = closed;
        expect((await t.call(AccountService, 'listAccounts', {}, { token })).accounts.map((a) => a.id)).toEqual([account.id]);
      });
    });
  });

  describe('profile and session', () => {
    it('a user can change their full name', async () => {
      const { username, accessToken: token } = await newUser();
      const updated = await t.call(UserService, 'updateUser', { username, fullName: 'Alice Renamed' }, { token });
      expect(updated.fullName).toBe('Alice Renamed');
    });

    it('a refresh gives a new refresh token and an access token that works', async () => {
      const { username, accessToken: token, refreshToken } = await newUser();
      await t.call(UserService, 'updateUser', { username, fullName: 'Alice Renamed' }, { token });
      const refreshed = await t.call(AuthService, 'refreshToken', { refreshToken });
      expect(refreshed.refreshToken).not.toBe(refreshToken);
      expect((await t.call(UserService, 'getUser', { username }, { token: refreshed.accessToken })).fullName).toBe('Alice Renamed');
    });

    it("after logout the session's access token and refresh token are refused", async () => {
      const { refreshToken } = await newUser();
      const refreshed = await t.call(AuthService, 'refreshToken', { refreshToken });
      await t.call(AuthService, 'logout', { sessionId: refreshed.sessionId }, { token: refreshed.accessToken });
      const afterLogout = await failure(t.call(AccountService, 'listAccounts', {}, { token: refreshed.accessToken }));
      expect(afterLogout).toMatchObject({ code: 'UNAUTHENTICATED', status: status(name, 401, grpc.status.UNAUTHENTICATED) });
      const refreshAfterLogout = await failure(t.call(AuthService, 'refreshToken', { refreshToken: refreshed.refreshToken }));
      expect(refreshAfterLogout).toMatchObject({ code: 'UNAUTHENTICATED', status: status(name, 401, grpc.status.UNAUTHENTICATED) });
    });

    it('a refresh token already traded in is refused', async () => {
      const { refreshToken } = await newUser();
      await t.call(AuthService, 'refreshToken', { refreshToken });
      const reuse = await failure(t.call(AuthService, 'refreshToken', { refreshToken }));
      expect(reuse).toMatchObject({ code: 'UNAUTHENTICATED', status: status(name, 401, grpc.status.UNAUTHENTICATED) });
    });

    it('presenting a refresh token already traded in revokes the whole session', async () => {
      const { refreshToken } = await newUser();
      const refreshed = await t.call(AuthService, 'refreshToken', { refreshToken });
      await failure(t.call(AuthService, 'refreshToken', { refreshToken }));
      const afterReuse = await failure(t.call(AccountService, 'listAccounts', {}, { token: refreshed.accessToken }));
      expect(afterReuse).toMatchObject({ code: 'UNAUTHENTICATED', status: status(name, 401, grpc.status.UNAUTHENTICATED) });
    });
  });

  // Last in the block on purpose: it checks the ledger after every movement the tests above made.
  describe('the ledger', () => {
    it('its invariants hold after all of the above', async () => {
      expect(await checkLedgerInvariants(suite.stack.db.pool)).toEqual([]);
    });
  });
});
