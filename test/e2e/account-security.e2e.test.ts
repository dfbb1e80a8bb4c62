// Issue 13 over HTTP and gRPC: sign-up tells no one which emails are registered and is rate
// limited; passwords of 8..128 characters of any kind, the common ones refused, long ones whole;
// change (other sessions end) and reset through the emailed link (the real SMTP receiver), once,
// within its TTL; strict email addresses.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as grpc from '@grpc/grpc-js';
import { AuthService } from '@bank/proto/bank/v1/auth_service_pb';
import { PasswordService } from '@bank/proto/bank/v1/password_service_pb';
import { UserService } from '@bank/proto/bank/v1/user_service_pb';
import { ACCOUNT_EMAIL_SUBJECTS } from '@bank/shared/mail/account-email.templates';
import type { CapturedEmail, TestSmtpServer } from '../smtp.ts';
import { logIn, signUp, verificationLinkFor } from './flows.ts';
import { startStack, uniqueName, type Stack } from './harness.ts';
import { failure, grpcTransport, httpTransport, type Transport, type TransportName } from './transports.ts';

let stack: Stack;
/** A second stack with low limits and a 2-second reset link. */
let limits: Stack;
/** A verified user of the limits stack, made first (one of its four sign-ups an hour). */
let limitsAccount: { username: string; email: string; password: string };
const transports = new Map<TransportName, Transport>();
const limitedTransports = new Map<TransportName, Transport>();
const NAMES: TransportName[] = ['http', 'grpc'];
const status = (transport: Transport, http: number, grpcCode: grpc.status) => (transport.name === 'http' ? http : grpcCode);

beforeAll(async () => {
  [stack, limits] = await Promise.all([
    startStack(),
    startStack({ env: { SIGNUP_RATE_LIMIT_PER_ADDRESS: '4', PASSWORD_RESET_TTL_SECONDS: '2', PASSWORD_RESET_RATE_LIMIT_PER_EMAIL: '2' } }),
  ]);
  transports.set('http', httpTransport(stack.api.url)).set('grpc', grpcTransport(stack.grpc.address));
  limitedTransports.set('http', httpTransport(limits.api.url)).set('grpc', grpcTransport(limits.grpc.address));
  limitsAccount = await signUp(limitedTransports.get('http') as Transport, limits.smtp);
}, 120_000);
afterAll(async () => {
  for (const t of [...transports.values(), ...limitedTransports.values()]) t.close();
  await Promise.all([stack?.stop(), limits?.stop()]);
});

const t = (name: TransportName) => transports.get(name) as Transport;
const signUpRequest = (fields: Partial<{ username: string; fullName: string; email: string; password: string }> = {}) => {
  const username = fields.username ?? uniqueName('a');
  return { username, fullName: `Test ${username}`, email: `${username}@example.test`, password: `pw-${username}-secret`, ...fields };
};
const messagesWithSubject = (smtp: TestSmtpServer, to: string, subject: string) => smtp.messagesTo(to).filter((m) => m.subject === subject);
async function emailWithSubject(smtp: TestSmtpServer, to: string, subject: string, count = 1): Promise<CapturedEmail> {
  await smtp.waitFor(() => messagesWithSubject(smtp, to, subject).length >= count);
  return messagesWithSubject(smtp, to, subject)[count - 1] as CapturedEmail;
}
function resetLinkIn(message: CapturedEmail): { page: URL; resetId: string; secret: string } {
  const link = /https?:\/\/\S+\/app\/reset-password\?\S+/.exec(message.text)?.[0];
  if (!link) throw new Error('no reset link in the email');
  const page = new URL(link);
  return { page, resetId: page.searchParams.get('reset_id') ?? '', secret: page.searchParams.get('secret') ?? '' };
}
const loginWorks = async (transport: Transport, username: string, password: string) =>
  transport.call(AuthService, 'login', { username, password }).then(
    () => true,
    async (error: unknown) => {
      const failed = await failure(Promise.reject(error));
      if (failed.code !== 'UNAUTHENTICATED' && failed.status !== grpc.status.UNAUTHENTICATED) throw error;
      return false;
    },
  );

describe('sign-up does not tell who has an account', () => {
  it('over HTTP: a registered email in another letter case answers 201 with the same body shape as a new one', async () => {
    const owner = await signUp(t('http'), stack.smtp);
    const post = (body: object) => fetch(`${stack.api.url}/v1/users`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const fresh = signUpRequest();
    const again = signUpRequest({ email: owner.email.toUpperCase() });
    const [forNew, forTaken] = [await post(fresh), await post(again)];
    expect([forNew.status, forTaken.status]).toEqual([201, 201]);
    const [newBody, takenBody] = [(await forNew.json()) as Record<string, unknown>, (await forTaken.json()) as Record<string, unknown>];
    expect(Object.keys(takenBody).sort()).toEqual(Object.keys(newBody).sort());
    expect(takenBody).toMatchObject({ username: again.username, email: again.email, fullName: again.fullName, role: 'ROLE_DEPOSITOR' });
    expect(forTaken.headers.get('content-type')).toBe(forNew.headers.get('content-type'));

    const notice = await emailWithSubject(stack.smtp, owner.email, ACCOUNT_EMAIL_SUBJECTS.signUpAttempt);
    expect(notice.text).toContain(owner.username);
    // No account was made: the taken name is free, and nothing was sent to log in with.
    await expect(loginWorks(t('http'), again.username, again.password)).resolves.toBe(false);
  });

  it('over gRPC: the same User fields for a new and a registered email, and the owner gets the notice', async () => {
    const owner = await signUp(t('grpc'), stack.smtp);
    const forNew = await t('grpc').call(UserService, 'createUser', signUpRequest());
    const forTaken = await t('grpc').call(UserService, 'createUser', signUpRequest({ email: owner.email.toUpperCase() }));
    const fields = (user: object) => Object.entries(user).filter(([key]) => !key.startsWith('$')).map(([key, value]) => [key, typeof value]);
    expect(fields(forTaken)).toEqual(fields(forNew));
    expect(forTaken.isEmailVerified).toBe(false);
    await emailWithSubject(stack.smtp, owner.email, ACCOUNT_EMAIL_SUBJECTS.signUpAttempt);
  });

  it.each(NAMES)('over %s: a taken username still answers USERNAME_TAKEN', async (name) => {
    const owner = await signUp(t(name), stack.smtp);
    const refused = await failure(t(name).call(UserService, 'createUser', signUpRequest({ username: owner.username })));
    expect(refused).toMatchObject({ code: 'USERNAME_TAKEN', status: status(t(name), 409, grpc.status.ALREADY_EXISTS) });
  });

  it('is rate limited per client address, over HTTP and gRPC alike (one budget for the address)', async () => {
    const [http, grpcT] = [limitedTransports.get('http') as Transport, limitedTransports.get('grpc') as Transport];
    // The limits stack's budget is 4 an hour; beforeAll used one. A registered email counts too.
    await http.call(UserService, 'createUser', signUpRequest());
    await grpcT.call(UserService, 'createUser', signUpRequest({ email: limitsAccount.email }));
    await http.call(UserService, 'createUser', signUpRequest());
    expect(await failure(http.call(UserService, 'createUser', signUpRequest()))).toMatchObject({ code: 'RATE_LIMITED', status: 429 });
    expect(await failure(grpcT.call(UserService, 'createUser', signUpRequest()))).toMatchObject({ code: 'RATE_LIMITED', status: grpc.status.RESOURCE_EXHAUSTED });
  });
});

describe.each(NAMES)('over %s', (name) => {
  it('refuses an email that is not one plain address, at sign-up and at email change', async () => {
    for (const email of ['"x"<a@evil.test>', 'a,b@evil.test']) {
      const refused = await failure(t(name).call(UserService, 'createUser', signUpRequest({ email })));
      expect(refused).toMatchObject({ code: 'INVALID_ARGUMENT', status: status(t(name), 400, grpc.status.INVALID_ARGUMENT) });
      expect(refused.fieldViolations.map((v) => v.field)).toEqual(['email']);
    }
    const user = await logIn(t(name), stack.smtp, await signUp(t(name), stack.smtp));
    const refused = await failure(
      t(name).call(UserService, 'updateUser', { username: user.username, email: 'a,b@evil.test', currentPassword: user.password }, { token: user.accessToken }),
    );
    expect(refused.fieldViolations.map((v) => v.field)).toEqual(['email']);
  });

  it('refuses a common password and takes one over 72 bytes whole', async () => {
    const common = await failure(t(name).call(UserService, 'createUser', signUpRequest({ password: 'Password1' })));
    expect(common).toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(common.fieldViolations[0]?.description).toContain('too common');

    const long = `${'ünïcödé horse battery staple '.repeat(3)}!`;
    const prefix = Buffer.from(long).subarray(0, 72).toString();
    const request = signUpRequest({ password: long });
    await t(name).call(UserService, 'createUser', request);
    const link = await verificationLinkFor(stack.smtp, request.email);
    await t(name).call(UserService, 'verifyEmail', { emailId: BigInt(link.searchParams.get('email_id') ?? '0'), secretCode: link.searchParams.get('secret_code') ?? '' });
    expect(await loginWorks(t(name), request.username, long)).toBe(true);
    expect(await loginWorks(t(name), request.username, prefix)).toBe(false);
  });

  it('changing the password ends every other session of the user, not this one', async () => {
    const account = await signUp(t(name), stack.smtp);
    const here = await logIn(t(name), stack.smtp, account);
    const elsewhere = await logIn(t(name), stack.smtp, account);
    const newPassword = `new-${account.password}`;
    await t(name).call(PasswordService, 'changePassword', { username: account.username, currentPassword: account.password, newPassword }, { token: here.accessToken });
    await expect(t(name).call(UserService, 'getUser', { username: account.username }, { token: here.accessToken })).resolves.toMatchObject({ username: account.username });
    expect(await failure(t(name).call(UserService, 'getUser', { username: account.username }, { token: elsewhere.accessToken }))).toMatchObject({ code: 'UNAUTHENTICATED' });
    expect(await loginWorks(t(name), account.username, newPassword)).toBe(true);
    expect(await loginWorks(t(name), account.username, account.password)).toBe(false);
    await emailWithSubject(stack.smtp, account.email, ACCOUNT_EMAIL_SUBJECTS.passwordChanged);
    // The same call again, as a client retrying after a lost answer: answered as done.
    await t(name).call(PasswordService, 'changePassword', { username: account.username, currentPassword: account.password, newPassword }, { token: here.accessToken });
  });

  it('a reset link from the email works once and ends every session', async () => {
    const account = await signUp(t(name), stack.smtp);
    const session = await logIn(t(name), stack.smtp, account);
    await t(name).call(PasswordService, 'requestPasswordReset', { email: `nobody.${uniqueName()}@example.test` });
    await t(name).call(PasswordService, 'requestPasswordReset', { email: account.email.toUpperCase() });
    const { page, resetId, secret } = resetLinkIn(await emailWithSubject(stack.smtp, account.email, ACCOUNT_EMAIL_SUBJECTS.passwordReset));
    expect(page.origin + page.pathname).toBe('http://bank.test/app/reset-password');

    const newPassword = `reset-${account.password}`;
    await t(name).call(PasswordService, 'confirmPasswordReset', { resetId, secret, newPassword });
    expect(await failure(t(name).call(UserService, 'getUser', { username: account.username }, { token: session.accessToken }))).toMatchObject({ code: 'UNAUTHENTICATED' });
    expect(await loginWorks(t(name), account.username, newPassword)).toBe(true);
    expect(await loginWorks(t(name), account.username, account.password)).toBe(false);
    // Once: the same link cannot set another password (the same confirmation again is answered as done).
    await t(name).call(PasswordService, 'confirmPasswordReset', { resetId, secret, newPassword });
    const again = await failure(t(name).call(PasswordService, 'confirmPasswordReset', { resetId, secret, newPassword: `${newPassword}-2` }));
    expect(again).toMatchObject({ code: 'FAILED_PRECONDITION', status: status(t(name), 409, grpc.status.FAILED_PRECONDITION) });
    const wrong = await failure(t(name).call(PasswordService, 'confirmPasswordReset', { resetId, secret: `${secret}x`, newPassword: `${newPassword}-3` }));
    expect(wrong).toMatchObject({ code: 'NOT_FOUND', status: status(t(name), 404, grpc.status.NOT_FOUND) });
  });
});

describe('password reset over HTTP', () => {
  it('answers 202 whether anyone has the address or not', async () => {
    const account = await signUp(t('http'), stack.smtp);
    const post = (email: string) => fetch(`${stack.api.url}/v1/password-resets`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email }) });
    const [known, unknown] = [await post(account.email), await post(`nobody.${uniqueName()}@example.test`)];
    expect([known.status, unknown.status]).toEqual([202, 202]);
    expect(await unknown.text()).toBe(await known.text());
  });

  it('the emailed link opens a page the API serves, under a CSP without inline scripts', async () => {
    const account = await signUp(t('http'), stack.smtp);
    await t('http').call(PasswordService, 'requestPasswordReset', { email: account.email });
    const { page } = resetLinkIn(await emailWithSubject(stack.smtp, account.email, ACCOUNT_EMAIL_SUBJECTS.passwordReset));
    const response = await fetch(`${stack.api.url}${page.pathname}${page.search}`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(response.headers.get('content-security-policy')).not.toContain('unsafe-inline');
    const html = await response.text();
    expect([...html.matchAll(/<script\b[^>]*>([\s\S]*?)<\/script>/g)].map((m) => m[1])).toEqual(['']);
    expect(html).not.toContain(page.searchParams.get('secret') ?? 'no secret');
  });

  it('the link expires after PASSWORD_RESET_TTL_SECONDS (2 s on this stack), and requests are limited per address asked for', async () => {
    const http = limitedTransports.get('http') as Transport;
    const account = limitsAccount;
    await http.call(PasswordService, 'requestPasswordReset', { email: account.email });
    const { resetId, secret } = resetLinkIn(await emailWithSubject(limits.smtp, account.email, ACCOUNT_EMAIL_SUBJECTS.passwordReset));
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    expect(await failure(http.call(PasswordService, 'confirmPasswordReset', { resetId, secret, newPassword: `late-${account.password}` }))).toMatchObject({
      code: 'FAILED_PRECONDITION',
      status: 409,
    });
    expect(await loginWorks(http, account.username, account.password)).toBe(true);

    await http.call(PasswordService, 'requestPasswordReset', { email: account.email.toUpperCase() });
    expect(await failure(http.call(PasswordService, 'requestPasswordReset', { email: account.email }))).toMatchObject({ code: 'RATE_LIMITED', status: 429 });
    const grpcT = limitedTransports.get('grpc') as Transport;
    expect(await failure(grpcT.call(PasswordService, 'requestPasswordReset', { email: account.email }))).toMatchObject({ status: grpc.status.RESOURCE_EXHAUSTED });
  });
});
