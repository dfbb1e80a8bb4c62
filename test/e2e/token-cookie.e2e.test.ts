// Issue 15, item 1 (token handling of the web app), over real HTTP: ConfirmLogin and RefreshToken
// with `Token-Delivery: cookie` put the refresh token in the `bank_refresh` cookie (HttpOnly;
// Secure; SameSite=Strict; Path=/v1/tokens) instead of the JSON; the refresh route reads the cookie
// when the body has no token, only with a JSON content type; logout clears it; JSON clients see
// the API as before.
import { describe, expect, it } from '@jest/globals';
import { AuthService } from '@bank/proto/bank/v1/auth_service_pb';
import { loginEmailFor, signUp } from './flows.ts';
import { stackPerSuite } from './harness.ts';

const suite = stackPerSuite();

type Answer = { status: number; json: Record<string, unknown>; setCookies: string[] };

async function post(path: string, body: unknown, headers: Record<string, string> = {}, method = 'POST'): Promise<Answer> {
  const response = await fetch(suite.stack.api.url + path, {
    method,
    headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });
  const text = await response.text();
  return { status: response.status, json: text ? (JSON.parse(text) as Record<string, unknown>) : {}, setCookies: response.headers.getSetCookie() };
}

/** The value of bank_refresh in a Set-Cookie list (empty string when it is cleared). */
const refreshCookieOf = (setCookies: string[]): string | undefined => {
  const line = setCookies.find((c) => c.startsWith('bank_refresh='));
  return line === undefined ? undefined : (/^bank_refresh=([^;]*)/.exec(line)?.[1] ?? '');
};

/** A verified user who gave the password; the login email's code, not yet confirmed. */
async function pendingLogin() {
  const t = suite.transports.get('http')!;
  const user = await signUp(t, suite.stack.smtp);
  const { sessionId, loginSecret } = await t.call(AuthService, 'login', { username: user.username, password: user.password });
  const { code } = await loginEmailFor(suite.stack.smtp, sessionId);
  return { user, sessionId, loginSecret, code };
}

/** Logged in with the refresh token delivered as a cookie. */
async function cookieLogin() {
  const login = await pendingLogin();
  const answer = await post(`/v1/sessions/${login.sessionId}/confirm`, { loginSecret: login.loginSecret, code: login.code }, { 'token-delivery': 'cookie' });
  expect(answer.status).toBe(200);
  const cookie = refreshCookieOf(answer.setCookies);
  if (!cookie) throw new Error('no bank_refresh cookie');
  return { ...login, tokens: answer.json, cookie };
}

describe('the refresh token as a cookie (Token-Delivery: cookie)', () => {
  it('ConfirmLogin sets bank_refresh HttpOnly, Secure, SameSite=Strict, Path=/v1/tokens, until the refresh token expires, and answers no refresh token in JSON', async () => {
    const login = await pendingLogin();
    const answer = await post(`/v1/sessions/${login.sessionId}/confirm`, { loginSecret: login.loginSecret, code: login.code }, { 'Token-Delivery': 'cookie' });
    expect(answer.status).toBe(200);
    expect(answer.json.accessToken).toMatch(/^v4\.public\./);
    expect(answer.json.refreshToken).toBe('');
    expect(answer.json.sessionId).toBe(login.sessionId);
    const line = answer.setCookies.find((c) => c.startsWith('bank_refresh='));
    expect(line).toMatch(/^bank_refresh=v4\.public\.[A-Za-z0-9_.-]+; /);
    const attributes = line!.split(';').map((a) => a.trim());
    expect(attributes).toEqual(expect.arrayContaining(['HttpOnly', 'Secure', 'SameSite=Strict', 'Path=/v1/tokens']));
    const maxAge = Number(/Max-Age=(\d+)/.exec(line!)?.[1]);
    const expiresIn = (Date.parse(String(answer.json.refreshTokenExpiresAt)) - Date.now()) / 1_000;
    expect(Math.abs(maxAge - expiresIn)).toBeLessThan(5);
  });

  it('POST /v1/tokens/refresh with no token in the body reads the cookie, rotates it, and answers an access token only', async () => {
    const { cookie, user } = await cookieLogin();
    const first = await post('/v1/tokens/refresh', {}, { cookie: `other=1; bank_refresh=${cookie}` });
    expect(first.status).toBe(200);
    expect(first.json.accessToken).toMatch(/^v4\.public\./);
    expect(first.json.refreshToken).toBe('');
    expect((first.json.user as { username: string }).username).toBe(user.username);
    const rotated = refreshCookieOf(first.setCookies);
    expect(rotated).toMatch(/^v4\.public\./);
    expect(rotated).not.toBe(cookie);
    // The new access token works.
    const accounts = await fetch(`${suite.stack.api.url}/v1/accounts`, { headers: { authorization: `Bearer ${String(first.json.accessToken)}` } });
    expect(accounts.status).toBe(200);
    // An empty body (no JSON at all) with the JSON content type reads the cookie too.
    const second = await post('/v1/tokens/refresh', '', { cookie: `bank_refresh=${rotated}` });
    expect(second.status).toBe(200);
    expect(refreshCookieOf(second.setCookies)).toMatch(/^v4\.public\./);
  });

  it('the old cookie used again revokes the session, and the answer clears the cookie', async () => {
    const { cookie } = await cookieLogin();
    const first = await post('/v1/tokens/refresh', {}, { cookie: `bank_refresh=${cookie}` });
    expect(first.status).toBe(200);
    const reused = await post('/v1/tokens/refresh', {}, { cookie: `bank_refresh=${cookie}` });
    expect(reused.status).toBe(401);
    expect(reused.json.accessToken).toBeUndefined();
    expect(refreshCookieOf(reused.setCookies)).toBe('');
    expect(reused.setCookies.find((c) => c.startsWith('bank_refresh='))).toContain('Max-Age=0');
    // The rotated cookie died with the session.
    const after = await post('/v1/tokens/refresh', {}, { cookie: `bank_refresh=${refreshCookieOf(first.setCookies)}` });
    expect(after.status).toBe(401);
  });

  it('a form POST (urlencoded, text/plain or multipart, with or without a body) carrying the cookie gets no tokens: 415', async () => {
    const { cookie } = await cookieLogin();
    for (const [type, body] of [
      ['application/x-www-form-urlencoded', ''],
      ['application/x-www-form-urlencoded', 'refresh_token='],
      ['text/plain', ''],
      ['multipart/form-data; boundary=x', '--x--\r\n'],
    ] as const) {
      const answer = await post('/v1/tokens/refresh', body, { 'content-type': type, cookie: `bank_refresh=${cookie}` });
      expect({ type, status: answer.status, code: answer.json.code, token: answer.json.accessToken }).toEqual({ type, status: 415, code: 'UNSUPPORTED_MEDIA_TYPE', token: undefined });
      expect(refreshCookieOf(answer.setCookies)).toBeUndefined();
    }
    // The cookie is still good: none of those used it.
    expect((await post('/v1/tokens/refresh', {}, { cookie: `bank_refresh=${cookie}` })).status).toBe(200);
  });

  it('with neither a body token nor the cookie the refresh is refused (401) and sets nothing', async () => {
    const answer = await post('/v1/tokens/refresh', {}, {});
    expect(answer.status).toBe(401);
    expect(answer.setCookies).toEqual([]);
  });

  it('logout clears the cookie, and the cookie no longer refreshes', async () => {
    const { cookie, sessionId, tokens } = await cookieLogin();
    const answer = await post(`/v1/sessions/${sessionId}`, undefined, { authorization: `Bearer ${String(tokens.accessToken)}` }, 'DELETE');
    expect(answer.status).toBe(200);
    const line = answer.setCookies.find((c) => c.startsWith('bank_refresh='));
    expect(line).toMatch(/^bank_refresh=; Max-Age=0; /);
    expect(line).toContain('Path=/v1/tokens');
    expect((await post('/v1/tokens/refresh', {}, { cookie: `bank_refresh=${cookie}` })).status).toBe(401);
  });
});

describe('JSON clients that do not ask for the cookie', () => {
  it('ConfirmLogin and RefreshToken answer the refresh token in JSON and set no cookie; a body token wins over a cookie', async () => {
    const login = await pendingLogin();
    const confirmed = await post(`/v1/sessions/${login.sessionId}/confirm`, { loginSecret: login.loginSecret, code: login.code });
    expect(confirmed.status).toBe(200);
    expect(confirmed.json.refreshToken).toMatch(/^v4\.public\./);
    expect(confirmed.setCookies).toEqual([]);
    const refreshed = await post('/v1/tokens/refresh', { refreshToken: confirmed.json.refreshToken }, { cookie: 'bank_refresh=v4.public.not-a-token' });
    expect(refreshed.status).toBe(200);
    expect(refreshed.json.refreshToken).toMatch(/^v4\.public\./);
    expect(refreshed.json.refreshToken).not.toBe(confirmed.json.refreshToken);
    expect(refreshed.setCookies).toEqual([]);
  });

  it('a body token with Token-Delivery: cookie is answered as a cookie (a JSON client may switch)', async () => {
    const login = await pendingLogin();
    const confirmed = await post(`/v1/sessions/${login.sessionId}/confirm`, { loginSecret: login.loginSecret, code: login.code });
    const refreshed = await post('/v1/tokens/refresh', { refreshToken: confirmed.json.refreshToken }, { 'token-delivery': 'cookie' });
    expect(refreshed.status).toBe(200);
    expect(refreshed.json.refreshToken).toBe('');
    expect(refreshCookieOf(refreshed.setCookies)).toMatch(/^v4\.public\./);
  });
});
