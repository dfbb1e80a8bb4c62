// Sign-up without enumeration, its rate limits, strict emails, password change and reset, and
// email change, through the use cases on the real PostgreSQL, Redis and an SMTP receiver (the
// email worker in-process). The same over HTTP and gRPC: test/e2e/account-security.e2e.test.ts.
import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import bcrypt from 'bcrypt';
import { sql } from 'slonik';
import { z } from 'zod';
import { startWorker, type RunningWorker } from '@bank/worker/worker';
import { createTestDatabase, type TestDatabase } from '../../../test/db.ts';
import { TEST_REDIS_URL } from '../../../test/services.ts';
import { startTestSmtpServer, type CapturedEmail, type TestSmtpServer } from '../../../test/smtp.ts';
import { createBank, type Bank } from '../app/bank.ts';
import type { Actor } from '../auth/actor.ts';
import { sessionRepository } from '../auth/session.repository.ts';
import { parseConfig, type Config } from '../config/config.ts';
import { InvalidArgument, RateLimited, Unauthenticated, UsernameTaken, VerificationLinkInvalid } from '../errors/domain-error.ts';
import { createLogger } from '../logging/logger.ts';
import { ACCOUNT_EMAIL_SUBJECTS } from '../mail/account-email.templates.ts';
import { PasswordResetLinkInvalid } from './password.errors.ts';

const run = randomBytes(4).toString('hex');
const logger = createLogger({ name: 'test', level: 'silent', pretty: false });
const PASSWORD = 'correct horse battery';

let db: TestDatabase;
let smtp: TestSmtpServer;
let config: Config;
let bank: Bank;
let worker: RunningWorker;
let counter = 0;

const newUsername = () => `s${run}_${(counter += 1)}`;
const emailOf = (username: string) => `${username}@example.test`;
const subjectsTo = (address: string) => smtp.messagesTo(address).map((m) => m.subject);

function linkIn(message: CapturedEmail, path: string): URL {
  const link = new RegExp(`https?://\\S+${path.replace(/\//g, '\\/')}\\?\\S+`).exec(message.text)?.[0];
  if (!link) throw new Error(`no ${path} link in the email "${message.subject}"`);
  return new URL(link);
}
const verificationLinkIn = (message: CapturedEmail) => {
  const link = /https?:\/\/\S+\/(?:v1|app)\/verify-email\?\S+/.exec(message.text)?.[0];
  if (!link) throw new Error('no verification link in the email');
  const url = new URL(link);
  return { emailId: BigInt(url.searchParams.get('email_id') ?? ''), secretCode: url.searchParams.get('secret_code') ?? '' };
};

async function verifiedUser(password = PASSWORD): Promise<string> {
  const username = newUsername();
  await bank.users.signUp({ username, fullName: 'Test User', email: emailOf(username), password });
  const message = await smtp.waitForMessageTo(emailOf(username));
  await bank.users.verifyEmail(verificationLinkIn(message));
  return username;
}

/** An active session of the user, straight in the database (login itself is tested elsewhere). */
async function activeSession(username: string): Promise<string> {
  const id = randomUUID();
  await sessionRepository.insertPending(db.pool, { id, username, expiresAt: new Date(Date.now() + 3_600_000) });
  await sessionRepository.activate(db.pool, id, { refreshTokenId: randomUUID(), expiresAt: new Date(Date.now() + 3_600_000) });
  return id;
}
const sessionStatus = async (id: string) => (await sessionRepository.findById(db.pool, id))?.status;
const userCount = async (email: string) =>
  db.pool.oneFirst(sql.type(z.object({ n: z.number() }))`SELECT count(*)::int AS n FROM users WHERE lower(email) = lower(${email})`);
/** Login step 1 answers (password right) or refuses with Unauthenticated (password wrong). */
const passwordWorks = (username: string, password: string) =>
  bank.sessions.loginStart({ username, password }).then(
    () => true,
    (error: unknown) => {
      if (error instanceof Unauthenticated) return false;
      throw error;
    },
  );

function configFor(overrides: Record<string, string>): Config {
  return parseConfig({
    NODE_ENV: 'test',
    LOG_LEVEL: 'silent',
    DATABASE_URL: db.url,
    REDIS_URL: TEST_REDIS_URL,
    SMTP_URL: smtp.url,
    PUBLIC_BASE_URL: 'http://bank.test:8080',
    PASETO_SECRET_KEY: config?.PASETO_SECRET_KEY ?? overrides.PASETO_SECRET_KEY,
    BCRYPT_COST: '4',
    LOGIN_RATE_LIMIT_MAX: '1000',
    LOGIN_EMAIL_RATE_LIMIT_MAX: '1000',
    SIGNUP_RATE_LIMIT_PER_ADDRESS: '3',
    EMAIL_QUEUE_NAME: `test-email-acct-${run}`,
    REDIS_KEY_PREFIX: `test:acct:${run}:`,
    OUTBOX_SWEEP_INTERVAL_MS: '300',
    OUTBOX_SWEEP_PENDING_AFTER_MS: '0',
    METRICS_PORT: '0',
    SHUTDOWN_TIMEOUT_MS: '5000',
    ...overrides,
  });
}

beforeAll(async () => {
  db = await createTestDatabase();
  smtp = await startTestSmtpServer();
  const { generatePasetoKeyPair } = await import('../auth/token-maker.ts');
  const keys = await generatePasetoKeyPair();
  config = configFor({ PASETO_SECRET_KEY: keys.secretKey });
  bank = await createBank(config, { pool: db.pool, logger });
  worker = await startWorker(config, { pool: db.pool, logger, host: '127.0.0.1' });
});

afterAll(async () => {
  await worker?.close();
  await bank?.queue.obliterate({ force: true }).catch(() => undefined);
  await bank?.close();
  await smtp?.close();
  await db?.drop();
});

describe('sign-up tells no one which emails are registered', () => {
  it('answers a registered email (in another letter case) exactly as a new one, makes no account, and emails its owner', async () => {
    const owner = await verifiedUser();
    const fresh = newUsername();
    const again = newUsername();
    const forNew = await bank.users.signUp({ username: fresh, fullName: 'Someone', email: emailOf(fresh), password: PASSWORD });
    const forTaken = await bank.users.signUp({ username: again, fullName: 'Someone', email: emailOf(owner).toUpperCase(), password: PASSWORD });

    const shape = (user: object) => Object.fromEntries(Object.entries(user).map(([key, value]) => [key, value instanceof Date ? 'date' : typeof value]));
    expect(shape(forTaken)).toEqual(shape(forNew));
    expect(forTaken).toMatchObject({ username: again, fullName: 'Someone', email: emailOf(owner).toUpperCase(), role: 'depositor', isEmailVerified: false });
    expect(await userCount(emailOf(owner))).toBe(1);
    await expect(bank.users.getUser({ username: owner, role: 'banker' }, again)).rejects.toMatchObject({ code: 'USER_NOT_FOUND' });

    await smtp.waitFor(() => subjectsTo(emailOf(owner)).includes(ACCOUNT_EMAIL_SUBJECTS.signUpAttempt));
    const notice = smtp.messagesTo(emailOf(owner)).find((m) => m.subject === ACCOUNT_EMAIL_SUBJECTS.signUpAttempt);
    expect(notice?.text).toContain(`"${owner}"`);
    expect(notice?.text).not.toContain(again);
  });

  it('still refuses a taken username (usernames are public handles), whatever the email', async () => {
    const owner = await verifiedUser();
    await expect(bank.users.signUp({ username: owner, fullName: 'X', email: emailOf(newUsername()), password: PASSWORD })).rejects.toBeInstanceOf(UsernameTaken);
    await expect(bank.users.signUp({ username: owner, fullName: 'X', email: emailOf(owner), password: PASSWORD })).rejects.toBeInstanceOf(UsernameTaken);
  });

  it('limits sign-ups per client address per hour, any outcome counted, other addresses unaffected', async () => {
    const ip = `10.20.${counter % 250}.7`;
    for (let i = 0; i < 3; i += 1) {
      const username = newUsername();
      await bank.users.signUp({ username, fullName: 'X', email: emailOf(username), password: PASSWORD, clientIp: ip });
    }
    const username = newUsername();
    await expect(bank.users.signUp({ username, fullName: 'X', email: emailOf(username), password: PASSWORD, clientIp: `ipv4:${ip}:5555` })).rejects.toBeInstanceOf(RateLimited);
    await bank.users.signUp({ username, fullName: 'X', email: emailOf(username), password: PASSWORD, clientIp: '10.21.0.1' });
  });

  it('limits sign-ups in all per hour', async () => {
    const limited = await createBank(configFor({ SIGNUP_RATE_LIMIT_GLOBAL: '2', REDIS_KEY_PREFIX: `test:acct-global:${run}:` }), { pool: db.pool, logger });
    try {
      for (let i = 0; i < 2; i += 1) {
        const username = newUsername();
        await limited.users.signUp({ username, fullName: 'X', email: emailOf(username), password: PASSWORD, clientIp: `10.30.0.${i + 1}` });
      }
      const username = newUsername();
      await expect(limited.users.signUp({ username, fullName: 'X', email: emailOf(username), password: PASSWORD, clientIp: '10.30.0.9' })).rejects.toBeInstanceOf(RateLimited);
    } finally {
      await limited.close();
    }
  });

  it('refuses an email that is not one plain address, at sign-up and at email change', async () => {
    for (const email of ['"x"<a@evil.test>', 'a,b@evil.test']) {
      await expect(bank.users.signUp({ username: newUsername(), fullName: 'X', email, password: PASSWORD })).rejects.toMatchObject({
        code: 'INVALID_ARGUMENT',
        fieldViolations: [expect.objectContaining({ field: 'email' })],
      });
    }
    const username = await verifiedUser();
    const actor: Actor = { username, role: 'depositor' };
    await expect(bank.users.updateUser(actor, username, { email: 'a,b@evil.test', currentPassword: PASSWORD })).rejects.toBeInstanceOf(InvalidArgument);
  });

  it('refuses a common password and the username as the password', async () => {
    const username = newUsername();
    await expect(bank.users.signUp({ username, fullName: 'X', email: emailOf(username), password: 'Password1' })).rejects.toMatchObject({
      fieldViolations: [expect.objectContaining({ field: 'password', description: expect.stringContaining('too common') })],
    });
    await expect(bank.users.signUp({ username, fullName: 'X', email: emailOf(username), password: username })).rejects.toBeInstanceOf(InvalidArgument);
  });
});

describe('passwords', () => {
  it('a password over 72 bytes logs in, and its 72-byte prefix does not', async () => {
    const long = `${'ünïcödé horse battery staple '.repeat(3)}!`;
    expect(Buffer.byteLength(long)).toBeGreaterThan(72);
    const username = await verifiedUser(long);
    const prefix = Buffer.from(long).subarray(0, 72).toString();
    expect(await passwordWorks(username, long)).toBe(true);
    expect(await passwordWorks(username, prefix)).toBe(false);
  });

  it('a hash made the old way (bcrypt of the password itself) still logs in', async () => {
    const username = await verifiedUser();
    await db.pool.query(sql.unsafe`UPDATE users SET hashed_password = ${await bcrypt.hash('an old style password', 4)} WHERE username = ${username}`);
    expect(await passwordWorks(username, 'an old style password')).toBe(true);
    expect(await passwordWorks(username, PASSWORD)).toBe(false);
  });

  it('changing the password needs the current one, ends every other session, and tells the user', async () => {
    const username = await verifiedUser();
    const [mine, other, third] = [await activeSession(username), await activeSession(username), await activeSession(username)];
    const actor: Actor = { username, role: 'depositor', sessionId: mine };
    await expect(bank.passwords.changePassword(actor, { username, currentPassword: 'wrong password', newPassword: 'a fresh passphrase' })).rejects.toMatchObject({
      fieldViolations: [expect.objectContaining({ field: 'current_password' })],
    });
    await expect(bank.passwords.changePassword({ username: newUsername(), role: 'depositor' }, { username, currentPassword: PASSWORD, newPassword: 'a fresh passphrase' })).rejects.toMatchObject({
      code: 'PERMISSION_DENIED',
    });
    await bank.passwords.changePassword(actor, { username, currentPassword: PASSWORD, newPassword: 'a fresh passphrase' });
    expect([await sessionStatus(mine), await sessionStatus(other), await sessionStatus(third)]).toEqual(['active', 'revoked', 'revoked']);
    expect(await passwordWorks(username, 'a fresh passphrase')).toBe(true);
    expect(await passwordWorks(username, PASSWORD)).toBe(false);
    await smtp.waitFor(() => subjectsTo(emailOf(username)).includes(ACCOUNT_EMAIL_SUBJECTS.passwordChanged));

    // The same call again (a client retrying after a lost answer) is answered as done and changes nothing.
    const later = await activeSession(username);
    await bank.passwords.changePassword(actor, { username, currentPassword: PASSWORD, newPassword: 'a fresh passphrase' });
    expect(await sessionStatus(later)).toBe('active');
    await expect(bank.passwords.changePassword(actor, { username, currentPassword: 'a fresh passphrase', newPassword: 'a fresh passphrase' })).rejects.toMatchObject({
      fieldViolations: [expect.objectContaining({ field: 'new_password' })],
    });
  });

  it('a reset link works once, ends every session, and answers the same for an address no one has', async () => {
    const username = await verifiedUser();
    const session = await activeSession(username);
    await bank.passwords.requestReset({ email: `nobody_${run}@example.test` });
    await bank.passwords.requestReset({ email: emailOf(username).toUpperCase() });
    await smtp.waitFor(() => subjectsTo(emailOf(username)).includes(ACCOUNT_EMAIL_SUBJECTS.passwordReset));
    const message = smtp.messagesTo(emailOf(username)).find((m) => m.subject === ACCOUNT_EMAIL_SUBJECTS.passwordReset) as CapturedEmail;
    const link = linkIn(message, '/app/reset-password');
    const resetId = link.searchParams.get('reset_id') ?? '';
    const secret = link.searchParams.get('secret') ?? '';
    expect(smtp.messagesTo(`nobody_${run}@example.test`)).toHaveLength(0);

    await expect(bank.passwords.confirmReset({ resetId, secret: `${secret}x`, newPassword: 'reset passphrase one' })).rejects.toMatchObject({ reason: 'not_found' });
    await expect(bank.passwords.confirmReset({ resetId, secret, newPassword: 'password' })).rejects.toBeInstanceOf(InvalidArgument);
    await bank.passwords.confirmReset({ resetId, secret, newPassword: 'reset passphrase one' });
    expect(await sessionStatus(session)).toBe('revoked');
    expect(await passwordWorks(username, 'reset passphrase one')).toBe(true);
    expect(await passwordWorks(username, PASSWORD)).toBe(false);
    // Repeating the same confirmation is answered as done; another password through the used link is not.
    await bank.passwords.confirmReset({ resetId, secret, newPassword: 'reset passphrase one' });
    await expect(bank.passwords.confirmReset({ resetId, secret, newPassword: 'reset passphrase two' })).rejects.toMatchObject({ reason: 'used' });
    expect(await passwordWorks(username, 'reset passphrase two')).toBe(false);
  });

  it('a reset link expires after its TTL', async () => {
    const short = await createBank(configFor({ PASSWORD_RESET_TTL_SECONDS: '1', REDIS_KEY_PREFIX: `test:acct-ttl:${run}:` }), { pool: db.pool, logger });
    try {
      const username = await verifiedUser();
      await short.passwords.requestReset({ email: emailOf(username) });
      await smtp.waitFor(() => subjectsTo(emailOf(username)).includes(ACCOUNT_EMAIL_SUBJECTS.passwordReset));
      const link = linkIn(smtp.messagesTo(emailOf(username)).find((m) => m.subject === ACCOUNT_EMAIL_SUBJECTS.passwordReset) as CapturedEmail, '/app/reset-password');
      await new Promise((resolve) => setTimeout(resolve, 1_200));
      await expect(
        short.passwords.confirmReset({ resetId: link.searchParams.get('reset_id') ?? '', secret: link.searchParams.get('secret') ?? '', newPassword: 'too late passphrase' }),
      ).rejects.toEqual(new PasswordResetLinkInvalid('expired'));
      expect(await passwordWorks(username, PASSWORD)).toBe(true);
    } finally {
      await short.close();
    }
  });

  it('limits reset requests per requested address, whether anyone has it or not', async () => {
    const limited = await createBank(configFor({ PASSWORD_RESET_RATE_LIMIT_PER_EMAIL: '2', REDIS_KEY_PREFIX: `test:acct-reset:${run}:` }), { pool: db.pool, logger });
    try {
      for (const email of [emailOf(await verifiedUser()), `nobody2_${run}@example.test`]) {
        await limited.passwords.requestReset({ email, clientIp: '10.40.0.1' });
        await limited.passwords.requestReset({ email: email.toUpperCase(), clientIp: '10.40.0.2' });
        await expect(limited.passwords.requestReset({ email, clientIp: '10.40.0.3' })).rejects.toBeInstanceOf(RateLimited);
      }
    } finally {
      await limited.close();
    }
  });
});

describe('email change', () => {
  it('keeps the current address until the link sent to the new one is followed, and tells the current one', async () => {
    const username = await verifiedUser();
    const actor: Actor = { username, role: 'depositor' };
    const next = `${username}.new@example.test`;
    const answered = await bank.users.updateUser(actor, username, { email: next, currentPassword: PASSWORD });
    expect(answered).toMatchObject({ email: emailOf(username), isEmailVerified: true });

    await smtp.waitFor(() => subjectsTo(emailOf(username)).includes(ACCOUNT_EMAIL_SUBJECTS.emailChangeNotice) && smtp.messagesTo(next).length > 0);
    const notice = smtp.messagesTo(emailOf(username)).find((m) => m.subject === ACCOUNT_EMAIL_SUBJECTS.emailChangeNotice);
    expect(notice?.text).toContain('s***@example.test');
    expect(notice?.text).not.toContain(next);
    expect(await passwordWorks(username, PASSWORD)).toBe(true);

    const moved = await bank.users.verifyEmail(verificationLinkIn(smtp.messagesTo(next)[0] as CapturedEmail));
    expect(moved).toMatchObject({ username, email: next, isEmailVerified: true });
    // Once moved, the old address is told that it happened, the new address masked.
    await smtp.waitFor(() => subjectsTo(emailOf(username)).includes(ACCOUNT_EMAIL_SUBJECTS.emailChanged));
    const changed = smtp.messagesTo(emailOf(username)).filter((m) => m.subject === ACCOUNT_EMAIL_SUBJECTS.emailChanged);
    expect(changed).toHaveLength(1);
    expect(changed[0]?.text).toContain('s***@example.test');
    expect(changed[0]?.text).not.toContain(next);
    expect(smtp.messagesTo(next).filter((m) => m.subject === ACCOUNT_EMAIL_SUBJECTS.emailChanged)).toEqual([]);
  });

  it('a newer change replaces an older one, and an address someone else holds gets nothing', async () => {
    const username = await verifiedUser();
    const other = await verifiedUser();
    const actor: Actor = { username, role: 'depositor' };
    const first = `${username}.first@example.test`;
    await bank.users.updateUser(actor, username, { email: first, currentPassword: PASSWORD });
    await smtp.waitForMessageTo(first);
    const answered = await bank.users.updateUser(actor, username, { email: emailOf(other).toUpperCase(), currentPassword: PASSWORD });
    expect(answered.email).toBe(emailOf(username));
    await smtp.waitFor(() => subjectsTo(emailOf(username)).filter((s) => s === ACCOUNT_EMAIL_SUBJECTS.emailChangeNotice).length === 2);
    expect(subjectsTo(emailOf(other))).toEqual(['Confirm your email address']);
    await expect(bank.users.verifyEmail(verificationLinkIn(smtp.messagesTo(first)[0] as CapturedEmail))).rejects.toEqual(new VerificationLinkInvalid('superseded'));
  });
});
