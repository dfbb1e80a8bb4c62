import { timingSafeEqual } from 'node:crypto';
import type { CommonQueryMethods, DatabasePool } from 'slonik';
import type { Actor } from '../auth/actor.ts';
import { validatePassword, type PasswordHasher } from '../auth/password.ts';
import type { RateLimiter } from '../auth/rate-limiter.ts';
import type { SessionRevocations } from '../auth/session-liveness.ts';
import { sessionRepository } from '../auth/session.repository.ts';
import { InvalidArgument, PermissionDenied, UserNotFound, VerificationLinkInvalid, type FieldViolation } from '../errors/domain-error.ts';
import { isPlainEmailAddress } from '../mail/email-address.ts';
import { SEND_VERIFICATION_EMAIL, type VerificationEmailPayload } from '../mail/email.schema.ts';
import type { OutboxPublisher } from '../outbox/outbox-publisher.ts';
import { outboxRepository } from '../outbox/outbox.repository.ts';
import { throwIfAborted, type UseCaseOptions } from '../use-case/use-case-options.ts';
import { emailVerificationRepository, sha256, userRepository } from './user.repository.ts';
import type { User } from './user.types.ts';

/** How long an email verification link works. */
export const EMAIL_VERIFICATION_TTL_SECONDS = 24 * 3_600;

const USERNAME_PATTERN = /^[a-z0-9_]{3,32}$/;

function checkUsername(value: unknown, violations: FieldViolation[]): string {
  if (typeof value !== 'string' || !USERNAME_PATTERN.test(value)) {
    violations.push({ field: 'username', description: 'must be 3 to 32 characters of a-z, 0-9 and _' });
    return '';
  }
  return value;
}

function checkFullName(value: unknown, violations: FieldViolation[]): string {
  const trimmed = typeof value === 'string' ? value.trim() : '';
  if (trimmed.length < 1 || trimmed.length > 200) violations.push({ field: 'full_name', description: 'must be 1 to 200 characters' });
  return trimmed;
}

function checkEmail(value: unknown, violations: FieldViolation[]): string {
  const trimmed = typeof value === 'string' ? value.trim() : '';
  if (!isPlainEmailAddress(trimmed)) {
    violations.push({ field: 'email', description: 'must be one plain email address (name@example.com): no display name, list, quotes or spaces' });
  }
  return trimmed;
}

function checkPassword(value: unknown, field: string, violations: FieldViolation[]): string {
  try {
    return validatePassword(value, field);
  } catch (error) {
    if (error instanceof InvalidArgument) violations.push(...error.fieldViolations);
    return '';
  }
}

export type UserServiceDeps = {
  pool: DatabasePool;
  passwords: PasswordHasher;
  outbox: OutboxPublisher;
  /** The login rate limiter: wrong current passwords use up the same per-user budget as wrong logins. */
  rateLimiter?: RateLimiter;
  /** Verification link lifetime; defaults to EMAIL_VERIFICATION_TTL_SECONDS. */
  emailVerificationTtlSeconds?: number;
  /** Told the sessions a password change ended, so no process keeps trusting them from its cache. */
  sessionRevocations?: SessionRevocations;
};

/**
 * Sign-up, email verification and profile use cases.
 *
 * Throws InvalidArgument (field violations), UsernameTaken, EmailTaken, UserNotFound,
 * PermissionDenied, VerificationLinkInvalid, and RateLimited / Unavailable (password change: too
 * many wrong current passwords / Redis down); nothing else on purpose. Every method takes
 * UseCaseOptions last and throws the abort reason of an aborted signal (RequestCancelled unless
 * the edge chose another DomainError) before touching the database or Redis.
 */
export class UserService {
  readonly #deps: UserServiceDeps;

  constructor(deps: UserServiceDeps) {
    this.#deps = deps;
  }

  /** Creates a depositor and queues exactly one verification email (same transaction). */
  async signUp(input: { username: string; fullName: string; email: string; password: string }, options: UseCaseOptions = {}): Promise<User> {
    const violations: FieldViolation[] = [];
    const username = checkUsername(input.username, violations);
    const fullName = checkFullName(input.fullName, violations);
    const email = checkEmail(input.email, violations);
    const password = checkPassword(input.password, 'password', violations);
    if (violations.length > 0) throw new InvalidArgument(violations);

    // Before the bcrypt hash, not only before the queries: it costs more than they do.
    throwIfAborted(options.signal);
    const hashedPassword = await this.#deps.passwords.hash(password);
    const { user, outboxId } = await this.#deps.pool.transaction(async (tx) => {
      const user = await userRepository.insert(tx, { username, fullName, email, hashedPassword });
      const outboxId = await this.#queueVerification(tx, user);
      return { user, outboxId };
    });
    await this.#deps.outbox.enqueueOutbox([outboxId]);
    return user;
  }

  /**
   * Follows a verification link once. Throws VerificationLinkInvalid when the link is unknown,
   * its secret is wrong, it was used, it expired, or the user's email changed since it was sent.
   */
  async verifyEmail(input: { emailId: bigint; secretCode: string }, options: UseCaseOptions = {}): Promise<User> {
    if (typeof input.secretCode !== 'string' || input.secretCode.length === 0) throw InvalidArgument.field('secret_code', 'is required');
    throwIfAborted(options.signal);
    return this.#deps.pool.transaction(async (tx) => {
      const link = await emailVerificationRepository.findForUpdate(tx, input.emailId);
      if (!link || !safeEqualHex(link.secretHash, sha256(input.secretCode))) throw new VerificationLinkInvalid('not_found');
      if (link.usedAt) throw new VerificationLinkInvalid('used');
      if (link.expiresAt.getTime() <= Date.now()) throw new VerificationLinkInvalid('expired');
      const found = await userRepository.findByUsername(tx, link.username, { forUpdate: true });
      if (!found || found.user.email.toLowerCase() !== link.email.toLowerCase()) throw new VerificationLinkInvalid('superseded');
      await emailVerificationRepository.markUsed(tx, link.id);
      return userRepository.markEmailVerified(tx, link.username);
    });
  }

  /**
   * Updates the caller's own profile. A new email needs the current password and is unverified
   * until its new link is followed; a new password needs the current one and revokes every other
   * session of the user. Wrong current passwords count against the login rate limit (RateLimited
   * once it is used up).
   */
  async updateUser(
    actor: Actor,
    username: string,
    changes: { fullName?: string; email?: string; password?: string; currentPassword?: string },
    options: UseCaseOptions = {},
  ): Promise<User> {
    if (actor.username !== username) throw new PermissionDenied('you can only update your own profile');
    const violations: FieldViolation[] = [];
    const fullName = changes.fullName === undefined ? undefined : checkFullName(changes.fullName, violations);
    const email = changes.email === undefined ? undefined : checkEmail(changes.email, violations);
    const password = changes.password === undefined ? undefined : checkPassword(changes.password, 'password', violations);
    if (password !== undefined && !changes.currentPassword) violations.push({ field: 'current_password', description: 'is required to change the password' });
    if (fullName === undefined && email === undefined && password === undefined) violations.push({ field: 'update_mask', description: 'nothing to update' });
    if (violations.length > 0) throw new InvalidArgument(violations);

    throwIfAborted(options.signal);
    const { passwords, pool } = this.#deps;
    // bcrypt work happens before the transaction so no row lock is held during it.
    const current = await userRepository.findByUsername(pool, username);
    if (!current) throw new UserNotFound(username);
    // The email is where login codes go: moving it, like changing the password, needs the
    // current password, so a stolen access token cannot take over the second factor.
    const movesEmail = email !== undefined && email.toLowerCase() !== current.user.email.toLowerCase();
    if (movesEmail && !changes.currentPassword) {
      throw InvalidArgument.field('current_password', 'is required to change the email');
    }
    if (password !== undefined || movesEmail) {
      // Without a limit, a stolen access token would be an unlimited oracle for the password.
      const limitKeys = [`user:${username}`];
      await this.#deps.rateLimiter?.consume(limitKeys);
      if (!(await passwords.verify(changes.currentPassword ?? '', current.hashedPassword))) {
        throw InvalidArgument.field('current_password', 'does not match the current password');
      }
      await this.#deps.rateLimiter?.refund(limitKeys).catch(() => undefined);
    }
    const hashedPassword = password === undefined ? undefined : await passwords.hash(password);

    const { user, outboxIds, revokedSessions } = await pool.transaction(async (tx) => {
      const locked = await userRepository.findByUsername(tx, username, { forUpdate: true });
      if (!locked) throw new UserNotFound(username);
      if (hashedPassword !== undefined && locked.hashedPassword !== current.hashedPassword) {
        // The password changed between our check and the lock: the current password we checked is stale.
        throw InvalidArgument.field('current_password', 'does not match the current password');
      }
      const emailChanged = email !== undefined && email.toLowerCase() !== locked.user.email.toLowerCase();
      // Only the letter case differs: the same mailbox (the unique index agrees), so no new link.
      const emailRespelled = email !== undefined && !emailChanged && email !== locked.user.email;
      const user = await userRepository.update(tx, username, {
        fullName,
        email: emailChanged || emailRespelled ? email : undefined,
        keepEmailVerified: emailRespelled,
        hashedPassword,
      });
      const outboxIds = emailChanged ? [await this.#queueVerification(tx, user)] : [];
      const revokedSessions =
        hashedPassword === undefined ? [] : await sessionRepository.revokeAllForUser(tx, username, { except: actor.sessionId, reason: 'password changed' });
      return { user, outboxIds, revokedSessions };
    });
    await this.#deps.sessionRevocations?.revoked(revokedSessions);
    await this.#deps.outbox.enqueueOutbox(outboxIds);
    return user;
  }

  /** A user's profile: the user themself, or any user for a banker. Throws PermissionDenied / UserNotFound. */
  async getUser(actor: Actor, username: string, options: UseCaseOptions = {}): Promise<User> {
    if (actor.username !== username && actor.role !== 'banker') throw new PermissionDenied('you can only read your own profile');
    throwIfAborted(options.signal);
    const found = await userRepository.findByUsername(this.#deps.pool, username);
    if (!found) throw new UserNotFound(username);
    return found.user;
  }

  async #queueVerification(tx: CommonQueryMethods, user: User): Promise<string> {
    const link = await emailVerificationRepository.create(tx, {
      username: user.username,
      email: user.email,
      ttlSeconds: this.#deps.emailVerificationTtlSeconds ?? EMAIL_VERIFICATION_TTL_SECONDS,
    });
    const payload: VerificationEmailPayload = {
      to: user.email,
      username: user.username,
      fullName: user.fullName,
      emailId: link.id.toString(),
      secretCode: link.secretCode,
      expiresAt: link.expiresAt.toISOString(),
    };
    return outboxRepository.insert(tx, { kind: SEND_VERIFICATION_EMAIL, payload });
  }
}

function safeEqualHex(a: string, b: string): boolean {
  const left = Buffer.from(a, 'hex');
  const right = Buffer.from(b, 'hex');
  return left.length === right.length && timingSafeEqual(left, right);
}
