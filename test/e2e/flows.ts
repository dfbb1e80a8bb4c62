// User journeys through the public API only: sign-up, the emailed verification link, two-step
// login with the login secret and the emailed token or code.
import { sql, type DatabasePool } from 'slonik';
import { z } from 'zod';
import { AccountService } from '@bank/proto/bank/v1/account_service_pb';
import { AuthService } from '@bank/proto/bank/v1/auth_service_pb';
import { UserService } from '@bank/proto/bank/v1/user_service_pb';
import { idemKey } from '../factories.ts';
import type { TestSmtpServer } from '../smtp.ts';
import { uniqueName } from './harness.ts';
import type { Transport } from './transports.ts';

export type LoggedInUser = {
  username: string;
  email: string;
  password: string;
  sessionId: string;
  accessToken: string;
  refreshToken: string;
};

/** The verification link of the newest verification email to `email`. */
export async function verificationLinkFor(smtp: TestSmtpServer, email: string): Promise<URL> {
  const messages = await smtp.waitFor((list) => list.some((m) => m.to.includes(email) && m.text.includes('/app/verify-email?')));
  const message = messages.filter((m) => m.to.includes(email) && m.text.includes('/app/verify-email?')).at(-1);
  const link = /(https?:\/\/\S+\/app\/verify-email\?\S+)/.exec(message?.text ?? '')?.[1];
  if (!link) throw new Error(`no verification link in the email to ${email}`);
  return new URL(link);
}

/** The code, token and approval link of the login email for this pending session. */
export async function loginEmailFor(smtp: TestSmtpServer, sessionId: string): Promise<{ code: string; token: string; approveLink: URL; subject: string }> {
  const messages = await smtp.waitFor((list) => list.some((m) => m.text.includes(`Session: ${sessionId}`)));
  const message = messages.find((m) => m.text.includes(`Session: ${sessionId}`));
  const text = message?.text ?? '';
  const code = /confirm with this code: (\d{6})/i.exec(text)?.[1];
  const token = /or with this login token:\s+(v4\.public\.\S+)/.exec(text)?.[1];
  const approveLink = /(https?:\/\/\S+\/app\/approve-login\?\S+)/.exec(text)?.[1];
  if (!code || !token || !approveLink) throw new Error(`login email for ${sessionId} has no code, token or approval link`);
  return { code, token, approveLink: new URL(approveLink), subject: message?.subject ?? '' };
}

/** Signs up and follows the emailed verification link (over `transport`); no session yet. */
export async function signUp(
  transport: Transport,
  smtp: TestSmtpServer,
  options: { username?: string } = {},
): Promise<{ username: string; email: string; password: string }> {
  const username = options.username ?? uniqueName();
  const email = `${username}@example.test`;
  const password = `pw-${username}-secret`;
  await transport.call(UserService, 'createUser', { username, fullName: `Test ${username}`, email, password });
  const link = await verificationLinkFor(smtp, email);
  const verified = await transport.call(UserService, 'verifyEmail', {
    emailId: BigInt(link.searchParams.get('email_id') ?? '0'),
    secretCode: link.searchParams.get('secret_code') ?? '',
  });
  if (!verified.isVerified) throw new Error('email not verified');
  return { username, email, password };
}

/** Signs up, follows the emailed link (over `transport`), and logs in with the login secret and the emailed token or code. */
export async function signUpAndLogIn(
  transport: Transport,
  smtp: TestSmtpServer,
  options: { confirmWith?: 'token' | 'code'; username?: string } = {},
): Promise<LoggedInUser> {
  const user = await signUp(transport, smtp, options);
  return logIn(transport, smtp, user, options.confirmWith ?? 'token');
}

export async function logIn(
  transport: Transport,
  smtp: TestSmtpServer,
  user: { username: string; email: string; password: string },
  confirmWith: 'token' | 'code' = 'token',
): Promise<LoggedInUser> {
  const { sessionId, loginSecret } = await transport.call(AuthService, 'login', { username: user.username, password: user.password });
  const { code, token } = await loginEmailFor(smtp, sessionId);
  const tokens = await transport.call(AuthService, 'confirmLogin', confirmWith === 'token' ? { sessionId, loginSecret, token } : { sessionId, loginSecret, code });
  return { ...user, sessionId, accessToken: tokens.accessToken, refreshToken: tokens.refreshToken };
}

/** A banker: signed up, given the role in the database, then logged in, so the token carries the role. */
export async function signUpBanker(transport: Transport, smtp: TestSmtpServer, pool: DatabasePool): Promise<LoggedInUser> {
  const user = await signUp(transport, smtp);
  await pool.query(sql.type(z.object({}))`UPDATE users SET role = 'banker' WHERE username = ${user.username}`);
  return logIn(transport, smtp, user, 'code');
}

/** Opens an account of the user's and, when `deposit` is given, adds that much to it; answers its id. */
export async function openAccount(transport: Transport, user: LoggedInUser, currency: string, deposit?: bigint): Promise<bigint> {
  const { id } = await transport.call(AccountService, 'openAccount', { currency }, { token: user.accessToken });
  if (deposit !== undefined) {
    await transport.call(AccountService, 'deposit', { accountId: id, amount: deposit, idempotencyKey: idemKey() }, { token: user.accessToken });
  }
  return id;
}

/** The cast of the money-model suites: three depositors and a banker, alice funded with `aliceFunds`, bob's account empty. */
export async function moneyCast(
  transport: Transport,
  smtp: TestSmtpServer,
  pool: DatabasePool,
  aliceFunds: bigint,
): Promise<{ alice: LoggedInUser; bob: LoggedInUser; carol: LoggedInUser; banker: LoggedInUser; aliceAccount: bigint; bobAccount: bigint }> {
  const [alice, bob, carol, banker] = await Promise.all([
    signUpAndLogIn(transport, smtp),
    signUpAndLogIn(transport, smtp),
    signUpAndLogIn(transport, smtp),
    signUpBanker(transport, smtp, pool),
  ]);
  const [aliceAccount, bobAccount] = await Promise.all([openAccount(transport, alice, 'USD', aliceFunds), openAccount(transport, bob, 'USD')]);
  return { alice, bob, carol, banker, aliceAccount, bobAccount };
}
