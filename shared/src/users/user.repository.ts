import { createHash, randomBytes } from 'node:crypto';
import { sql, UniqueIntegrityConstraintViolationError, type CommonQueryMethods } from 'slonik';
import { z } from 'zod';
import { ROLES, type Role } from '../auth/actor.ts';
import { EmailTaken, UsernameTaken } from '../errors/domain-error.ts';
import type { EmailVerification, NotificationSettings, User, UserRecord } from './user.types.ts';
import { bigintIdRow } from '../db/rows.ts';

const verificationRow = z.object({ id: z.bigint(), expires_at: z.date() });

const userRow = z.object({
  username: z.string(),
  full_name: z.string(),
  email: z.string(),
  hashed_password: z.string(),
  role: z.enum(ROLES),
  is_email_verified: z.boolean(),
  password_changed_at: z.date(),
  created_at: z.date(),
  notify_money_received: z.boolean(),
  notify_withdrawals: z.boolean(),
  notify_holds: z.boolean(),
});
type UserRow = z.infer<typeof userRow>;

const toUser = (row: UserRow): User => ({
  username: row.username,
  fullName: row.full_name,
  email: row.email,
  role: row.role,
  isEmailVerified: row.is_email_verified,
  passwordChangedAt: row.password_changed_at,
  createdAt: row.created_at,
  notificationSettings: { moneyReceived: row.notify_money_received, withdrawals: row.notify_withdrawals, holds: row.notify_holds },
});

const userColumns = sql.fragment`username, full_name, email, hashed_password, role, is_email_verified, password_changed_at, created_at,
  notify_money_received, notify_withdrawals, notify_holds`;

/** Turns unique violations into the domain errors the API documents (by constraint name). */
function mapUniqueViolation(error: unknown): never {
  if (error instanceof UniqueIntegrityConstraintViolationError) {
    if (error.constraint === 'users_pkey') throw new UsernameTaken();
    if (error.constraint === 'users_email_key') throw new EmailTaken();
  }
  throw error;
}

export const sha256 = (value: string) => createHash('sha256').update(value).digest('hex');

/**
 * Users, by username. Every method takes the connection first (the pool, or a use case's
 * transaction) and returns domain types; only findByUsername hands out the password hash, beside
 * the user rather than inside it, so it cannot ride along into an answer. Throws UsernameTaken /
 * EmailTaken for unique violations (insert, update), otherwise only Slonik/PostgreSQL errors.
 */
export const userRepository = {
  /** @throws UsernameTaken, EmailTaken */
  async insert(db: CommonQueryMethods, user: { username: string; fullName: string; email: string; hashedPassword: string }): Promise<User> {
    try {
      const row = await db.one(sql.type(userRow)`
        INSERT INTO users (username, full_name, email, hashed_password)
        VALUES (${user.username}, ${user.fullName}, ${user.email}, ${user.hashedPassword})
        RETURNING ${userColumns}`);
      return toUser(row);
    } catch (error) {
      return mapUniqueViolation(error);
    }
  },

  /** The user and their password hash, or null; `forUpdate` locks the row in the caller's transaction. */
  async findByUsername(db: CommonQueryMethods, username: string, options: { forUpdate?: boolean } = {}): Promise<UserRecord | null> {
    const row = await db.maybeOne(sql.type(userRow)`
      SELECT ${userColumns} FROM users WHERE username = ${username} ${options.forUpdate ? sql.fragment`FOR UPDATE` : sql.fragment``}`);
    return row ? { user: toUser(row), hashedPassword: row.hashed_password } : null;
  },

  /** The user whose email is `email` in any letter case (the unique index's rule), and their hash, or null. */
  async findByEmail(db: CommonQueryMethods, email: string): Promise<UserRecord | null> {
    const row = await db.maybeOne(sql.type(userRow)`SELECT ${userColumns} FROM users WHERE lower(email) = lower(${email})`);
    return row ? { user: toUser(row), hashedPassword: row.hashed_password } : null;
  },

  /** Stores a new password hash and restarts password_changed_at; the caller locked the row. */
  async setPassword(db: CommonQueryMethods, username: string, hashedPassword: string): Promise<User> {
    const row = await db.one(sql.type(userRow)`
      UPDATE users SET hashed_password = ${hashedPassword}, password_changed_at = now(), updated_at = now()
      WHERE username = ${username} RETURNING ${userColumns}`);
    return toUser(row);
  },

  /**
   * Replaces a password hash with a stronger one of the same password (a rehash at login) only
   * while the stored hash is still `oldHash`, so a password changed meanwhile is never overwritten;
   * password_changed_at stays (the password did not change). True when it replaced it.
   */
  async rehashPassword(db: CommonQueryMethods, username: string, oldHash: string, newHash: string): Promise<boolean> {
    const result = await db.query(sql.unsafe`
      UPDATE users SET hashed_password = ${newHash}, updated_at = now()
      WHERE username = ${username} AND hashed_password = ${oldHash}`);
    return result.rowCount === 1;
  },

  /** Moves the user to a verified address (an email change whose link was followed). @throws EmailTaken */
  async moveEmail(db: CommonQueryMethods, username: string, email: string): Promise<User> {
    try {
      const row = await db.one(sql.type(userRow)`
        UPDATE users SET email = ${email}, is_email_verified = true, updated_at = now() WHERE username = ${username} RETURNING ${userColumns}`);
      return toUser(row);
    } catch (error) {
      return mapUniqueViolation(error);
    }
  },

  /** @throws EmailTaken */
  async update(
    db: CommonQueryMethods,
    username: string,
    changes: { fullName?: string; email?: string; hashedPassword?: string; keepEmailVerified?: boolean; notificationSettings?: Partial<NotificationSettings> },
  ): Promise<User> {
    const sets = [sql.fragment`updated_at = now()`];
    const notify = changes.notificationSettings ?? {};
    if (notify.moneyReceived !== undefined) sets.push(sql.fragment`notify_money_received = ${notify.moneyReceived}`);
    if (notify.withdrawals !== undefined) sets.push(sql.fragment`notify_withdrawals = ${notify.withdrawals}`);
    if (notify.holds !== undefined) sets.push(sql.fragment`notify_holds = ${notify.holds}`);
    if (changes.fullName !== undefined) sets.push(sql.fragment`full_name = ${changes.fullName}`);
    if (changes.email !== undefined) sets.push(sql.fragment`email = ${changes.email}`);
    if (changes.email !== undefined && !changes.keepEmailVerified) sets.push(sql.fragment`is_email_verified = false`);
    if (changes.hashedPassword !== undefined) {
      sets.push(sql.fragment`hashed_password = ${changes.hashedPassword}`, sql.fragment`password_changed_at = now()`);
    }
    try {
      const row = await db.one(sql.type(userRow)`
        UPDATE users SET ${sql.join(sets, sql.fragment`, `)} WHERE username = ${username} RETURNING ${userColumns}`);
      return toUser(row);
    } catch (error) {
      return mapUniqueViolation(error);
    }
  },

  /** Sets the user's role; the caller locked the row (findByUsername forUpdate) in its transaction. */
  async setRole(db: CommonQueryMethods, username: string, role: Role): Promise<User> {
    const row = await db.one(sql.type(userRow)`
      UPDATE users SET role = ${role}, updated_at = now() WHERE username = ${username} RETURNING ${userColumns}`);
    return toUser(row);
  },

  async markEmailVerified(db: CommonQueryMethods, username: string): Promise<User> {
    const row = await db.one(sql.type(userRow)`
      UPDATE users SET is_email_verified = true, updated_at = now() WHERE username = ${username} RETURNING ${userColumns}`);
    return toUser(row);
  },
};

const emailVerificationRow = z.object({
  id: z.bigint(),
  username: z.string(),
  email: z.string(),
  purpose: z.enum(['verify', 'change']),
  secret_hash: z.string(),
  expires_at: z.date(),
  used_at: z.date().nullable(),
});

/**
 * Email verification links (only the secret's sha256 is stored), connection first like every
 * repository. Throws only Slonik/PostgreSQL errors.
 */
export const emailVerificationRepository = {
  /** Creates a verification; returns its id and the secret (only its sha256 is stored). */
  async create(
    db: CommonQueryMethods,
    input: { username: string; email: string; ttlSeconds: number; purpose?: 'verify' | 'change' },
  ): Promise<{ id: bigint; secretCode: string; expiresAt: Date }> {
    const secretCode = randomBytes(24).toString('base64url');
    const row = await db.one(sql.type(verificationRow)`
      INSERT INTO email_verifications (username, email, secret_hash, expires_at, purpose)
      VALUES (${input.username}, ${input.email}, ${sha256(secretCode)}, now() + make_interval(secs => ${input.ttlSeconds}), ${input.purpose ?? 'verify'})
      RETURNING id, expires_at`);
    return { id: row.id, secretCode, expiresAt: row.expires_at };
  },

  /** The link, locked in the caller's transaction, or null. */
  async findForUpdate(db: CommonQueryMethods, id: bigint): Promise<EmailVerification | null> {
    const row = await db.maybeOne(sql.type(emailVerificationRow)`
      SELECT id, username, email, purpose, secret_hash, expires_at, used_at FROM email_verifications WHERE id = ${id} FOR UPDATE`);
    return row
      ? { id: row.id, username: row.username, email: row.email, purpose: row.purpose, secretHash: row.secret_hash, expiresAt: row.expires_at, usedAt: row.used_at }
      : null;
  },

  /** The id of the user's newest email-change link, or null: only that one may still move the address. */
  async newestChangeId(db: CommonQueryMethods, username: string): Promise<bigint | null> {
    return db.maybeOneFirst(sql.type(bigintIdRow)`
      SELECT id FROM email_verifications WHERE username = ${username} AND purpose = 'change' ORDER BY id DESC LIMIT 1`);
  },

  async markUsed(db: CommonQueryMethods, id: bigint): Promise<void> {
    await db.query(sql.unsafe`UPDATE email_verifications SET used_at = now() WHERE id = ${id}`);
  },
};
