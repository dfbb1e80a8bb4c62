import { createHash, randomBytes } from 'node:crypto';
import { sql, UniqueIntegrityConstraintViolationError, type CommonQueryMethods } from 'slonik';
import { z } from 'zod';
import { ROLES } from '../auth/actor.ts';
import { EmailTaken, UsernameTaken } from '../errors/domain-error.ts';
import type { User } from './user.types.ts';

export const userRowSchema = z.object({
  username: z.string(),
  full_name: z.string(),
  email: z.string(),
  hashed_password: z.string(),
  role: z.enum(ROLES),
  is_email_verified: z.boolean(),
  password_changed_at: z.date(),
  created_at: z.date(),
});
export type UserRow = z.infer<typeof userRowSchema>;

export const toUser = (row: UserRow): User => ({
  username: row.username,
  fullName: row.full_name,
  email: row.email,
  role: row.role,
  isEmailVerified: row.is_email_verified,
  passwordChangedAt: row.password_changed_at,
  createdAt: row.created_at,
});

const userColumns = sql.fragment`username, full_name, email, hashed_password, role, is_email_verified, password_changed_at, created_at`;

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
 * Users and their email verifications. Throws UsernameTaken / EmailTaken for unique violations.
 */
export const userRepository = {
  async insert(db: CommonQueryMethods, user: { username: string; fullName: string; email: string; hashedPassword: string }): Promise<UserRow> {
    try {
      return await db.one(sql.type(userRowSchema)`
        INSERT INTO users (username, full_name, email, hashed_password)
        VALUES (${user.username}, ${user.fullName}, ${user.email}, ${user.hashedPassword})
        RETURNING ${userColumns}`);
    } catch (error) {
      return mapUniqueViolation(error);
    }
  },

  async findByUsername(db: CommonQueryMethods, username: string, options: { forUpdate?: boolean } = {}): Promise<UserRow | null> {
    return db.maybeOne(sql.type(userRowSchema)`
      SELECT ${userColumns} FROM users WHERE username = ${username} ${options.forUpdate ? sql.fragment`FOR UPDATE` : sql.fragment``}`);
  },

  async update(
    db: CommonQueryMethods,
    username: string,
    changes: { fullName?: string; email?: string; hashedPassword?: string; keepEmailVerified?: boolean },
  ): Promise<UserRow> {
    const sets = [sql.fragment`updated_at = now()`];
    if (changes.fullName !== undefined) sets.push(sql.fragment`full_name = ${changes.fullName}`);
    if (changes.email !== undefined) sets.push(sql.fragment`email = ${changes.email}`);
    if (changes.email !== undefined && !changes.keepEmailVerified) sets.push(sql.fragment`is_email_verified = false`);
    if (changes.hashedPassword !== undefined) {
      sets.push(sql.fragment`hashed_password = ${changes.hashedPassword}`, sql.fragment`password_changed_at = now()`);
    }
    try {
      return await db.one(sql.type(userRowSchema)`
        UPDATE users SET ${sql.join(sets, sql.fragment`, `)} WHERE username = ${username} RETURNING ${userColumns}`);
    } catch (error) {
      return mapUniqueViolation(error);
    }
  },

  async markEmailVerified(db: CommonQueryMethods, username: string): Promise<UserRow> {
    return db.one(sql.type(userRowSchema)`
      UPDATE users SET is_email_verified = true, updated_at = now() WHERE username = ${username} RETURNING ${userColumns}`);
  },
};

export const emailVerificationRowSchema = z.object({
  id: z.bigint(),
  username: z.string(),
  email: z.string(),
  secret_hash: z.string(),
  expires_at: z.date(),
  used_at: z.date().nullable(),
});

/** Email verification links (only the secret's sha256 is stored). Throws only Slonik/PostgreSQL errors. */
export const emailVerificationRepository = {
  /** Creates a verification; returns its id and the secret (only its sha256 is stored). */
  async create(db: CommonQueryMethods, input: { username: string; email: string; ttlSeconds: number }) {
    const secretCode = randomBytes(24).toString('base64url');
    const row = await db.one(sql.type(z.object({ id: z.bigint(), expires_at: z.date() }))`
      INSERT INTO email_verifications (username, email, secret_hash, expires_at)
      VALUES (${input.username}, ${input.email}, ${sha256(secretCode)}, now() + make_interval(secs => ${input.ttlSeconds}))
      RETURNING id, expires_at`);
    return { id: row.id, secretCode, expiresAt: row.expires_at };
  },

  async findForUpdate(db: CommonQueryMethods, id: bigint) {
    return db.maybeOne(sql.type(emailVerificationRowSchema)`
      SELECT id, username, email, secret_hash, expires_at, used_at FROM email_verifications WHERE id = ${id} FOR UPDATE`);
  },

  async markUsed(db: CommonQueryMethods, id: bigint): Promise<void> {
    await db.query(sql.unsafe`UPDATE email_verifications SET used_at = now() WHERE id = ${id}`);
  },
};
