import { randomBytes, randomUUID } from 'node:crypto';
import { sql, type CommonQueryMethods } from 'slonik';
import { z } from 'zod';
import { sha256 } from './user.repository.ts';
import type { PasswordReset } from './user.types.ts';

const expiresAtRow = z.object({ expires_at: z.date() });

const resetRow = z.object({
  id: z.string(),
  username: z.string(),
  secret_hash: z.string(),
  expires_at: z.date(),
  used_at: z.date().nullable(),
});
const toReset = (row: z.infer<typeof resetRow>): PasswordReset => ({
  id: row.id,
  username: row.username,
  secretHash: row.secret_hash,
  expiresAt: row.expires_at,
  usedAt: row.used_at,
});

/**
 * Password resets (only the secret's sha256 is stored), connection first like every repository.
 * Throws only Slonik/PostgreSQL errors.
 */
export const passwordResetRepository = {
  /** Creates a reset; returns its id and secret (256 random bits, base64url) and when it expires. */
  async create(db: CommonQueryMethods, input: { username: string; ttlSeconds: number }): Promise<{ id: string; secret: string; expiresAt: Date }> {
    const id = randomUUID();
    const secret = randomBytes(32).toString('base64url');
    const expiresAt = await db.oneFirst(sql.type(expiresAtRow)`
      INSERT INTO password_resets (id, username, secret_hash, expires_at)
      VALUES (${id}, ${input.username}, ${sha256(secret)}, now() + make_interval(secs => ${input.ttlSeconds}))
      RETURNING expires_at`);
    return { id, secret, expiresAt };
  },

  /** The reset, or null; `forUpdate` locks it in the caller's transaction. */
  async findById(db: CommonQueryMethods, id: string, options: { forUpdate?: boolean } = {}): Promise<PasswordReset | null> {
    const row = await db.maybeOne(sql.type(resetRow)`
      SELECT id::text, username, secret_hash, expires_at, used_at FROM password_resets
      WHERE id = ${id} ${options.forUpdate ? sql.fragment`FOR UPDATE` : sql.fragment``}`);
    return row ? toReset(row) : null;
  },

  /** Marks every open reset of the user used (the confirmed one and any other link still in a mailbox). */
  async useAllOpen(db: CommonQueryMethods, username: string): Promise<void> {
    await db.query(sql.unsafe`UPDATE password_resets SET used_at = now() WHERE username = ${username} AND used_at IS NULL`);
  },
};
