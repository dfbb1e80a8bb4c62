// Issue 13, build item 8 (tokens and sessions), over both transports: the role comes from the
// session, not the token; tokens carry and need the deployment's audience; no token lives longer
// than its purpose's TTL; every authentication failure reads the same; failed logins are logged
// with a hash of the username tried and the client's address.
import { createHash, randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { beforeAll, describe, expect, it } from '@jest/globals';
import * as grpc from '@grpc/grpc-js';
import { sql } from 'slonik';
import { z } from 'zod';
import { AccountService } from '@bank/proto/bank/v1/account_service_pb';
import { AuthService } from '@bank/proto/bank/v1/auth_service_pb';
import { UserService } from '@bank/proto/bank/v1/user_service_pb';
import { TokenMaker } from '@bank/shared/auth/token-maker';
import { UNAUTHENTICATED_DETAIL } from '@bank/edge/errors/error-table';
import { loginEmailFor, signUp, signUpAndLogIn, signUpBanker } from './flows.ts';
import { stackPerSuite } from './harness.ts';
import { failure, type Transport } from './transports.ts';

const SESSION_CACHE_TTL_MS = 300;
const lines: Array<Record<string, unknown>> = [];
const sink = new Writable({
  write(chunk: Buffer, _encoding, done) {
    for (const line of chunk.toString().split('\n')) if (line.trim()) lines.push(JSON.parse(line) as Record<string, unknown>);
    done();
  },
});
const suite = stackPerSuite({ logDestination: sink, env: { SESSION_CACHE_TTL_MS: String(SESSION_CACHE_TTL_MS), TOKEN_AUDIENCE: 'bank-api-e2e' } });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe.each(['http', 'grpc'] as const)('tokens and sessions over %s', (name) => {
  let t: Transport;
  const status = (http: number, grpcCode: grpc.status) => (name === 'http' ? http : grpcCode);
  const unauthenticated = () => ({ code: 'UNAUTHENTICATED', status: status(401, grpc.status.UNAUTHENTICATED) });

  beforeAll(() => {
    t = suite.transports.get(name)!;
  });

  it('a banker demoted in the database loses the role at the next request once the session cache lets go (SESSION_CACHE_TTL_MS)', async () => {
    const someone = await signUpAndLogIn(t, suite.stack.smtp);
    const banker = await signUpBanker(t, suite.stack.smtp, suite.stack.db.pool);
    await expect(t.call(UserService, 'getUser', { username: someone.username }, { token: banker.accessToken })).resolves.toMatchObject({ username: someone.username });
    // No admin command, no session revoked: only the users row changes.
    await suite.stack.db.pool.query(sql.type(z.object({}))`UPDATE users SET role = 'depositor' WHERE username = ${banker.username}`);
    await sleep(SESSION_CACHE_TTL_MS + 50);
    const denied = await failure(t.call(UserService, 'getUser', { username: someone.username }, { token: banker.accessToken }));
    expect(denied).toMatchObject({ code: 'PERMISSION_DENIED', status: status(403, grpc.status.PERMISSION_DENIED) });
    // The same token still works for what a depositor may do.
    await expect(t.call(UserService, 'getUser', { username: banker.username }, { token: banker.accessToken })).resolves.toMatchObject({ username: banker.username });
  });

  it('a token signed with the bank\'s key for another audience is refused; for this one it is accepted', async () => {
    const user = await signUpAndLogIn(t, suite.stack.smtp);
    const subject = { username: user.username, role: 'depositor' as const, sessionId: user.sessionId, ttlSeconds: 300 };
    const ours = await TokenMaker.create({ secretKey: suite.stack.config.PASETO_SECRET_KEY!, audience: 'bank-api-e2e' });
    const elsewhere = await TokenMaker.create({ secretKey: suite.stack.config.PASETO_SECRET_KEY!, audience: 'bank-reports' });
    await expect(t.call(AccountService, 'listAccounts', {}, { token: (await ours.issue('access', subject)).token })).resolves.toBeDefined();
    const refused = await failure(t.call(AccountService, 'listAccounts', {}, { token: (await elsewhere.issue('access', subject)).token }));
    expect(refused).toMatchObject(unauthenticated());
  });

  it('a token claiming a ten-year life is refused, though the bank\'s key signed it and it has not expired', async () => {
    const user = await signUpAndLogIn(t, suite.stack.smtp);
    const maker = await TokenMaker.create({ secretKey: suite.stack.config.PASETO_SECRET_KEY!, audience: 'bank-api-e2e' });
    const tenYears = await maker.issue('access', { username: user.username, role: 'depositor', sessionId: user.sessionId, ttlSeconds: 10 * 365 * 86_400 });
    expect(await failure(t.call(AccountService, 'listAccounts', {}, { token: tenYears.token }))).toMatchObject(unauthenticated());
    const longRefresh = await maker.issue('refresh', { username: user.username, role: 'depositor', sessionId: user.sessionId, ttlSeconds: 10 * 365 * 86_400 });
    expect(await failure(t.call(AuthService, 'refreshToken', { refreshToken: longRefresh.token }))).toMatchObject(unauthenticated());
  });

  it('every authentication failure answers the same text, whatever failed', async () => {
    const user = await signUp(t, suite.stack.smtp);
    const { sessionId, loginSecret } = await t.call(AuthService, 'login', { username: user.username, password: user.password });
    const mail = await loginEmailFor(suite.stack.smtp, sessionId);
    const wrongCode = ((Number(mail.code) + 1) % 1_000_000).toString().padStart(6, '0');
    const failures = [
      await failure(t.call(AccountService, 'listAccounts', {}, {})),
      await failure(t.call(AccountService, 'listAccounts', {}, { token: 'not-a-token' })),
      await failure(t.call(AccountService, 'listAccounts', {}, { token: mail.token })), // a login token as an access token
      await failure(t.call(AuthService, 'login', { username: user.username, password: 'not the password' })),
      await failure(t.call(AuthService, 'login', { username: `nobody_${randomBytes(4).toString('hex')}`, password: 'not the password' })),
      await failure(t.call(AuthService, 'confirmLogin', { sessionId, loginSecret, code: wrongCode })),
      await failure(t.call(AuthService, 'confirmLogin', { sessionId, loginSecret: 'wrong', token: mail.token })),
      await failure(t.call(AuthService, 'refreshToken', { refreshToken: 'v4.public.garbage' })),
    ];
    const tokens = await t.call(AuthService, 'confirmLogin', { sessionId, loginSecret, code: mail.code });
    await t.call(AuthService, 'logout', { sessionId }, { token: tokens.accessToken });
    failures.push(await failure(t.call(AccountService, 'listAccounts', {}, { token: tokens.accessToken })));
    for (const refused of failures) {
      expect(refused).toMatchObject(unauthenticated());
      expect(refused.message).toBe(`${name} ${refused.status} UNAUTHENTICATED: ${UNAUTHENTICATED_DETAIL}`);
    }
  });

  it('a failed login is logged with a hash of the username tried and the client\'s address, never the username or password', async () => {
    const username = `nobody_${randomBytes(4).toString('hex')}`;
    const password = `pw-${randomBytes(4).toString('hex')}`;
    await failure(t.call(AuthService, 'login', { username, password }));
    await sleep(50);
    const hash = createHash('sha256').update(username).digest('hex').slice(0, 16);
    const logged = lines.filter((l) => l.event === 'login_failed' && l.usernameHash === hash);
    expect(logged).toHaveLength(1);
    expect(logged[0]).toMatchObject({ msg: 'login failed', knownUser: false, clientIp: expect.stringMatching(/127\.0\.0\.1/) });
    const everything = JSON.stringify(lines);
    expect(everything).not.toContain(username);
    expect(everything).not.toContain(password);
  });
});
