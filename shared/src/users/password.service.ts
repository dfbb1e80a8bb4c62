import type { DatabasePool } from 'slonik';
import type { Actor } from '../auth/actor.ts';
import { validatePassword, type PasswordHasher } from '../auth/password.ts';
import { clientAddressKey, type RateLimiter } from '../auth/rate-limiter.ts';
import type { SessionRevocations } from '../auth/session-liveness.ts';
import { sessionRepository } from '../auth/session.repository.ts';
import { InvalidArgument, PermissionDenied, UserNotFound, type FieldViolation } from '../errors/domain-error.ts';
import { SEND_PASSWORD_RESET_EMAIL, type PasswordResetEmailPayload } from '../mail/email.schema.ts';
import type { OutboxPublisher } from '../outbox/outbox-publisher.ts';
import { outboxRepository } from '../outbox/outbox.repository.ts';
import { throwIfAborted, type UseCaseOptions } from '../use-case/use-case-options.ts';
import { passwordResetRepository } from './password-reset.repository.ts';
import { PasswordResetLinkInvalid } from './password.errors.ts';
import { sha256, userRepository } from './user.repository.ts';
import { checkEmail, queuePasswordChanged, safeEqualHex } from './user.service.ts';

/** How long an emailed password-reset link works unless configured (PASSWORD_RESET_TTL_SECONDS). */
export const PASSWORD_RESET_TTL_SECONDS = 30 * 60;

/**
 * How long after a change a repeat of the same call (a client retrying after a lost answer) is
 * answered as done rather than refused: its current password no longer matches, but its new one
 * does. Only that long, so the repeat cannot serve as a way to test guesses of a password set
 * long ago.
 */
export const PASSWORD_CHANGE_REPLAY_SECONDS = 10 * 60;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export type PasswordServiceDeps = {
  pool: DatabasePool;
  passwords: PasswordHasher;
  outbox: OutboxPublisher;
  /** The login rate limiter: wrong current passwords use up the same per-user budget as wrong logins. */
  rateLimiter?: RateLimiter;
  /** Reset requests per requested email address and per client address (PASSWORD_RESET_RATE_LIMIT_*); none without. */
  resetLimiters?: { perEmail: RateLimiter; perAddress: RateLimiter };
  /** Reset link lifetime; defaults to PASSWORD_RESET_TTL_SECONDS. */
  resetTtlSeconds?: number;
  /** Told the sessions a change ended, so no process keeps trusting them from its cache. */
  sessionRevocations?: SessionRevocations;
};

/**
 * Passwords a person can manage: change (knowing the current one), and reset through an emailed
 * single-use link. Both store the new password (validatePassword's rules), end sessions and email
 * the user that it happened, in the transaction of the change.
 *
 * Throws InvalidArgument (field violations), PermissionDenied, UserNotFound,
 * PasswordResetLinkInvalid, RateLimited and Unavailable (Redis cannot count); nothing else on
 * purpose. Every method takes UseCaseOptions last and throws the abort reason of an aborted
 * signal before touching the database or Redis.
 */
export class PasswordService {
  readonly #deps: PasswordServiceDeps;

  constructor(deps: PasswordServiceDeps) {
    this.#deps = deps;
  }

  /**
   * Changes the caller's password given the current one, and ends every other session of theirs.
   * A repeat of a change that already happened (within PASSWORD_CHANGE_REPLAY_SECONDS, its new
   * password now the current one) answers as done, changing nothing. Wrong current passwords
   * count against the login limit per user (RateLimited once used up).
   */
  async changePassword(actor: Actor, input: { username: string; currentPassword: string; newPassword: string }, options: UseCaseOptions = {}): Promise<void> {
    if (actor.username !== input.username) throw new PermissionDenied('you can only change your own password');
    const violations: FieldViolation[] = [];
    if (typeof input.currentPassword !== 'string' || input.currentPassword.length === 0) violations.push({ field: 'current_password', description: 'is required' });
    const newPassword = check(input.newPassword, violations, [input.username]);
    if (violations.length > 0) throw new InvalidArgument(violations);
    throwIfAborted(options.signal);

    const { pool, passwords } = this.#deps;
    const current = await userRepository.findByUsername(pool, input.username);
    if (!current) throw new UserNotFound(input.username);
    check(newPassword, violations, [current.user.email]);
    if (violations.length > 0) throw new InvalidArgument(violations);
    const limitKeys = [`user:${input.username}`];
    await this.#deps.rateLimiter?.consume(limitKeys);
    if (!(await passwords.verify(input.currentPassword, current.hashedPassword))) {
      const changedRecently = Date.now() - current.user.passwordChangedAt.getTime() < PASSWORD_CHANGE_REPLAY_SECONDS * 1000;
      if (changedRecently && (await passwords.verify(newPassword, current.hashedPassword))) {
        await this.#deps.rateLimiter?.refund(limitKeys).catch(() => undefined);
        return;
      }
      throw InvalidArgument.field('current_password', 'does not match the current password');
    }
    await this.#deps.rateLimiter?.refund(limitKeys).catch(() => undefined);
    if (input.currentPassword === newPassword) throw InvalidArgument.field('new_password', 'must differ from the current password');

    const hashedPassword = await passwords.hash(newPassword);
    const { outboxId, revokedSessions } = await pool.transaction(async (tx) => {
      const locked = await userRepository.findByUsername(tx, input.username, { forUpdate: true });
      if (!locked) throw new UserNotFound(input.username);
      // Changed between our check and the lock: the current password we checked is stale.
      if (locked.hashedPassword !== current.hashedPassword) throw InvalidArgument.field('current_password', 'does not match the current password');
      const user = await userRepository.setPassword(tx, input.username, hashedPassword);
      const revokedSessions = await sessionRepository.revokeAllForUser(tx, input.username, { except: actor.sessionId, reason: 'password changed' });
      return { outboxId: await queuePasswordChanged(tx, user, 'changed'), revokedSessions };
    });
    await this.#deps.sessionRevocations?.revoked(revokedSessions);
    await this.#deps.outbox.enqueueOutbox([outboxId]);
  }

  /**
   * Emails a single-use reset link (PASSWORD_RESET_TTL_SECONDS) to the user of this address when
   * there is one whose address is verified; answers the same, and as fast, when there is none.
   * Requests count per requested address and per client address (RateLimited past either, the
   * same whether the address is registered or not).
   */
  async requestReset(input: { email: string; clientIp?: string | undefined }, options: UseCaseOptions = {}): Promise<void> {
    const violations: FieldViolation[] = [];
    const email = checkEmail(input.email, violations);
    if (violations.length > 0) throw new InvalidArgument(violations);
    throwIfAborted(options.signal);
    const limiters = this.#deps.resetLimiters;
    if (limiters) {
      const addressKeys = input.clientIp ? [`reset:address:${clientAddressKey(input.clientIp)}`] : [];
      await limiters.perAddress.consume(addressKeys);
      await limiters.perEmail.consume([`reset:email:${email.toLowerCase()}`]).catch(async (error: unknown) => {
        await limiters.perAddress.refund(addressKeys).catch(() => undefined);
        throw error;
      });
    }
    const outboxId = await this.#deps.pool.transaction(async (tx) => {
      const found = await userRepository.findByEmail(tx, email);
      if (!found || !found.user.isEmailVerified) return undefined;
      const reset = await passwordResetRepository.create(tx, { username: found.user.username, ttlSeconds: this.#deps.resetTtlSeconds ?? PASSWORD_RESET_TTL_SECONDS });
      const payload: PasswordResetEmailPayload = {
        to: found.user.email,
        username: found.user.username,
        fullName: found.user.fullName,
        resetId: reset.id,
        resetSecret: reset.secret,
        expiresAt: reset.expiresAt.toISOString(),
      };
      return outboxRepository.insert(tx, { kind: SEND_PASSWORD_RESET_EMAIL, payload });
    });
    if (outboxId) await this.#deps.outbox.enqueueOutbox([outboxId]);
  }

  /**
   * Sets a new password with an emailed reset link (once), uses up every open link of the user,
   * and ends every session of theirs. A repeat of a confirmation that already happened (the link
   * used, not yet expired, its new password now the current one) answers as done.
   * @throws PasswordResetLinkInvalid (unknown id or wrong secret; used; expired), InvalidArgument
   */
  async confirmReset(input: { resetId: string; secret: string; newPassword: string }, options: UseCaseOptions = {}): Promise<void> {
    const violations: FieldViolation[] = [];
    if (typeof input.resetId !== 'string' || !UUID.test(input.resetId)) violations.push({ field: 'reset_id', description: 'must be a reset id (UUID)' });
    if (typeof input.secret !== 'string' || input.secret.length === 0) violations.push({ field: 'secret', description: 'is required' });
    const newPassword = check(input.newPassword, violations);
    if (violations.length > 0) throw new InvalidArgument(violations);
    throwIfAborted(options.signal);

    const { pool, passwords } = this.#deps;
    const resetId = input.resetId.toLowerCase();
    const reset = await passwordResetRepository.findById(pool, resetId);
    if (!reset || !safeEqualHex(reset.secretHash, sha256(input.secret))) throw new PasswordResetLinkInvalid('not_found');
    const expired = reset.expiresAt.getTime() <= Date.now();
    const current = await userRepository.findByUsername(pool, reset.username);
    if (!current) throw new PasswordResetLinkInvalid('not_found');
    if (reset.usedAt) {
      if (!expired && (await passwords.verify(newPassword, current.hashedPassword))) return;
      throw new PasswordResetLinkInvalid('used');
    }
    if (expired) throw new PasswordResetLinkInvalid('expired');
    check(newPassword, violations, [current.user.username, current.user.email]);
    if (violations.length > 0) throw new InvalidArgument(violations);

    const hashedPassword = await passwords.hash(newPassword);
    const { outboxId, revokedSessions } = await pool.transaction(async (tx) => {
      const locked = await passwordResetRepository.findById(tx, resetId, { forUpdate: true });
      if (!locked || locked.usedAt) throw new PasswordResetLinkInvalid('used');
      const user = await userRepository.setPassword(tx, locked.username, hashedPassword);
      await passwordResetRepository.useAllOpen(tx, locked.username);
      const revokedSessions = await sessionRepository.revokeAllForUser(tx, locked.username, { reason: 'password reset' });
      return { outboxId: await queuePasswordChanged(tx, user, 'reset'), revokedSessions };
    });
    await this.#deps.sessionRevocations?.revoked(revokedSessions);
    await this.#deps.outbox.enqueueOutbox([outboxId]);
  }
}

/** validatePassword on `new_password`, collecting its violation instead of throwing. */
function check(value: unknown, violations: FieldViolation[], context: readonly string[] = []): string {
  try {
    return validatePassword(value, 'new_password', context);
  } catch (error) {
    if (error instanceof InvalidArgument) violations.push(...error.fieldViolations);
    return '';
  }
}
