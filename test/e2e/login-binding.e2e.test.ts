// Issue 13, build items 1 and 2, over both transports: a login is bound to the client that gave
// the password (its login secret), the emailed link only approves it, the attempt cap ends the
// whole challenge; email verification changes state by POST only; the pages the emailed links
// open (the web app's) work under the API's Content-Security-Policy.
import { randomBytes } from 'node:crypto';
import { beforeAll, describe, expect, it } from '@jest/globals';
import * as grpc from '@grpc/grpc-js';
import { sql } from 'slonik';
import { z } from 'zod';
import { AuthService } from '@bank/proto/bank/v1/auth_service_pb';
import { UserService } from '@bank/proto/bank/v1/user_service_pb';
import { MAX_LOGIN_CODE_ATTEMPTS } from '@bank/shared/auth/session.service';
import { loginEmailFor, signUp, verificationLinkFor } from './flows.ts';
import { stackPerSuite, uniqueName } from './harness.ts';
import { failure, grpcTransport, httpTransport, type Transport } from './transports.ts';

const suite = stackPerSuite();

const attemptsOf = (sessionId: string) =>
  suite.stack.db.pool.oneFirst(sql.type(z.object({ attempts: z.number() }))`SELECT attempts FROM login_challenges WHERE session_id = ${sessionId}`);
const otherCode = (code: string) => ((Number(code) + 1) % 1_000_000).toString().padStart(6, '0');

describe.each(['http', 'grpc'] as const)('a login bound to its device, over %s', (name) => {
  let t: Transport;
  const status = (http: number, grpcCode: grpc.status) => (name === 'http' ? http : grpcCode);

  beforeAll(() => {
    t = suite.transports.get(name)!;
  });

  /** A verified user's login step 1 and its email. */
  async function startLogin() {
    const user = await signUp(t, suite.stack.smtp);
    const { sessionId, loginSecret } = await t.call(AuthService, 'login', { username: user.username, password: user.password });
    return { sessionId, loginSecret, ...(await loginEmailFor(suite.stack.smtp, sessionId)) };
  }

  it('another client holding the whole login email but not the login secret cannot confirm; the client that gave the password can', async () => {
    const login = await startLogin();
    expect(login.loginSecret).toMatch(/^[A-Za-z0-9_-]{43}$/); // 256 bits
    const other = name === 'http' ? httpTransport(suite.stack.api.url) : grpcTransport(suite.stack.grpc.address);
    try {
      for (const fromEmail of [{ token: login.token }, { code: login.code }]) {
        const refused = await failure(other.call(AuthService, 'confirmLogin', { sessionId: login.sessionId, ...fromEmail }));
        expect(refused).toMatchObject({ code: 'INVALID_ARGUMENT', status: status(400, grpc.status.INVALID_ARGUMENT) });
        expect(refused.fieldViolations.map((v) => v.field)).toEqual(['login_secret']);
      }
      const guessed = await failure(other.call(AuthService, 'confirmLogin', { sessionId: login.sessionId, token: login.token, loginSecret: randomBytes(32).toString('base64url') }));
      expect(guessed).toMatchObject({ code: 'UNAUTHENTICATED', status: status(401, grpc.status.UNAUTHENTICATED) });
    } finally {
      other.close();
    }
    const tokens = await t.call(AuthService, 'confirmLogin', { sessionId: login.sessionId, loginSecret: login.loginSecret, token: login.token });
    expect(tokens.accessToken).toMatch(/^v4\.public\./);
  });

  it('reaching the attempt cap ends the whole challenge: the emailed token, the link and the secret alone are refused too', async () => {
    const login = await startLogin();
    for (let i = 0; i < MAX_LOGIN_CODE_ATTEMPTS; i += 1) {
      const wrong = await failure(t.call(AuthService, 'confirmLogin', { sessionId: login.sessionId, loginSecret: login.loginSecret, code: otherCode(login.code) }));
      expect(wrong.status).toBe(status(401, grpc.status.UNAUTHENTICATED));
    }
    const refusals = [
      await failure(t.call(AuthService, 'confirmLogin', { sessionId: login.sessionId, loginSecret: login.loginSecret, token: login.token })),
      await failure(t.call(AuthService, 'approveLogin', { sessionId: login.sessionId, token: login.token })),
      await failure(t.call(AuthService, 'confirmLogin', { sessionId: login.sessionId, loginSecret: login.loginSecret, code: login.code })),
      await failure(t.call(AuthService, 'confirmLogin', { sessionId: login.sessionId, loginSecret: login.loginSecret })),
    ];
    for (const refused of refusals) expect(refused).toMatchObject({ code: 'UNAUTHENTICATED', status: status(401, grpc.status.UNAUTHENTICATED) });
  });

  it('the secret alone before approval answers LOGIN_NOT_APPROVED and counts no attempt, however often the client polls', async () => {
    const login = await startLogin();
    for (let i = 0; i < MAX_LOGIN_CODE_ATTEMPTS + 2; i += 1) {
      const notYet = await failure(t.call(AuthService, 'confirmLogin', { sessionId: login.sessionId, loginSecret: login.loginSecret }));
      expect(notYet).toMatchObject({ code: 'LOGIN_NOT_APPROVED', status: status(409, grpc.status.FAILED_PRECONDITION) });
    }
    expect(await attemptsOf(login.sessionId)).toBe(0);
    const tokens = await t.call(AuthService, 'confirmLogin', { sessionId: login.sessionId, loginSecret: login.loginSecret, code: login.code });
    expect(tokens.accessToken).toMatch(/^v4\.public\./);
  });

  it('approving through the emailed link hands out no tokens; then the secret alone confirms, once', async () => {
    const login = await startLogin();
    expect(login.approveLink.pathname).toBe('/app/approve-login');
    expect(login.approveLink.searchParams.get('session_id')).toBe(login.sessionId);
    const approve = { sessionId: login.approveLink.searchParams.get('session_id')!, token: login.approveLink.searchParams.get('token')! };
    if (name === 'http') {
      // What the page's button sends, byte for byte; the answer is `{}`.
      const response = await fetch(`${suite.stack.api.url}/v1/sessions/${approve.sessionId}/approve`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ token: approve.token }),
      });
      expect(response.status).toBe(200);
      expect(await response.text()).toBe('{}');
    } else {
      expect(await t.call(AuthService, 'approveLogin', approve)).toEqual(expect.objectContaining({ $typeName: 'google.protobuf.Empty' }));
    }
    await t.call(AuthService, 'approveLogin', approve); // approving twice is harmless
    const tokens = await t.call(AuthService, 'confirmLogin', { sessionId: login.sessionId, loginSecret: login.loginSecret });
    expect(tokens.user?.isEmailVerified).toBe(true);
    const again = await failure(t.call(AuthService, 'confirmLogin', { sessionId: login.sessionId, loginSecret: login.loginSecret }));
    expect(again.status).toBe(status(401, grpc.status.UNAUTHENTICATED));
    // The link approves its own session only.
    const second = await startLogin();
    const crossed = await failure(t.call(AuthService, 'approveLogin', { sessionId: second.sessionId, token: login.token }));
    expect(crossed.status).toBe(status(401, grpc.status.UNAUTHENTICATED));
  });
});

describe('the login email', () => {
  it('keeps the code out of its subject (a lock screen shows subjects)', async () => {
    const t = suite.transports.get('http')!;
    const user = await signUp(t, suite.stack.smtp);
    const { sessionId } = await t.call(AuthService, 'login', { username: user.username, password: user.password });
    const mail = await loginEmailFor(suite.stack.smtp, sessionId);
    expect(mail.subject).toBe('Confirm your login');
    expect(mail.subject).not.toMatch(/\d{6}/);
  });
});

describe('email verification by POST', () => {
  const isVerified = (username: string) =>
    suite.stack.db.pool.oneFirst(sql.type(z.object({ is_email_verified: z.boolean() }))`SELECT is_email_verified FROM users WHERE username = ${username}`);

  it('GET /v1/verify-email changes nothing (303 to the page); the page changes nothing; POST verifies', async () => {
    const t = suite.transports.get('http')!;
    const username = uniqueName('verify');
    const email = `${username}@example.test`;
    await t.call(UserService, 'createUser', { username, fullName: 'Verify Me', email, password: `pw-${username}-secret` });
    const link = await verificationLinkFor(suite.stack.smtp, email);
    expect(link.pathname).toBe('/app/verify-email');
    const query = link.search;

    const old = await fetch(`${suite.stack.api.url}/v1/verify-email${query}`, { redirect: 'manual' });
    expect(old.status).toBe(303);
    expect(old.headers.get('location')).toBe(`/app/verify-email${query}`);
    const page = await fetch(`${suite.stack.api.url}/app/verify-email${query}`);
    expect(page.status).toBe(200);
    await page.text();
    expect(await isVerified(username)).toBe(false);

    const verified = await fetch(`${suite.stack.api.url}/v1/verify-email`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ emailId: link.searchParams.get('email_id'), secretCode: link.searchParams.get('secret_code') }),
    });
    expect(verified.status).toBe(200);
    expect(await verified.json()).toEqual({ isVerified: true });
    expect(await isVerified(username)).toBe(true);
  });

  it('over gRPC VerifyEmail verifies as before', async () => {
    const t = suite.transports.get('grpc')!;
    const username = uniqueName('verify');
    const email = `${username}@example.test`;
    await t.call(UserService, 'createUser', { username, fullName: 'Verify Me', email, password: `pw-${username}-secret` });
    const link = await verificationLinkFor(suite.stack.smtp, email);
    const verified = await t.call(UserService, 'verifyEmail', { emailId: BigInt(link.searchParams.get('email_id')!), secretCode: link.searchParams.get('secret_code')! });
    expect(verified.isVerified).toBe(true);
    expect(await isVerified(username)).toBe(true);
  });
});

describe('the pages emailed links open', () => {
  it.each(['/app/approve-login', '/app/verify-email', '/app/reset-password'])('%s is the web app, under the API\'s Content-Security-Policy, which allows no inline script', async (path) => {
    const page = await fetch(`${suite.stack.api.url}${path}?a=b`);
    expect(page.status).toBe(200);
    const csp = page.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("connect-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    expect(page.headers.get('referrer-policy')).toBe('no-referrer');
    const html = await page.text();
    // Every script is a file of the app's own: none inline.
    expect([...html.matchAll(/<script\b[^>]*>([\s\S]*?)<\/script>/g)].every((m) => m[1]!.trim() === '')).toBe(true);
    const src = /<script[^>]* src="([^"]+)"/.exec(html)?.[1];
    expect(src).toMatch(/^\/app\/assets\/[\w-]+\.js$/);
    const script = await fetch(`${suite.stack.api.url}${src}`);
    expect(script.status).toBe(200);
    expect(script.headers.get('content-type')).toMatch(/^text\/javascript/);
  });
});
