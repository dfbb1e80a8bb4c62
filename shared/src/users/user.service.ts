import { timingSafeEqual } from 'node:crypto';
import type { CommonQueryMethods, DatabasePool } from 'slonik';
import type { Actor } from '../auth/actor.ts';
import { validatePassword, type PasswordHasher } from '../auth/password.ts';
import { clientAddressKey, type RateLimiter } from '../auth/rate-limiter.ts';
import type { SessionRevocations } from '../auth/session-liveness.ts';
import { sessionRepository } from '../auth/session.repository.ts';
import {
  EmailTaken,
  InvalidArgument,
  isDomainError,
  PermissionDenied,
  UsernameTaken,
  UserNotFound,
  VerificationLinkInvalid,
  type FieldViolation,
} from '../errors/domain-error.ts';
import { maskEmail } from '../mail/account-email.templates.ts';
import { isPlainEmailAddress } from '../mail/email-address.ts';
import {
  SEND_EMAIL_CHANGE_NOTICE_EMAIL,
  SEND_EMAIL_CHANGED_EMAIL,
  SEND_PASSWORD_CHANGED_EMAIL,
  SEND_SIGN_UP_ATTEMPT_EMAIL,
  SEND_VERIFICATION_EMAIL,
  type EmailChangedPayload,
  type EmailChangeNoticePayload,
  type PasswordChangedEmailPayload,
  type SignUpAttemptEmailPayload,
  type VerificationEmailPayload,
} from '../mail/email.schema.ts';
import type { OutboxPublisher } from '../outbox/outbox-publisher.ts';
import { outboxRepository } from '../outbox/outbox.repository.ts';
import { throwIfAborted, type UseCaseOptions } from '../use-case/use-case-options.ts';
import { emailVerificationRepository, sha256, userRepository } from './user.repository.ts';
import type { NotificationSettings, User } from './user.types.ts';

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

export function checkEmail(value: unknown, violations: FieldViolation[]): string {
  const trimmed = typeof value === 'string' ? value.trim() : '';
  if (!isPlainEmailAddress(trimmed)) {
    violations.push({ field: 'email', description: 'must be one plain email address (name@example.com): no display name, list, quotes or spaces' });
  }
  return trimmed;
}

function checkPassword(value: unknown, field: string, violations: FieldViolation[], context: readonly string[] = []): string {
  try {
    return validatePassword(value, field, context);
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
  /**
   * Sign-ups per client address and in all per window (SIGNUP_RATE_LIMIT_PER_ADDRESS /
   * SIGNUP_RATE_LIMIT_GLOBAL, per hour); without them sign-up is not limited.
   */
  signUpLimiters?: { perAddress: RateLimiter; global: RateLimiter };
};

/** The keys a sign-up counts on: its client address (when the edge knows it) and everyone's. */
const signUpKeys = (clientIp: string | undefined) => ({
  address: clientIp ? [`signup:address:${clientAddressKey(clientIp)}`] : [],
  global: ['signup:global'],
});

/**
 * Sign-up, email verification and profile use cases.
 *
 * Throws InvalidArgument (field violations), UsernameTaken, UserNotFound, PermissionDenied,
 * VerificationLinkInvalid, and RateLimited / Unavailable (sign-ups over their limits, password
 * change: too many wrong current passwords / Redis down); nothing else on purpose. A registered
 * email is never told apart from a new one: no EmailTaken leaves this service. Every method takes
 * UseCaseOptions last and throws the abort reason of an aborted signal (RequestCancelled unless
 * the edge chose another DomainError) before touching the database or Redis.
 */
export class UserService {
  readonly #deps: UserServiceDeps;

  constructor(deps: UserServiceDeps) {
    this.#deps = deps;
  }

  /**
   * Creates a depositor and queues exactly one verification email (same transaction).
   *
   * An email already registered (in any letter case) answers exactly as a new one: the same User
   * shape, built from the request, after the same bcrypt work; no account is made and the
   * address's owner is emailed that someone tried (same transaction). A taken username is
   * refused (UsernameTaken): usernames are public handles, shown to whoever a user pays.
   * Sign-ups count per client address and in all (RateLimited past either; Unavailable when
   * Redis cannot count); one that fails on the database or Redis is given back.
   */
  async signUp(
    input: { username: string; fullName: string; email: string; password: string; clientIp?: string | undefined },
    options: UseCaseOptions = {},
  ): Promise<User> {
    const violations: FieldViolation[] = [];
    const username = checkUsername(input.username, violations);
    const fullName = checkFullName(input.fullName, violations);
    const email = checkEmail(input.email, violations);
    const password = checkPassword(input.password, 'password', violations, [username, email]);
    if (violations.length > 0) throw new InvalidArgument(violations);

    // Before the bcrypt hash, not only before the queries: it costs more than they do.
    throwIfAborted(options.signal);
    const keys = signUpKeys(input.clientIp);
    await this.#limitSignUp(keys);
    const { user, outboxIds } = await this.#givingBackOnOutage(keys, async () => {
      const hashedPassword = await this.#deps.passwords.hash(password);
      return this.#deps.pool.transaction(async (tx) => {
        try {
          // A savepoint: a unique violation must not abort the transaction the notice is written in.
          const user = await tx.transaction((savepoint) => userRepository.insert(savepoint, { username, fullName, email, hashedPassword }));
          return { user, outboxIds: [await this.#queueVerification(tx, user)] };
        } catch (error) {
          if (!(error instanceof EmailTaken)) throw error;
          if (await userRepository.findByUsername(tx, username)) throw new UsernameTaken();
          const owner = await userRepository.findByEmail(tx, email);
          if (!owner) throw error;
          const payload: SignUpAttemptEmailPayload = {
            to: owner.user.email,
            username: owner.user.username,
            fullName: owner.user.fullName,
            attemptedAt: new Date().toISOString(),
          };
          const outboxId = await outboxRepository.insert(tx, { kind: SEND_SIGN_UP_ATTEMPT_EMAIL, payload });
          return { user: lookalikeUser({ username, fullName, email }), outboxIds: [outboxId] };
        }
      });
    });
    await this.#deps.outbox.enqueueOutbox(outboxIds);
    return user;
  }

  /** Takes one sign-up from the address's budget and one from everyone's, or neither. */
  async #limitSignUp(keys: { address: string[]; global: string[] }): Promise<void> {
    const limiters = this.#deps.signUpLimiters;
    if (!limiters) return;
    await limiters.perAddress.consume(keys.address);
    try {
      await limiters.global.consume(keys.global);
    } catch (error) {
      await limiters.perAddress.refund(keys.address).catch(() => undefined);
      throw error;
    }
  }

  /** Runs `work`; when it fails for another reason than a refusal (the database, Redis), gives the sign-up back. */
  async #givingBackOnOutage<T>(keys: { address: string[]; global: string[] }, work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      const limiters = this.#deps.signUpLimiters;
      if (limiters && !isDomainError(error)) {
        await Promise.all([limiters.perAddress.refund(keys.address), limiters.global.refund(keys.global)]).catch(() => undefined);
      }
      throw error;
    }
  }

  /**
   * Follows a verification link once. A link sent at sign-up verifies the user's address; a link
   * sent to a new address (an email change) moves the user there, verified, and emails the old
   * address that it did (same transaction; a security notice, always sent). Throws
   * VerificationLinkInvalid when the link is unknown, its secret is wrong, it was used, it
   * expired, the user's email changed since it was sent, or (a change) a newer change replaced it
   * or its address was registered by someone else meanwhile.
   */
  async verifyEmail(input: { emailId: bigint; secretCode: string }, options: UseCaseOptions = {}): Promise<User> {
    if (typeof input.secretCode !== 'string' || input.secretCode.length === 0) throw InvalidArgument.field('secret_code', 'is required');
    throwIfAborted(options.signal);
    const outboxIds: string[] = [];
    const user = await this.#deps.pool.transaction(async (tx) => {
      const link = await emailVerificationRepository.findForUpdate(tx, input.emailId);
      if (!link || !safeEqualHex(link.secretHash, sha256(input.secretCode))) throw new VerificationLinkInvalid('not_found');
      if (link.usedAt) throw new VerificationLinkInvalid('used');
      if (link.expiresAt.getTime() <= Date.now()) throw new VerificationLinkInvalid('expired');
      const found = await userRepository.findByUsername(tx, link.username, { forUpdate: true });
      if (!found) throw new VerificationLinkInvalid('superseded');
      if (link.purpose === 'change') {
        if ((await emailVerificationRepository.newestChangeId(tx, link.username)) !== link.id) throw new VerificationLinkInvalid('superseded');
        await emailVerificationRepository.markUsed(tx, link.id);
        let moved: User;
        try {
          moved = await tx.transaction((savepoint) => userRepository.moveEmail(savepoint, link.username, link.email));
        } catch (error) {
          if (error instanceof EmailTaken) throw new VerificationLinkInvalid('superseded');
          throw error;
        }
        // The old address is told too (a security notice, no setting): it may be the owner's only
        // way to learn that someone with the password moved the account away.
        const notice: EmailChangedPayload = {
          to: found.user.email,
          username: moved.username,
          fullName: moved.fullName,
          newEmailMasked: maskEmail(moved.email),
          changedAt: new Date().toISOString(),
        };
        outboxIds.push(await outboxRepository.insert(tx, { kind: SEND_EMAIL_CHANGED_EMAIL, payload: notice }));
        return moved;
      }
      if (found.user.email.toLowerCase() !== link.email.toLowerCase()) throw new VerificationLinkInvalid('superseded');
      await emailVerificationRepository.markUsed(tx, link.id);
      return userRepository.markEmailVerified(tx, link.username);
    });
    await this.#deps.outbox.enqueueOutbox(outboxIds);
    return user;
  }

  /**
   * Updates the caller's own profile. A new email needs the current password; the user stays at
   * the current address until the link sent to the new one is followed (verifyEmail moves them),
   * and the current address is told of the request. A new address registered by someone else
   * answers the same and sends it nothing. A new password needs the current one, revokes every
   * other session of the user and tells the user by email. Wrong current passwords count against
   * the login rate limit (RateLimited once it is used up). Notification settings: each one given
   * is stored, one left out keeps its value; a banker may change them (only them) for any user.
   * @throws PermissionDenied, InvalidArgument, UserNotFound, RateLimited, Unavailable
   */
  async updateUser(
    actor: Actor,
    username: string,
    changes: { fullName?: string; email?: string; password?: string; currentPassword?: string; notificationSettings?: Partial<NotificationSettings> },
    options: UseCaseOptions = {},
  ): Promise<User> {
    const notificationSettings = definedSettings(changes.notificationSettings);
    const profileChange = changes.fullName !== undefined || changes.email !== undefined || changes.password !== undefined;
    if (actor.username !== username) {
      // A banker may switch a customer's notifications (asked to by phone, say), never their
      // name, address or password.
      if (actor.role !== 'banker') throw new PermissionDenied('you can only update your own profile');
      if (profileChange) throw new PermissionDenied("a banker may change only another user's notification_settings");
    }
    const violations: FieldViolation[] = [];
    const fullName = changes.fullName === undefined ? undefined : checkFullName(changes.fullName, violations);
    const email = changes.email === undefined ? undefined : checkEmail(changes.email, violations);
    const password = changes.password === undefined ? undefined : checkPassword(changes.password, 'password', violations, [username, email ?? '']);
    if (password !== undefined && !changes.currentPassword) violations.push({ field: 'current_password', description: 'is required to change the password' });
    if (fullName === undefined && email === undefined && password === undefined && notificationSettings === undefined) {
      violations.push({ field: 'update_mask', description: 'nothing to update' });
    }
    if (violations.length > 0) throw new InvalidArgument(violations);

    throwIfAborted(options.signal);
    const { passwords, pool } = this.#deps;
    // bcrypt work happens before the transaction so no row lock is held during it.
    const current = await userRepository.findByUsername(pool, username);
    if (!current) throw new UserNotFound(username);
    if (password !== undefined) checkPassword(password, 'password', violations, [current.user.email]);
    if (violations.length > 0) throw new InvalidArgument(violations);
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
        email: emailRespelled ? email : undefined,
        keepEmailVerified: true,
        hashedPassword,
        ...(notificationSettings ? { notificationSettings } : {}),
      });
      const outboxIds: string[] = [];
      if (emailChanged) outboxIds.push(...(await this.#queueEmailChange(tx, user, email)));
      if (hashedPassword !== undefined) outboxIds.push(await queuePasswordChanged(tx, user, 'changed'));
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

  /**
   * An email change: a link to the new address, which replaces any earlier change's, and the
   * notice to the current one. When someone else registered the new address its link is made but
   * not sent (the answer does not say so): that address gets nothing, and the earlier change is
   * replaced all the same.
   */
  async #queueEmailChange(tx: CommonQueryMethods, user: User, newEmail: string): Promise<string[]> {
    const outboxIds: string[] = [];
    const holder = await userRepository.findByEmail(tx, newEmail);
    const verification = await this.#queueVerification(tx, user, { to: newEmail, purpose: 'change', send: !holder || holder.user.username === user.username });
    if (verification) outboxIds.push(verification);
    const notice: EmailChangeNoticePayload = {
      to: user.email,
      username: user.username,
      fullName: user.fullName,
      newEmailMasked: maskEmail(newEmail),
      requestedAt: new Date().toISOString(),
    };
    outboxIds.push(await outboxRepository.insert(tx, { kind: SEND_EMAIL_CHANGE_NOTICE_EMAIL, payload: notice }));
    return outboxIds;
  }

  async #queueVerification(tx: CommonQueryMethods, user: User): Promise<string>;
  async #queueVerification(tx: CommonQueryMethods, user: User, change: { to: string; purpose: 'change'; send: boolean }): Promise<string | undefined>;
  async #queueVerification(tx: CommonQueryMethods, user: User, change?: { to: string; purpose: 'change'; send: boolean }): Promise<string | undefined> {
    const to = change?.to ?? user.email;
    const link = await emailVerificationRepository.create(tx, {
      username: user.username,
      email: to,
      ttlSeconds: this.#deps.emailVerificationTtlSeconds ?? EMAIL_VERIFICATION_TTL_SECONDS,
      purpose: change?.purpose ?? 'verify',
    });
    if (change && !change.send) return undefined;
    const payload: VerificationEmailPayload = {
      to,
      username: user.username,
      fullName: user.fullName,
      emailId: link.id.toString(),
      secretCode: link.secretCode,
      expiresAt: link.expiresAt.toISOString(),
    };
    return outboxRepository.insert(tx, { kind: SEND_VERIFICATION_EMAIL, payload });
  }
}

/** What sign-up answers for an email already registered: the User a new sign-up would have made. */
function lookalikeUser(input: { username: string; fullName: string; email: string }): User {
  const now = new Date();
  return { ...input, role: 'depositor', isEmailVerified: false, passwordChangedAt: now, createdAt: now, notificationSettings: DEFAULT_NOTIFICATION_SETTINGS };
}

/** A new user's settings (the columns' defaults in migration 0014). */
export const DEFAULT_NOTIFICATION_SETTINGS: NotificationSettings = { moneyReceived: true, withdrawals: true, holds: true };

/** The settings an update names (undefined when it names none): a setting left out keeps its value. */
function definedSettings(settings: Partial<NotificationSettings> | undefined): Partial<NotificationSettings> | undefined {
  if (!settings) return undefined;
  const defined = Object.fromEntries(Object.entries(settings).filter(([, value]) => value !== undefined)) as Partial<NotificationSettings>;
  return Object.keys(defined).length > 0 ? defined : undefined;
}

/** The "your password was changed" email, in the transaction that changed it. */
export async function queuePasswordChanged(tx: CommonQueryMethods, user: User, how: 'changed' | 'reset'): Promise<string> {
  const payload: PasswordChangedEmailPayload = { to: user.email, username: user.username, fullName: user.fullName, how, changedAt: new Date().toISOString() };
  return outboxRepository.insert(tx, { kind: SEND_PASSWORD_CHANGED_EMAIL, payload });
}

export function safeEqualHex(a: string, b: string): boolean {
  const left = Buffer.from(a, 'hex');
  const right = Buffer.from(b, 'hex');
  return left.length === right.length && timingSafeEqual(left, right);
}
