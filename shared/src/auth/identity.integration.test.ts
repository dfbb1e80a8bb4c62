// Identity and email end to end on the real PostgreSQL, Redis and an SMTP receiver: the use cases
// in-process, the email worker in-process (startWorker), messages read from the SMTP server.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { sql } from 'slonik';
import { z } from 'zod';
import { startWorker, type RunningWorker } from '@bank/worker/worker';
import { createTestDatabase, type TestDatabase } from '../../../test/db.ts';
import { TEST_REDIS_URL } from '../../../test/services.ts';
import { startTestSmtpServer, type CapturedEmail, type TestSmtpServer } from '../../../test/smtp.ts';
import { parseConfig, type Config } from '../config/config.ts';
import { EmailNotVerified, PermissionDenied, RateLimited, Unauthenticated, UsernameTaken, VerificationLinkInvalid } from '../errors/domain-error.ts';
import { createLogger } from '../logging/logger.ts';
import { SEND_LOGIN_EMAIL } from '../mail/email.schema.ts';
import { outboxRepository } from '../outbox/outbox.repository.ts';
import { createBank, type Bank } from '../app/bank.ts';
import { PasswordHasher } from './password.ts';
import { RateLimiter } from './rate-limiter.ts';
import { SessionService } from './session.service.ts';
import { generatePasetoKeyPair } from './token-maker.ts';

const run = randomBytes(4).toString('hex');
const logger = createLogger({ name: 'test', level: 'silent', pretty: false });
const PASSWORD = 'correct horse battery';

let db: TestDatabase;
let smtp: TestSmtpServer;
let config: Config;
let identity: Bank;
let worker: RunningWorker;
let counter = 0;

/** The real PasswordHasher, recording each bcrypt compare it makes (verifyDummy goes through verify too). */
class CountingPasswordHasher extends PasswordHasher {
  readonly compares: { hash: string; matched: boolean }[] = [];
  override async verify(password: string, hash: string): Promise<boolean> {
    const matched = await super.verify(password, hash);
    this.compares.push({ hash, matched });
    return matched;
  }
}

const newUsername = () => `u${run}_${(counter += 1)}`;
const emailOf = (username: string) => `${username}@example.test`;

function verificationParams(message: CapturedEmail): { emailId: bigint; secretCode: string; link: string } {
  const link = /https?:\/\/\S+\/app\/verify-email\?\S+/.exec(message.text)?.[0];
  if (!link) throw new Error('no verification link in the email');
  const url = new URL(link);
  return { emailId: BigInt(url.searchParams.get('email_id') ?? ''), secretCode: url.searchParams.get('secret_code') ?? '', link };
}

function loginParams(message: CapturedEmail): { token: string; code: string; sessionId: string } {
  const token = /v4\.public\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+/.exec(message.text)?.[0];
  const code = /code: (\d{6})/.exec(message.text)?.[1];
  const sessionId = /Session: ([0-9a-f-]{36})/.exec(message.text)?.[1];
  if (!token || !code || !sessionId) throw new Error('login email lacks token, code or session');
  return { token, code, sessionId };
}

async function waitUntil(check: () => Promise<boolean> | boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Signs up and follows the emailed link; returns the username. */
async function verifiedUser(): Promise<string> {
  const username = newUsername();
  await identity.users.signUp({ username, fullName: 'Test User', email: emailOf(username), password: PASSWORD });
  const message = await smtp.waitForMessageTo(emailOf(username));
  await identity.users.verifyEmail(verificationParams(message));
  return username;
}

/** Login step 1 and the email it produced. */
async function startLogin(username: string, clientIp = '10.0.0.1') {
  const before = smtp.messagesTo(emailOf(username)).length;
  const { sessionId, loginSecret } = await identity.sessions.loginStart({ username, password: PASSWORD, clientIp, userAgent: 'jest' });
  await smtp.waitFor(() => smtp.messagesTo(emailOf(username)).length > before);
  const message = smtp.messagesTo(emailOf(username))[before] as CapturedEmail;
  const emailed = loginParams(message);
  expect(emailed.sessionId).toBe(sessionId);
  return { sessionId, loginSecret, message, token: emailed.token, code: emailed.code };
}

beforeAll(async () => {
  db = await createTestDatabase();
  smtp = await startTestSmtpServer();
  const keys = await generatePasetoKeyPair();
  config = parseConfig({
    NODE_ENV: 'test',
    LOG_LEVEL: 'silent',
    DATABASE_URL: db.url,
    REDIS_URL: TEST_REDIS_URL,
    SMTP_URL: smtp.url,
    PUBLIC_BASE_URL: 'http://bank.test:8080',
    PASETO_SECRET_KEY: keys.secretKey,
    BCRYPT_COST: '4',
    LOGIN_RATE_LIMIT_MAX: '1000',
    EMAIL_QUEUE_NAME: `test-email-${run}`,
    REDIS_KEY_PREFIX: `test:${run}:`,
    OUTBOX_SWEEP_INTERVAL_MS: '300',
    OUTBOX_SWEEP_PENDING_AFTER_MS: '0',
    METRICS_PORT: '0',
    SHUTDOWN_TIMEOUT_MS: '5000',
  });
  identity = await createBank(config, { pool: db.pool, logger });
  worker = await startWorker(config, { pool: db.pool, logger, host: '127.0.0.1' });
});

afterAll(async () => {
  await worker?.close();
  await identity?.queue.obliterate({ force: true }).catch(() => undefined);
  await identity?.close();
  await smtp?.close();
  await db?.drop();
});


/** The outbox row `id`, as the worker reads it. */
const outboxRowOf = async (id: string) => (await outboxRepository.findByIds(db.pool, [id]))[0];
describe('sign-up and email verification', () => {
  it('delivers exactly one verification email whose link verifies the user once', async () => {
    const username = newUsername();
    const user = await identity.users.signUp({ username, fullName: 'Ada Lovelace', email: emailOf(username), password: PASSWORD });
    expect(user).toMatchObject({ username, fullName: 'Ada Lovelace', email: emailOf(username), role: 'depositor', isEmailVerified: false });
    expect(user).not.toHaveProperty('hashedPassword');

    const message = await smtp.waitForMessageTo(emailOf(username));
    const { emailId, secretCode, link } = verificationParams(message);
    expect(link.startsWith('http://bank.test:8080/app/verify-email?email_id=')).toBe(true);
    expect(message.subject).toBe('Confirm your email address');
    expect(message.html).toContain('href="http://bank.test:8080/app/verify-email?email_id=');

    await expect(identity.users.verifyEmail({ emailId, secretCode: 'wrong-secret' })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    const verified = await identity.users.verifyEmail({ emailId, secretCode });
    expect(verified.isEmailVerified).toBe(true);
    await expect(identity.users.verifyEmail({ emailId, secretCode })).rejects.toThrow('this verification link was already used');

    // Give a duplicate a chance to show up, then count: exactly one.
    await new Promise((resolve) => setTimeout(resolve, 700));
    expect(smtp.messagesTo(emailOf(username))).toHaveLength(1);
    const row = await db.pool.one(sql.type(z.object({ status: z.string(), payload: z.record(z.string(), z.unknown()) }))`
      SELECT status, payload FROM outbox WHERE payload->>'username' = ${username}`);
    expect(row.status).toBe('sent');
    expect(row.payload).not.toHaveProperty('secretCode');
  });

  it('refuses taken usernames, answers a taken email (case-insensitive) as a new one without making an account, and refuses invalid input with field errors', async () => {
    const username = newUsername();
    await identity.users.signUp({ username, fullName: 'A', email: emailOf(username), password: PASSWORD });
    await expect(identity.users.signUp({ username, fullName: 'B', email: `other_${emailOf(username)}`, password: PASSWORD })).rejects.toBeInstanceOf(UsernameTaken);
    // Issue 13: a taken email no longer answers EmailTaken (409 told anyone who has an account).
    const lookalike = newUsername();
    await expect(identity.users.signUp({ username: lookalike, fullName: 'B', email: emailOf(username).toUpperCase(), password: PASSWORD })).resolves.toMatchObject({
      username: lookalike,
      isEmailVerified: false,
    });
    await expect(identity.users.getUser({ username: 'some_banker', role: 'banker' }, lookalike)).rejects.toMatchObject({ code: 'USER_NOT_FOUND' });
    await expect(identity.users.signUp({ username: 'No Caps', fullName: '', email: 'nope', password: 'short' })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      fieldViolations: [
        { field: 'username', description: expect.any(String) },
        { field: 'full_name', description: expect.any(String) },
        { field: 'email', description: expect.any(String) },
        { field: 'password', description: 'must be at least 8 characters long (got 5)' },
      ],
    });
  });

  it('an expired link says so', async () => {
    const username = newUsername();
    await identity.users.signUp({ username, fullName: 'A', email: emailOf(username), password: PASSWORD });
    const { emailId, secretCode } = verificationParams(await smtp.waitForMessageTo(emailOf(username)));
    await db.pool.query(sql.unsafe`UPDATE email_verifications SET expires_at = now() - interval '1 second' WHERE id = ${emailId}`);
    await expect(identity.users.verifyEmail({ emailId, secretCode })).rejects.toThrow(VerificationLinkInvalid);
    await expect(identity.users.verifyEmail({ emailId, secretCode })).rejects.toThrow('has expired');
  });
});

describe('login', () => {
  it('only verified emails may log in', async () => {
    const username = newUsername();
    await identity.users.signUp({ username, fullName: 'A', email: emailOf(username), password: PASSWORD });
    await expect(identity.sessions.loginStart({ username, password: PASSWORD })).rejects.toBeInstanceOf(EmailNotVerified);
  });

  it('unknown user and wrong password get the same answer', async () => {
    const username = await verifiedUser();
    const wrong = await identity.sessions.loginStart({ username, password: 'not the password' }).catch((error: unknown) => error);
    const unknown = await identity.sessions.loginStart({ username: `nobody_${run}`, password: PASSWORD }).catch((error: unknown) => error);
    expect(wrong).toBeInstanceOf(Unauthenticated);
    expect(unknown).toBeInstanceOf(Unauthenticated);
    expect((wrong as Error).message).toBe((unknown as Error).message);
    expect((wrong as Unauthenticated).code).toBe((unknown as Unauthenticated).code);
  });

  it('unknown user and wrong password cost the same work: one bcrypt compare each, at the configured cost', async () => {
    // Counting the compares proves the property without a wall clock, so a loaded machine cannot
    // fail it; bcrypt's time depends on nothing but the cost in the hash it compares against.
    const passwords = new CountingPasswordHasher({ cost: config.BCRYPT_COST });
    const username = newUsername();
    await identity.users.signUp({ username, fullName: 'A', email: emailOf(username), password: PASSWORD });
    await db.pool.query(sql.unsafe`UPDATE users SET is_email_verified = true WHERE username = ${username}`);
    const stored = await db.pool.oneFirst(sql.type(z.object({ hashed_password: z.string() }))`
      SELECT hashed_password FROM users WHERE username = ${username}`);
    const sessions = new SessionService({
      pool: db.pool,
      passwords,
      tokens: identity.tokens,
      outbox: identity.outbox,
      rateLimiter: new RateLimiter({ redis: identity.redis, prefix: `test:${run}:work:`, max: 1000, windowSeconds: 60 }),
      config,
    });
    const attempt = async (name: string, password = 'not the password') => {
      passwords.compares.length = 0;
      const error = await sessions.loginStart({ username: name, password }).then(() => undefined, (e: unknown) => e);
      return { error, compares: [...passwords.compares] };
    };
    const costOf = (hash: string | undefined) => Number(/^(?:v2:)?\$2[aby]\$(\d{2})\$/.exec(hash ?? '')?.[1]);

    const wrong = await attempt(username);
    const unknown = await attempt(`nobody_${run}`);
    const anotherUnknown = await attempt(`nobody_else_${run}`);
    const tooLong = await attempt(username, 'x'.repeat(100));
    const right = await attempt(username, PASSWORD);

    // The same answer.
    expect(wrong.error).toBeInstanceOf(Unauthenticated);
    expect(unknown.error).toBeInstanceOf(Unauthenticated);
    expect((wrong.error as Error).message).toBe((unknown.error as Error).message);
    expect((wrong.error as Unauthenticated).code).toBe((unknown.error as Unauthenticated).code);
    // The same work: exactly one real compare each, failing, against a hash of the same cost.
    expect(wrong.compares).toEqual([{ hash: stored, matched: false }]);
    expect(unknown.compares).toEqual([{ hash: expect.any(String), matched: false }]);
    const dummy = unknown.compares[0]?.hash;
    expect(dummy).not.toBe(stored);
    expect(costOf(dummy)).toBe(config.BCRYPT_COST);
    expect(costOf(stored)).toBe(config.BCRYPT_COST);
    // Every unknown user compares against that one dummy.
    expect(anotherUnknown.compares).toEqual([{ hash: dummy, matched: false }]);
    // A password over 72 bytes is a password like any other now (issue 13; it used to be refused
    // against the dummy): compared, whole, with the user's hash.
    expect(tooLong.error).toBeInstanceOf(Unauthenticated);
    expect(tooLong.compares).toEqual([{ hash: stored, matched: false }]);
    // The counter sees real compares: the right password matches its stored hash.
    expect(right.error).toBeUndefined();
    expect(right.compares).toEqual([{ hash: stored, matched: true }]);
  });

  it('delivers exactly one login email whose token confirms the session once', async () => {
    const username = await verifiedUser();
    const login = await startLogin(username);
    expect(login.sessionId).toBe(login.sessionId.toLowerCase());
    expect(login.message.subject).toBe('Confirm your login');
    expect(login.message.html).toContain(login.token);

    const tokens = await identity.sessions.loginConfirm({ sessionId: login.sessionId, loginSecret: login.loginSecret, token: login.token, clientIp: '10.9.9.9', userAgent: 'jest-agent' });
    expect(tokens.sessionId).toBe(login.sessionId);
    expect(tokens.user).toMatchObject({ username, isEmailVerified: true });
    expect(tokens.accessTokenExpiresAt.getTime()).toBeLessThan(tokens.refreshTokenExpiresAt.getTime());
    await expect(identity.sessions.authenticate(tokens.accessToken)).resolves.toEqual({ username, role: 'depositor', sessionId: login.sessionId });

    await expect(identity.sessions.loginConfirm({ sessionId: login.sessionId, loginSecret: login.loginSecret, token: login.token })).rejects.toThrow('already confirmed');
    await expect(identity.sessions.loginConfirm({ sessionId: login.sessionId, loginSecret: login.loginSecret, code: login.code })).rejects.toBeInstanceOf(Unauthenticated);

    const session = await db.pool.one(sql.type(z.object({ status: z.string(), user_agent: z.string().nullable(), client_ip: z.string().nullable() }))`
      SELECT status, user_agent, client_ip FROM sessions WHERE id = ${login.sessionId}`);
    expect(session).toEqual({ status: 'active', user_agent: 'jest-agent', client_ip: '10.9.9.9' });
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(smtp.messagesTo(emailOf(username)).filter((m) => m.subject === 'Confirm your login')).toHaveLength(1);
  });

  it('the emailed code confirms the session once; wrong codes are limited', async () => {
    const username = await verifiedUser();
    const login = await startLogin(username);
    const wrongCode = login.code === '000000' ? '111111' : '000000';
    await expect(identity.sessions.loginConfirm({ sessionId: login.sessionId, loginSecret: login.loginSecret, code: wrongCode })).rejects.toThrow('invalid login token or code');
    const tokens = await identity.sessions.loginConfirm({ sessionId: login.sessionId, loginSecret: login.loginSecret, code: login.code });
    await expect(identity.sessions.authenticate(tokens.accessToken)).resolves.toMatchObject({ username });
    await expect(identity.sessions.loginConfirm({ sessionId: login.sessionId, loginSecret: login.loginSecret, code: login.code })).rejects.toThrow('already confirmed');

    const second = await startLogin(username);
    const wrong = second.code === '000000' ? '111111' : '000000';
    for (let i = 0; i < 5; i += 1) await expect(identity.sessions.loginConfirm({ sessionId: second.sessionId, loginSecret: second.loginSecret, code: wrong })).rejects.toBeInstanceOf(Unauthenticated);
    await expect(identity.sessions.loginConfirm({ sessionId: second.sessionId, loginSecret: second.loginSecret, code: second.code })).rejects.toThrow('too many failed attempts');
  });

  it('a login token only confirms its own session, and not after it expired', async () => {
    const username = await verifiedUser();
    const first = await startLogin(username);
    const second = await startLogin(username);
    await expect(identity.sessions.loginConfirm({ sessionId: second.sessionId, loginSecret: second.loginSecret, token: first.token })).rejects.toThrow('another session');
    await db.pool.query(sql.unsafe`UPDATE login_challenges SET expires_at = now() - interval '1 second' WHERE session_id = ${second.sessionId}`);
    await expect(identity.sessions.loginConfirm({ sessionId: second.sessionId, loginSecret: second.loginSecret, code: second.code })).rejects.toThrow('expired');
    await expect(identity.sessions.loginConfirm({ sessionId: first.sessionId, loginSecret: first.loginSecret, token: first.token })).resolves.toMatchObject({ sessionId: first.sessionId });
  });
});

describe('tokens and sessions', () => {
  it('refresh rotates the refresh token; reusing an old one revokes the session', async () => {
    const username = await verifiedUser();
    const login = await startLogin(username);
    const first = await identity.sessions.loginConfirm({ sessionId: login.sessionId, loginSecret: login.loginSecret, token: login.token });
    const second = await identity.sessions.refresh({ refreshToken: first.refreshToken });
    expect(second.refreshToken).not.toBe(first.refreshToken);
    expect(second.sessionId).toBe(first.sessionId);
    await expect(identity.sessions.authenticate(second.accessToken)).resolves.toMatchObject({ username });
    const third = await identity.sessions.refresh({ refreshToken: second.refreshToken });

    // The first refresh token was rotated away: presenting it again is theft or a bug -> revoke.
    await expect(identity.sessions.refresh({ refreshToken: first.refreshToken })).rejects.toThrow('already used; the session is revoked');
    await expect(identity.sessions.refresh({ refreshToken: third.refreshToken })).rejects.toThrow('no longer active');
    await expect(identity.sessions.authenticate(third.accessToken)).rejects.toThrow('no longer active');
    const row = await db.pool.one(sql.type(z.object({ status: z.string(), revoked_reason: z.string().nullable() }))`
      SELECT status, revoked_reason FROM sessions WHERE id = ${login.sessionId}`);
    expect(row).toEqual({ status: 'revoked', revoked_reason: 'refresh token reuse' });
  });

  it('tokens of the wrong purpose are refused by every step', async () => {
    const username = await verifiedUser();
    const login = await startLogin(username);
    await expect(identity.sessions.authenticate(login.token)).rejects.toBeInstanceOf(Unauthenticated);
    const tokens = await identity.sessions.loginConfirm({ sessionId: login.sessionId, loginSecret: login.loginSecret, token: login.token });
    await expect(identity.sessions.authenticate(tokens.refreshToken)).rejects.toBeInstanceOf(Unauthenticated);
    await expect(identity.sessions.refresh({ refreshToken: tokens.accessToken })).rejects.toBeInstanceOf(Unauthenticated);
    await expect(identity.sessions.authenticate(`${tokens.accessToken.slice(0, 40)}x${tokens.accessToken.slice(41)}`)).rejects.toBeInstanceOf(Unauthenticated);
  });

  it('logout revokes the session; only the owner can log it out', async () => {
    const alice = await verifiedUser();
    const bob = await verifiedUser();
    const login = await startLogin(alice);
    const tokens = await identity.sessions.loginConfirm({ sessionId: login.sessionId, loginSecret: login.loginSecret, token: login.token });
    const actor = await identity.sessions.authenticate(tokens.accessToken);
    await expect(identity.sessions.logout({ username: bob, role: 'depositor' }, login.sessionId)).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await identity.sessions.logout(actor, login.sessionId);
    await identity.sessions.logout(actor, login.sessionId);
    await expect(identity.sessions.authenticate(tokens.accessToken)).rejects.toBeInstanceOf(Unauthenticated);
    await expect(identity.sessions.refresh({ refreshToken: tokens.refreshToken })).rejects.toBeInstanceOf(Unauthenticated);
  });
});

describe('profile', () => {
  it('reads own profile; a banker reads anyone; a depositor not others', async () => {
    const alice = await verifiedUser();
    const bob = await verifiedUser();
    await expect(identity.users.getUser({ username: alice, role: 'depositor' }, alice)).resolves.toMatchObject({ username: alice });
    await expect(identity.users.getUser({ username: alice, role: 'depositor' }, bob)).rejects.toBeInstanceOf(PermissionDenied);
    await expect(identity.users.getUser({ username: 'some_banker', role: 'banker' }, bob)).resolves.toMatchObject({ username: bob });
    await expect(identity.users.getUser({ username: 'some_banker', role: 'banker' }, `ghost_${run}`)).rejects.toMatchObject({ code: 'USER_NOT_FOUND' });
  });

  it('a changed email takes effect, verified, once the link sent to it is followed; the current one stays until then', async () => {
    const username = await verifiedUser();
    const actor = { username, role: 'depositor' as const };
    const newEmail = `new_${emailOf(username)}`;
    await expect(identity.users.updateUser(actor, username, { email: newEmail })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      fieldViolations: [expect.objectContaining({ field: 'current_password' })],
    });
    await expect(identity.users.updateUser(actor, username, { email: newEmail, currentPassword: 'not the password' })).rejects.toMatchObject({
      fieldViolations: [expect.objectContaining({ field: 'current_password' })],
    });
    const updated = await identity.users.updateUser(actor, username, { fullName: 'New Name', email: newEmail, currentPassword: PASSWORD });
    // Issue 13: the user stays at (and may log in with) the current, verified address until the
    // new one's link is followed; it used to move at once, unverified, and refuse logins.
    expect(updated).toMatchObject({ fullName: 'New Name', email: emailOf(username), isEmailVerified: true });
    await expect(identity.sessions.loginStart({ username, password: PASSWORD })).resolves.toHaveProperty('sessionId');
    const verified = await identity.users.verifyEmail(verificationParams(await smtp.waitForMessageTo(newEmail)));
    expect(verified).toMatchObject({ email: newEmail, isEmailVerified: true });
    await expect(identity.users.updateUser(actor, `someone_${run}`, { fullName: 'X' })).rejects.toBeInstanceOf(PermissionDenied);
  });

  it('a password change needs the current password and revokes the other sessions', async () => {
    const username = await verifiedUser();
    const a = await startLogin(username);
    const sessionA = await identity.sessions.loginConfirm({ sessionId: a.sessionId, loginSecret: a.loginSecret, token: a.token });
    const b = await startLogin(username);
    const sessionB = await identity.sessions.loginConfirm({ sessionId: b.sessionId, loginSecret: b.loginSecret, token: b.token });
    const actor = await identity.sessions.authenticate(sessionA.accessToken);

    await expect(identity.users.updateUser(actor, username, { password: 'a new password' })).rejects.toMatchObject({
      fieldViolations: [{ field: 'current_password', description: 'is required to change the password' }],
    });
    await expect(identity.users.updateUser(actor, username, { password: 'a new password', currentPassword: 'wrong password' })).rejects.toMatchObject({
      fieldViolations: [{ field: 'current_password', description: 'does not match the current password' }],
    });
    const before = (await identity.users.getUser(actor, username)).passwordChangedAt;
    const updated = await identity.users.updateUser(actor, username, { password: 'a new password', currentPassword: PASSWORD });
    expect(updated.passwordChangedAt.getTime()).toBeGreaterThan(before.getTime());
    await expect(identity.sessions.authenticate(sessionA.accessToken)).resolves.toMatchObject({ username });
    await expect(identity.sessions.authenticate(sessionB.accessToken)).rejects.toBeInstanceOf(Unauthenticated);
    await expect(identity.sessions.loginStart({ username, password: PASSWORD })).rejects.toBeInstanceOf(Unauthenticated);
    await expect(identity.sessions.loginStart({ username, password: 'a new password' })).resolves.toHaveProperty('sessionId');
  });
});

describe('brute-force protection', () => {
  it('the N+1th bad login within the window is refused; a good one after the window works', async () => {
    const username = await verifiedUser();
    const limiter = new RateLimiter({ redis: identity.redis, prefix: `test:${run}:rl-window:`, max: 3, windowSeconds: 2 });
    const sessions = new SessionService({ pool: db.pool, passwords: new PasswordHasher({ cost: 4 }), tokens: identity.tokens, outbox: identity.outbox, rateLimiter: limiter, config });
    for (let i = 0; i < 3; i += 1) {
      await expect(sessions.loginStart({ username, password: 'bad password', clientIp: '10.1.1.1' })).rejects.toBeInstanceOf(Unauthenticated);
    }
    const refused = await sessions.loginStart({ username, password: PASSWORD, clientIp: '10.1.1.1' }).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(RateLimited);
    expect((refused as RateLimited).code).toBe('RATE_LIMITED');
    expect((refused as RateLimited).retryAfterSeconds).toBeGreaterThanOrEqual(1);
    expect((refused as RateLimited).retryAfterSeconds).toBeLessThanOrEqual(2);
    expect((refused as Error).message).toMatch(/^too many attempts, retry after [12] s$/);
    // Per client address too: another user from the same address is refused ...
    await expect(sessions.loginStart({ username: `other_${run}`, password: 'x'.repeat(8), clientIp: '10.1.1.1' })).rejects.toBeInstanceOf(RateLimited);
    // ... but the same user from another address is let in: per username, failures only slow
    // logins down, so guesses from elsewhere cannot lock the owner out.
    await expect(sessions.loginStart({ username, password: PASSWORD, clientIp: '10.2.2.2' })).resolves.toHaveProperty('sessionId');

    await new Promise((resolve) => setTimeout(resolve, 2_100));
    await expect(sessions.loginStart({ username, password: PASSWORD, clientIp: '10.1.1.1' })).resolves.toHaveProperty('sessionId');
  });
});

describe('email delivery', () => {
  it('a bad payload fails at once without retry and stays visible; a sent row is never sent again', async () => {
    const id = await outboxRepository.insert(db.pool, { kind: SEND_LOGIN_EMAIL, payload: { to: 'broken@example.test', code: 'abc' } });
    await identity.outbox.enqueueOutbox([id]);
    await waitUntil(async () => (await outboxRowOf(id))?.status === 'failed');
    const row = await outboxRowOf(id);
    expect(row?.lastError).toMatch(/^invalid payload: /);
    const job = await identity.queue.getJob(id);
    expect(await job?.getState()).toBe('failed');
    expect(job?.attemptsMade).toBe(1);
    expect(smtp.messagesTo('broken@example.test')).toHaveLength(0);

    // Re-adding a sent row's job (e.g. after its old job was removed) sends nothing.
    const username = newUsername();
    await identity.users.signUp({ username, fullName: 'Once', email: emailOf(username), password: PASSWORD });
    await smtp.waitForMessageTo(emailOf(username));
    const sent = await db.pool.one(sql.type(z.object({ id: z.string() }))`SELECT id FROM outbox WHERE payload->>'username' = ${username}`);
    await waitUntil(async () => (await outboxRowOf(sent.id))?.status === 'sent');
    await (await identity.queue.getJob(sent.id))?.remove();
    await identity.queue.add('send-verification-email', { outboxId: sent.id }, { jobId: sent.id });
    await waitUntil(async () => (await identity.queue.getJob(sent.id).then((j) => j?.getState())) === 'completed');
    expect(smtp.messagesTo(emailOf(username))).toHaveLength(1);
  });

  it('an email whose token or link expired before a (re)try could send it is marked failed, not sent', async () => {
    const to = `late_${run}@example.test`;
    const id = await outboxRepository.insert(db.pool, {
      kind: SEND_LOGIN_EMAIL,
      payload: {
        to,
        username: `late_${run}`,
        fullName: 'Late',
        sessionId: '00000000-0000-4000-8000-000000000000',
        loginToken: 'v4.public.expired',
        code: '123456',
        expiresAt: new Date(Date.now() - 1_000).toISOString(),
      },
    });
    await identity.outbox.enqueueOutbox([id]);
    await waitUntil(async () => (await outboxRowOf(id))?.status === 'failed');
    const failed = await outboxRowOf(id);
    expect(failed?.lastError).toMatch(/^expired at .* before it could be sent$/);
    expect(failed?.payload).toEqual(expect.objectContaining({ to, sessionId: '00000000-0000-4000-8000-000000000000' }));
    expect(failed?.payload).not.toHaveProperty('loginToken');
    expect(failed?.payload).not.toHaveProperty('code');
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(smtp.messagesTo(to)).toHaveLength(0);
  });

  it('serves /healthz, /readyz and /metrics with email counters', async () => {
    const base = `http://127.0.0.1:${worker.metricsPort}`;
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    const ready = await fetch(`${base}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ ready: true, checks: { database: 'ok', redis: 'ok' } });
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toMatch(/bank_emails_sent_total\{kind="send-verification-email",service="worker"\} [1-9]/);
    expect(metrics).toMatch(/bank_emails_failed_total\{kind="send-login-email",reason="bad_payload",service="worker"\} 1/);
    expect(metrics).toMatch(/bank_email_queue_depth\{state="waiting",service="worker"\} \d+/);
  });
});
