// Notification emails through the whole stack: the API moves money, the ledger's triggers write
// events, the worker's notifier turns them into outbox rows and the email worker delivers them to
// a real SMTP receiver. Each cause arrives once: money received (one at once, the rest of the
// window in one digest), a withdrawal, a hold captured (the payer's notice, and money received for
// the recipient) and expired (the sender), a
// login from a new address, a password change. Settings are changed over HTTP and read over gRPC.
import { beforeAll, describe, expect, it } from '@jest/globals';
import { sql } from 'slonik';
import { z } from 'zod';
import { AccountService } from '@bank/proto/bank/v1/account_service_pb';
import { AuthService } from '@bank/proto/bank/v1/auth_service_pb';
import { PasswordService } from '@bank/proto/bank/v1/password_service_pb';
import { TransferService } from '@bank/proto/bank/v1/transfer_service_pb';
import { UserService } from '@bank/proto/bank/v1/user_service_pb';
import { idemKey } from '../factories.ts';
import type { CapturedEmail } from '../smtp.ts';
import { loginEmailFor, openAccount, signUpAndLogIn, type LoggedInUser } from './flows.ts';
import { stackPerSuite } from './harness.ts';
import type { Transport } from './transports.ts';

// A short digest window and quick rounds; TRUSTED_PROXIES lets a login come "from" another address.
const suite = stackPerSuite({
  env: { NOTIFICATION_DIGEST_WINDOW_MS: '3000', NOTIFIER_INTERVAL_MS: '100', HOLD_SWEEP_INTERVAL_MS: '300', TRUSTED_PROXIES: '1' },
});

describe('notification emails', () => {
  let http: Transport;
  let grpc: Transport;
  let alice: LoggedInUser;
  let bob: LoggedInUser;
  let aliceAccount: bigint;
  let bobAccount: bigint;

  beforeAll(async () => {
    http = suite.transports.get('http')!;
    grpc = suite.transports.get('grpc')!;
    [alice, bob] = await Promise.all([signUpAndLogIn(http, suite.stack.smtp), signUpAndLogIn(http, suite.stack.smtp)]);
    [aliceAccount, bobAccount] = await Promise.all([openAccount(http, alice, 'USD', 100_000n), openAccount(http, bob, 'USD')]);
  });

  const inbox = (user: LoggedInUser) => suite.stack.smtp.messagesTo(user.email);
  const withSubject = (user: LoggedInUser, subject: string) => inbox(user).filter((m) => m.subject === subject);
  /** Waits until `user` has an email with this subject; answers them all. */
  const arrived = async (user: LoggedInUser, subject: string): Promise<CapturedEmail[]> => {
    await suite.stack.smtp.waitFor(() => withSubject(user, subject).length > 0, 20_000);
    return withSubject(user, subject);
  };
  const pay = (amount: bigint, options: { hold?: { ttlSeconds: number }; memo?: string } = {}) =>
    http.call(
      TransferService,
      'createTransfer',
      { fromAccountId: aliceAccount, toAccountId: bobAccount, amount, currency: 'USD', idempotencyKey: idemKey(), ...options },
      { token: alice.accessToken },
    );

  it("money received: the first payment at once, the window's others in one digest; the payer's own deposit sends nothing", async () => {
    const first = await pay(100n, { memo: 'rent share' });
    const second = await pay(250n);
    const third = await pay(375n);

    const [now] = await arrived(bob, 'You received 1.00 USD');
    expect(now?.text).toContain(`from ${alice.username}`);
    expect(now?.text).toContain('Memo: "rent share"');
    expect(now?.text).toContain(`Transfer: ${first.transfer!.id}`);
    const [digest] = await arrived(bob, 'You received 2 more payments');
    expect(digest?.text).toContain(`2.50 USD from ${alice.username}`);
    expect(digest?.text).toContain(`3.75 USD from ${alice.username}`);
    expect(digest?.text).toContain(`Transfer: ${second.transfer!.id}`);
    expect(digest?.text).toContain(`Transfer: ${third.transfer!.id}`);
    // Once each; alice, who only paid and deposited, was told of no money.
    expect(withSubject(bob, 'You received 1.00 USD')).toHaveLength(1);
    expect(withSubject(bob, 'You received 2 more payments')).toHaveLength(1);
    expect(inbox(alice).filter((m) => m.subject.startsWith('You received'))).toEqual([]);
  });

  it('a withdrawal, a captured hold (the payer told of the capture, the recipient of money received) and an expired hold (the sender) arrive once each', async () => {
    await http.call(
      AccountService,
      'withdraw',
      { accountId: aliceAccount, amount: 700n, destination: 'DE89 3704 0044 0532 0130 00', idempotencyKey: idemKey() },
      { token: alice.accessToken },
    );
    const held = await pay(500n, { hold: { ttlSeconds: 600 } });
    await http.call(TransferService, 'captureTransfer', { transferId: held.transfer!.id, idempotencyKey: idemKey() }, { token: alice.accessToken });
    await pay(40n, { hold: { ttlSeconds: 1 } });

    const [withdrawal] = await arrived(alice, 'Withdrawal of 7.00 USD');
    expect(withdrawal?.text).toContain('DE89 3704 0044 0532 0130 00');
    const [sent] = await arrived(alice, 'A hold of 5.00 USD was captured');
    expect(sent?.text).toContain(`you held for ${bob.username}`);
    // The recipient's window from the first test was flushed (its digest arrived): this opens a new one.
    const [got] = await arrived(bob, 'You received 5.00 USD');
    expect(got?.text).toContain(`5.00 USD from ${alice.username}`);
    expect(got?.text).toContain('(a hold they placed, captured)');
    expect(got?.text).toContain(`Transfer: ${held.transfer!.id}`);
    await arrived(alice, 'Your hold of 0.40 USD expired');
    for (const [user, subject] of [
      [alice, 'Withdrawal of 7.00 USD'],
      [alice, 'A hold of 5.00 USD was captured'],
      [bob, 'You received 5.00 USD'],
      [alice, 'Your hold of 0.40 USD expired'],
    ] as const) {
      expect(withSubject(user, subject)).toHaveLength(1);
    }
    expect(withSubject(bob, 'A hold of 5.00 USD was captured')).toEqual([]);
  });

  it('a login confirmed from an address the user has not used before is a security email; the usual address is not', async () => {
    const logInFrom = async (address: string) => {
      const metadata = { 'x-forwarded-for': address };
      const { sessionId, loginSecret } = await http.call(AuthService, 'login', { username: alice.username, password: alice.password }, { metadata });
      const { code } = await loginEmailFor(suite.stack.smtp, sessionId);
      await http.call(AuthService, 'confirmLogin', { sessionId, loginSecret, code }, { metadata });
      return sessionId;
    };
    const sessionId = await logInFrom('203.0.113.50');
    const [notice] = await arrived(alice, 'New login to your bank account');
    expect(notice?.text).toContain('203.0.113.50');
    expect(notice?.text).toContain(`Session: ${sessionId}`);
    // The same address again, then the first one (no X-Forwarded-For: the socket's 127.0.0.1): both known.
    const again = await logInFrom('203.0.113.50');
    await logIn127(again);
    expect(withSubject(alice, 'New login to your bank account')).toHaveLength(1);

    async function logIn127(previous: string) {
      const { sessionId: id, loginSecret } = await http.call(AuthService, 'login', { username: alice.username, password: alice.password });
      const { code } = await loginEmailFor(suite.stack.smtp, id);
      await http.call(AuthService, 'confirmLogin', { sessionId: id, loginSecret, code });
      expect(id).not.toBe(previous);
    }
  });

  it('settings: PATCH over HTTP, read over gRPC; money received stops (a captured hold included), security ones always', async () => {
    const updated = await http.call(UserService, 'updateUser', { username: bob.username, notificationSettings: { moneyReceived: false } }, { token: bob.accessToken });
    expect(updated.notificationSettings).toMatchObject({ moneyReceived: false, withdrawals: true, holds: true });
    const read = await grpc.call(UserService, 'getUser', { username: bob.username }, { token: bob.accessToken });
    expect(read.notificationSettings).toMatchObject({ moneyReceived: false, withdrawals: true, holds: true });

    await http.call(UserService, 'updateUser', { username: bob.username, notificationSettings: { holds: true, withdrawals: false } }, { token: bob.accessToken });
    const quiet = await pay(999n);
    const held = await pay(600n, { hold: { ttlSeconds: 600 } });
    await http.call(TransferService, 'captureTransfer', { transferId: held.transfer!.id, idempotencyKey: idemKey() }, { token: alice.accessToken });
    // The payer's notice of the capture: the capture came after the payment, and the notifier handles
    // events in order, so both were handled; neither wrote anything for bob (money received is off).
    await arrived(alice, 'A hold of 6.00 USD was captured');
    const rows = await suite.stack.db.pool.anyFirst(sql.type(z.object({ id: z.string() }))`
      SELECT id::text FROM outbox WHERE payload->>'username' = ${bob.username} AND payload->'item'->>'transferId' = ANY(${sql.array([quiet.transfer!.id.toString(), held.transfer!.id.toString()], 'text')})`);
    expect(rows).toEqual([]);
    expect(inbox(bob).filter((m) => m.subject.includes('9.99 USD') || m.subject.includes('6.00 USD'))).toEqual([]);

    // A security email has no switch: bob changes his password, and is told.
    await http.call(PasswordService, 'changePassword', { username: bob.username, currentPassword: bob.password, newPassword: `${bob.password}-2` }, { token: bob.accessToken });
    await arrived(bob, 'Your password was changed');
  });
});
