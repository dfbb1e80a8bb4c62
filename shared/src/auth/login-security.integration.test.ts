// Adversarial checks of the identity use cases on the real PostgreSQL and Redis: concurrent use of
// single-use secrets, concurrent refreshes, brute force of the login code, rate limiting under
// concurrency. The emailed secrets are read from the outbox rows (no worker runs in this suite).
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { sql } from 'slonik';
import { z } from 'zod';
import { createTestDatabase, type TestDatabase } from '../../../test/db.ts';
import { TEST_REDIS_URL } from '../../../test/services.ts';
import { parseConfig, type Config } from '../config/config.ts';
import { RateLimited, Unauthenticated } from '../errors/domain-error.ts';
import { createLogger } from '../logging/logger.ts';
import { loginEmailPayloadSchema, verificationEmailPayloadSchema } from '../mail/email.schema.ts';
import { UserService } from '../users/user.service.ts';
import { createBank, type Bank } from '../app/bank.ts';
import { PasswordHasher } from './password.ts';
import { RateLimiter } from './rate-limiter.ts';
import { LOGIN_DELAY_MAX_MS, loginDelayMs, SessionService } from './session.service.ts';
import { generatePasetoKeyPair } from './token-maker.ts';

const run = randomBytes(4).toString('hex');
const logger = createLogger({ name: 'test', level: 'silent', pretty: false });
const PASSWORD = 'correct horse battery';

let db: TestDatabase;
let config: Config;
let identity: Bank;
let counter = 0;

const newUsername = () => `s${run}_${(counter += 1)}`;
const emailOf = (username: string) => `${username}@example.test`;
const settle = <T>(promises: Promise<T>[]) => Promise.allSettled(promises);
const fulfilled = <T>(results: PromiseSettledResult<T>[]) => results.filter((r): r is PromiseFulfilledResult<T> => r.status === 'fulfilled');
const rejected = <T>(results: PromiseSettledResult<T>[]) => results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => r.reason as unknown);

async function lastOutboxPayload(username: string, kind: string): Promise<unknown> {
  return db.pool.oneFirst(sql.type(z.object({ payload: z.unknown() }))`
    SELECT payload FROM outbox WHERE kind = ${kind} AND payload->>'username' = ${username} ORDER BY created_at DESC LIMIT 1`);
}

async function signUp(username = newUsername()): Promise<{ username: string; emailId: bigint; secretCode: string }> {
  await identity.users.signUp({ username, fullName: 'Test User', email: emailOf(username), password: PASSWORD });
  const payload = verificationEmailPayloadSchema.parse(await lastOutboxPayload(username, 'send-verification-email'));
  return { username, emailId: BigInt(payload.emailId), secretCode: payload.secretCode };
}

async function verifiedUser(): Promise<string> {
  const { username, emailId, secretCode } = await signUp();
  await identity.users.verifyEmail({ emailId, secretCode });
  return username;
}

async function startLogin(username: string, sessions: SessionService = identity.sessions, clientIp = '10.0.0.1') {
  const { sessionId, loginSecret } = await sessions.loginStart({ username, password: PASSWORD, clientIp });
  const payload = loginEmailPayloadSchema.parse(await lastOutboxPayload(username, 'send-login-email'));
  expect(payload.sessionId).toBe(sessionId);
  return { sessionId, loginSecret, token: payload.loginToken, code: payload.code };
}

const otherCode = (code: string, n = 1) => ((Number(code) + n) % 1_000_000).toString().padStart(6, '0');

function sessionsWith(limiter: { max: number; windowSeconds?: number; cost?: number; loginEmails?: number; waits?: number[] }): SessionService {
  const { waits } = limiter;
  return new SessionService({
    ...(waits ? { sleep: (ms: number) => (waits.push(ms), Promise.resolve()) } : {}),
    ...(limiter.loginEmails
      ? {
          loginEmailLimiter: new RateLimiter({
            redis: identity.redis,
            prefix: `test:${run}:rl-email:${randomBytes(3).toString('hex')}:`,
            max: limiter.loginEmails,
            windowSeconds: 60,
          }),
        }
      : {}),
    pool: db.pool,
    passwords: new PasswordHasher({ cost: limiter.cost ?? 4 }),
    tokens: identity.tokens,
    outbox: identity.outbox,
    rateLimiter: new RateLimiter({
      redis: identity.redis,
      prefix: `test:${run}:rl:${randomBytes(3).toString('hex')}:`,
      max: limiter.max,
      windowSeconds: limiter.windowSeconds ?? 60,
    }),
    config,
    logger,
  });
}

beforeAll(async () => {
  db = await createTestDatabase({ poolSize: 20 });
  const keys = await generatePasetoKeyPair();
  config = parseConfig({
    NODE_ENV: 'test',
    LOG_LEVEL: 'silent',
    DATABASE_URL: db.url,
    REDIS_URL: TEST_REDIS_URL,
    SMTP_URL: 'smtp://127.0.0.1:1',
    PUBLIC_BASE_URL: 'http://bank.test',
    PASETO_SECRET_KEY: keys.secretKey,
    BCRYPT_COST: '4',
    LOGIN_RATE_LIMIT_MAX: '1000',
    EMAIL_QUEUE_NAME: `test-email-sec-${run}`,
    REDIS_KEY_PREFIX: `test:${run}:`,
  });
  identity = await createBank(config, { pool: db.pool, logger });
});

afterAll(async () => {
  await identity?.queue.obliterate({ force: true }).catch(() => undefined);
  const keys = await identity?.redis.keys(`test:${run}:*`);
  if (keys && keys.length > 0) await identity.redis.del(...keys);
  await identity?.close();
  await db?.drop();
});

describe('single-use secrets under concurrency', () => {
  it('eight concurrent uses of one verification link: exactly one verifies', async () => {
    const { emailId, secretCode } = await signUp();
    const results = await settle(Array.from({ length: 8 }, () => identity.users.verifyEmail({ emailId, secretCode })));
    expect(fulfilled(results)).toHaveLength(1);
    for (const error of rejected(results)) expect(error).toMatchObject({ message: 'this verification link was already used' });
  });

  it('eight concurrent confirmations with one login token, and eight with its code: exactly one session opens', async () => {
    const username = await verifiedUser();
    const login = await startLogin(username);
    const results = await settle([
      ...Array.from({ length: 8 }, () => identity.sessions.loginConfirm({ sessionId: login.sessionId, loginSecret: login.loginSecret, token: login.token })),
      ...Array.from({ length: 8 }, () => identity.sessions.loginConfirm({ sessionId: login.sessionId, loginSecret: login.loginSecret, code: login.code })),
    ]);
    expect(fulfilled(results)).toHaveLength(1);
    for (const error of rejected(results)) expect(error).toBeInstanceOf(Unauthenticated);
  });

  it('twenty concurrent wrong codes count one by one: the right code afterwards fails', async () => {
    const username = await verifiedUser();
    const login = await startLogin(username);
    const results = await settle(Array.from({ length: 20 }, (_, i) => identity.sessions.loginConfirm({ sessionId: login.sessionId, loginSecret: login.loginSecret, code: otherCode(login.code, i + 1) })));
    expect(fulfilled(results)).toHaveLength(0);
    const attempts = await db.pool.oneFirst(sql.type(z.object({ attempts: z.number() }))`SELECT attempts FROM login_challenges WHERE session_id = ${login.sessionId}`);
    expect(attempts).toBe(5);
    await expect(identity.sessions.loginConfirm({ sessionId: login.sessionId, loginSecret: login.loginSecret, code: login.code })).rejects.toThrow('too many failed attempts');
  });

  it('two concurrent refreshes with the same refresh token: one rotates, the other is reuse and revokes the session', async () => {
    const username = await verifiedUser();
    const login = await startLogin(username);
    const tokens = await identity.sessions.loginConfirm({ sessionId: login.sessionId, loginSecret: login.loginSecret, token: login.token });
    const results = await settle([identity.sessions.refresh({ refreshToken: tokens.refreshToken }), identity.sessions.refresh({ refreshToken: tokens.refreshToken })]);
    expect(fulfilled(results)).toHaveLength(1);
    expect(rejected(results)[0]).toMatchObject({ message: 'this refresh token was already used; the session is revoked' });
    const winner = fulfilled(results)[0]?.value;
    await expect(identity.sessions.authenticate(winner?.accessToken ?? '')).rejects.toBeInstanceOf(Unauthenticated);
    await expect(identity.sessions.refresh({ refreshToken: winner?.refreshToken ?? '' })).rejects.toBeInstanceOf(Unauthenticated);
  });
});

describe('sessions', () => {
  it('authenticate refuses an access token whose session expired, even though the token has not', async () => {
    const username = await verifiedUser();
    const login = await startLogin(username);
    const tokens = await identity.sessions.loginConfirm({ sessionId: login.sessionId, loginSecret: login.loginSecret, token: login.token });
    await expect(identity.sessions.authenticate(tokens.accessToken)).resolves.toMatchObject({ username });
    await db.pool.query(sql.unsafe`UPDATE sessions SET expires_at = now() - interval '1 second' WHERE id = ${login.sessionId}`);
    // The row was shortened behind the process's back (the service itself only ever moves
    // expires_at forward), and the process saw the session active a moment ago: its cache would
    // trust that for up to SESSION_CACHE_TTL_MS. Drop it, as a restart would, so the row is read.
    identity.sessionLiveness.forget([login.sessionId]);
    await expect(identity.sessions.authenticate(tokens.accessToken)).rejects.toBeInstanceOf(Unauthenticated);
    await expect(identity.sessions.refresh({ refreshToken: tokens.refreshToken })).rejects.toThrow('expired');
  });

  it('refreshing slides a session along but never past its absolute lifetime', async () => {
    const username = await verifiedUser();
    const login = await startLogin(username);
    const opened = await identity.sessions.loginConfirm({ sessionId: login.sessionId, loginSecret: login.loginSecret, token: login.token });
    const maxAge = config.SESSION_MAX_AGE_SECONDS * 1_000;
    // Pretend the session opened almost its whole lifetime ago: 30 seconds are left.
    await db.pool.query(sql.unsafe`
      UPDATE sessions SET activated_at = now() - make_interval(secs => ${(maxAge - 30_000) / 1_000}) WHERE id = ${login.sessionId}`);
    const refreshed = await identity.sessions.refresh({ refreshToken: opened.refreshToken });
    const left = refreshed.refreshTokenExpiresAt.getTime() - Date.now();
    expect(left).toBeLessThanOrEqual(31_000);
    expect(left).toBeGreaterThan(20_000);
    expect(refreshed.accessTokenExpiresAt.getTime()).toBeLessThanOrEqual(refreshed.refreshTokenExpiresAt.getTime());
    // Past the lifetime, even a current refresh token opens nothing.
    await db.pool.query(sql.unsafe`
      UPDATE sessions SET activated_at = now() - make_interval(secs => ${maxAge / 1_000 + 1}) WHERE id = ${login.sessionId}`);
    await expect(identity.sessions.refresh({ refreshToken: refreshed.refreshToken })).rejects.toThrow('expired');
  });
});

describe('brute-force protection', () => {
  it('twelve concurrent wrong passwords with a limit of 3: at most 3 reach bcrypt, the rest are refused', async () => {
    const username = await verifiedUser();
    const sessions = sessionsWith({ max: 3, cost: 8 });
    const results = await settle(Array.from({ length: 12 }, () => sessions.loginStart({ username, password: 'not the password', clientIp: '10.3.3.3' })));
    const errors = rejected(results);
    expect(errors).toHaveLength(12);
    expect(errors.filter((error) => error instanceof Unauthenticated).length).toBeLessThanOrEqual(3);
    expect(errors.filter((error) => error instanceof RateLimited).length).toBeGreaterThanOrEqual(9);
    // Those failures were one address's: the owner's right password from theirs still works.
    await expect(sessions.loginStart({ username, password: PASSWORD, clientIp: '10.4.4.4' })).resolves.toHaveProperty('sessionId');
  });

  it("a stranger's spray from many addresses never refuses the owner's password from their address: it only slows each attempt", async () => {
    const username = await verifiedUser();
    const waits: number[] = [];
    const sessions = sessionsWith({ max: 3, waits });
    const outcomes: string[] = [];
    for (let address = 1; address <= 8; address += 1) {
      for (let attempt = 0; attempt < 4; attempt += 1) {
        outcomes.push(
          await sessions.loginStart({ username, password: `guess ${address}.${attempt}`, clientIp: `10.9.${address}.1` }).then(
            () => 'accepted',
            (error: unknown) => (error instanceof RateLimited ? 'limited' : error instanceof Unauthenticated ? 'wrong' : String(error)),
          ),
        );
      }
    }
    // Each address got its 3 guesses, then the per-address limit stopped it.
    expect(outcomes.filter((outcome) => outcome === 'wrong')).toHaveLength(24);
    expect(outcomes.filter((outcome) => outcome === 'limited')).toHaveLength(8);
    // The owner, from their address, during the spray: accepted, after the per-user delay (capped).
    waits.length = 0;
    await expect(sessions.loginStart({ username, password: PASSWORD, clientIp: '10.4.0.1' })).resolves.toHaveProperty('sessionId');
    expect(waits).toEqual([LOGIN_DELAY_MAX_MS]);
    // A guess from a fresh address is slowed just as much, and counts against that address.
    await expect(sessions.loginStart({ username, password: 'one more guess', clientIp: '10.9.99.1' })).rejects.toBeInstanceOf(Unauthenticated);
    expect(waits).toEqual([LOGIN_DELAY_MAX_MS, LOGIN_DELAY_MAX_MS]);
  });

  it('the per-user delay starts at the limit and doubles up to its cap', () => {
    expect([0, 2, 3, 4, 5, 7, 8, 100].map((failures) => loginDelayMs(failures, 3))).toEqual([0, 0, 100, 200, 400, 1_600, 2_000, 2_000]);
  });

  it('one address guessing many usernames is stopped by the per-address limit', async () => {
    const sessions = sessionsWith({ max: 3 });
    const users = [await verifiedUser(), await verifiedUser(), await verifiedUser(), await verifiedUser()];
    for (const username of users.slice(0, 3)) {
      await expect(sessions.loginStart({ username, password: 'a common password', clientIp: '10.8.8.8' })).rejects.toBeInstanceOf(Unauthenticated);
    }
    await expect(sessions.loginStart({ username: users[3]!, password: 'a common password', clientIp: '10.8.8.8' })).rejects.toBeInstanceOf(RateLimited);
    // Nor with the right password: the address is blocked, not the users.
    await expect(sessions.loginStart({ username: users[3]!, password: PASSWORD, clientIp: '10.8.8.8' })).rejects.toBeInstanceOf(RateLimited);
    await expect(sessions.loginStart({ username: users[3]!, password: PASSWORD, clientIp: '10.8.8.9' })).resolves.toHaveProperty('sessionId');
  });

  it('successful logins do not use up the limit', async () => {
    const username = await verifiedUser();
    const sessions = sessionsWith({ max: 2 });
    for (let i = 0; i < 4; i += 1) {
      const login = await startLogin(username, sessions, '10.5.5.5');
      await expect(sessions.loginConfirm({ sessionId: login.sessionId, loginSecret: login.loginSecret, code: login.code, clientIp: '10.5.5.5' })).resolves.toHaveProperty('accessToken');
    }
  });

  it('login emails are capped per user: the right password cannot flood the inbox with new sessions', async () => {
    const username = await verifiedUser();
    const sessions = sessionsWith({ max: 100, loginEmails: 3 });
    for (let i = 0; i < 3; i += 1) await startLogin(username, sessions, `10.6.6.${i}`);
    await expect(sessions.loginStart({ username, password: PASSWORD, clientIp: '10.6.6.9' })).rejects.toBeInstanceOf(RateLimited);
    const emails = await db.pool.oneFirst(sql.type(z.object({ n: z.number() }))`
      SELECT count(*)::int AS n FROM outbox WHERE kind = 'send-login-email' AND payload->>'username' = ${username}`);
    expect(emails).toBe(3);
    // A wrong password is still answered as a wrong password, not as the email cap.
    await expect(sessions.loginStart({ username, password: 'wrong password', clientIp: '10.6.6.9' })).rejects.toBeInstanceOf(Unauthenticated);
  });

  it('the per-address limit keys on the address, not on the source port a gRPC peer string carries', async () => {
    const sessions = sessionsWith({ max: 2 });
    for (let port = 40_000; port < 40_002; port += 1) {
      await expect(sessions.loginStart({ username: `nobody_${run}_${port}`, password: 'x'.repeat(8), clientIp: `ipv4:10.6.6.6:${port}` })).rejects.toBeInstanceOf(Unauthenticated);
    }
    await expect(sessions.loginStart({ username: `nobody_${run}_x`, password: 'x'.repeat(8), clientIp: 'ipv4:10.6.6.6:40009' })).rejects.toBeInstanceOf(RateLimited);
    await expect(sessions.loginStart({ username: `nobody_${run}_y`, password: 'x'.repeat(8), clientIp: '10.6.6.6' })).rejects.toBeInstanceOf(RateLimited);
    await expect(sessions.loginStart({ username: `nobody_${run}_z`, password: 'x'.repeat(8), clientIp: 'ipv6:[::ffff:10.6.6.6]:40010' })).rejects.toBeInstanceOf(RateLimited);
  });

  it('wrong login codes count against the user: a fresh login per 5 guesses cannot brute-force the 6-digit code', async () => {
    const username = await verifiedUser();
    const sessions = sessionsWith({ max: 3 });
    const login = await startLogin(username, sessions, '10.7.7.1');
    for (let i = 1; i <= 3; i += 1) {
      await expect(sessions.loginConfirm({ sessionId: login.sessionId, loginSecret: login.loginSecret, code: otherCode(login.code, i), clientIp: '10.7.7.1' })).rejects.toBeInstanceOf(Unauthenticated);
    }
    // Neither more guesses (from another address, on this or a new challenge) nor a new challenge.
    await expect(sessions.loginConfirm({ sessionId: login.sessionId, loginSecret: login.loginSecret, code: otherCode(login.code, 4), clientIp: '10.7.7.2' })).rejects.toBeInstanceOf(RateLimited);
    await expect(sessions.loginStart({ username, password: PASSWORD, clientIp: '10.7.7.3' })).rejects.toBeInstanceOf(RateLimited);
    // The emailed token is unguessable, so it still confirms.
    await expect(sessions.loginConfirm({ sessionId: login.sessionId, loginSecret: login.loginSecret, token: login.token, clientIp: '10.7.7.1' })).resolves.toHaveProperty('accessToken');
  });

  it("wrong codes sent with the session id of the email but not the device's login secret never use up the owner's budget", async () => {
    const username = await verifiedUser();
    const sessions = sessionsWith({ max: 3 });
    const login = await startLogin(username, sessions, '10.7.8.1');
    // Someone who reads the login email (it carries the session id) but never got the login
    // secret sends twice the per-user limit of wrong codes, each from a fresh address.
    const outcomes: string[] = [];
    for (let i = 1; i <= 6; i += 1) {
      outcomes.push(
        await sessions.loginConfirm({ sessionId: login.sessionId, loginSecret: `not-the-secret-${i}`, code: otherCode(login.code, i), clientIp: `10.7.9.${i}` }).then(
          () => 'accepted',
          (error: unknown) => (error instanceof RateLimited ? 'limited' : error instanceof Unauthenticated ? 'wrong' : String(error)),
        ),
      );
    }
    // Each one refused as wrong (the fifth ended the challenge, as any five failures do); none of
    // them was a rate-limit refusal, so none took from the user's budget.
    expect(outcomes).toEqual(Array.from({ length: 6 }, () => 'wrong'));
    // The owner is not locked out: a new login, confirmed with their secret and the emailed code.
    const again = await startLogin(username, sessions, '10.7.8.1');
    await expect(sessions.loginConfirm({ sessionId: again.sessionId, loginSecret: again.loginSecret, code: again.code, clientIp: '10.7.8.1' })).resolves.toHaveProperty('accessToken');
    // Each stranger's address still paid for its guess: the per-address limit is untouched by the fix.
    const guesser = sessionsWith({ max: 1 });
    const other = await startLogin(username, guesser, '10.7.8.2');
    await expect(guesser.loginConfirm({ sessionId: other.sessionId, loginSecret: 'wrong', code: otherCode(other.code), clientIp: '10.7.9.99' })).rejects.toBeInstanceOf(Unauthenticated);
    await expect(guesser.loginConfirm({ sessionId: other.sessionId, loginSecret: 'wrong', code: otherCode(other.code, 2), clientIp: '10.7.9.99' })).rejects.toBeInstanceOf(RateLimited);
  });
});

describe('profile changes', () => {
  it('guessing the current password through a password change uses up the login limit', async () => {
    const username = await verifiedUser();
    const login = await startLogin(username);
    const tokens = await identity.sessions.loginConfirm({ sessionId: login.sessionId, loginSecret: login.loginSecret, token: login.token });
    const actor = await identity.sessions.authenticate(tokens.accessToken);
    const limited = new UserService({
      pool: db.pool,
      passwords: new PasswordHasher({ cost: 4 }),
      outbox: identity.outbox,
      rateLimiter: new RateLimiter({ redis: identity.redis, prefix: `test:${run}:rl:pw:`, max: 3, windowSeconds: 60 }),
    });
    for (let i = 0; i < 3; i += 1) {
      await expect(limited.updateUser(actor, username, { password: 'a new password', currentPassword: `guess number ${i}` })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    }
    await expect(limited.updateUser(actor, username, { password: 'a new password', currentPassword: PASSWORD })).rejects.toBeInstanceOf(RateLimited);
    await expect(limited.updateUser(actor, username, { fullName: 'Still Allowed' })).resolves.toMatchObject({ fullName: 'Still Allowed' });
  });

  it('a right current password does not use up the limit', async () => {
    const username = await verifiedUser();
    const actor = { username, role: 'depositor' as const };
    const limited = new UserService({
      pool: db.pool,
      passwords: new PasswordHasher({ cost: 4 }),
      outbox: identity.outbox,
      rateLimiter: new RateLimiter({ redis: identity.redis, prefix: `test:${run}:rl:pw2:`, max: 1, windowSeconds: 60 }),
    });
    await limited.updateUser(actor, username, { password: 'second password', currentPassword: PASSWORD });
    await limited.updateUser(actor, username, { password: PASSWORD, currentPassword: 'second password' });
    await expect(identity.sessions.loginStart({ username, password: PASSWORD })).resolves.toHaveProperty('sessionId');
  });

  it('an email change: an address someone has answers the same and gets nothing, two users racing for one address cannot both get it, an old link keeps the old address', async () => {
    const alice = await signUp();
    await identity.users.verifyEmail({ emailId: alice.emailId, secretCode: alice.secretCode });
    const bob = await verifiedUser();
    const carol = await verifiedUser();
    const actor = (username: string) => ({ username, role: 'depositor' as const });
    // Issue 13: this answered EMAIL_TAKEN (telling who has an account); now it answers as any
    // change does, Bob stays at his address, and Carol's mailbox gets no link.
    const emailsTo = (address: string) =>
      db.pool.oneFirst(sql.type(z.object({ n: z.number() }))`SELECT count(*)::int AS n FROM outbox WHERE lower(payload->>'to') = lower(${address})`);
    const carolEmails = await emailsTo(emailOf(carol));
    await expect(identity.users.updateUser(actor(bob), bob, { email: emailOf(carol).toUpperCase(), currentPassword: PASSWORD })).resolves.toMatchObject({ email: emailOf(bob) });
    expect(await emailsTo(emailOf(carol))).toBe(carolEmails);

    // Both ask for one free address (the answers no longer race: nothing moves yet); both links
    // are followed at once: exactly one user gets the address, the other's link is superseded.
    const contested = `Contested_${run}@Example.test`;
    await identity.users.updateUser(actor(bob), bob, { email: contested, currentPassword: PASSWORD });
    await identity.users.updateUser(actor(carol), carol, { email: contested.toLowerCase(), currentPassword: PASSWORD });
    const links = await Promise.all([bob, carol].map(async (username) => verificationEmailPayloadSchema.parse(await lastOutboxPayload(username, 'send-verification-email'))));
    expect(links.map((link) => link.to.toLowerCase())).toEqual([contested.toLowerCase(), contested.toLowerCase()]);
    const results = await settle(links.map((link) => identity.users.verifyEmail({ emailId: BigInt(link.emailId), secretCode: link.secretCode })));
    expect(fulfilled(results)).toHaveLength(1);
    expect(rejected(results)[0]).toMatchObject({ reason: 'superseded' });

    // A change does not move an unverified user either: the sign-up link still verifies the
    // address they have (it used to be superseded, the user moved at once).
    const pending = await signUp();
    await identity.users.updateUser(actor(pending.username), pending.username, { email: `moved_${emailOf(pending.username)}`, currentPassword: PASSWORD });
    await expect(identity.users.verifyEmail({ emailId: pending.emailId, secretCode: pending.secretCode })).resolves.toMatchObject({ email: emailOf(pending.username), isEmailVerified: true });
  });

  it('changing only the letter case of the email is saved and needs no new verification', async () => {
    const username = await verifiedUser();
    const actor = { username, role: 'depositor' as const };
    const updated = await identity.users.updateUser(actor, username, { email: emailOf(username).toUpperCase() });
    expect(updated).toMatchObject({ email: emailOf(username).toUpperCase(), isEmailVerified: true });
    await expect(identity.users.getUser(actor, username)).resolves.toMatchObject({ email: emailOf(username).toUpperCase() });
  });
});
