import { sql, type CommonQueryMethods } from 'slonik';
import { z } from 'zod';
import { ROLES } from './actor.ts';
import { SESSION_STATUSES, type LoginChallenge, type Session, type SessionWithRole } from './session.types.ts';

const revokedSessionRow = z.object({ id: z.string().uuid() });

const sessionRow = z.object({
  id: z.string().uuid(),
  username: z.string(),
  status: z.enum(SESSION_STATUSES),
  refresh_token_id: z.string().uuid().nullable(),
  user_agent: z.string().nullable(),
  client_ip: z.string().nullable(),
  created_at: z.date(),
  activated_at: z.date().nullable(),
  expires_at: z.date(),
  revoked_at: z.date().nullable(),
  revoked_reason: z.string().nullable(),
});

const toSession = (row: z.infer<typeof sessionRow>): Session => ({
  id: row.id,
  username: row.username,
  status: row.status,
  refreshTokenId: row.refresh_token_id,
  userAgent: row.user_agent,
  clientIp: row.client_ip,
  createdAt: row.created_at,
  activatedAt: row.activated_at,
  expiresAt: row.expires_at,
  revokedAt: row.revoked_at,
  revokedReason: row.revoked_reason,
});

const sessionWithRoleRow = z.object({
  id: z.string().uuid(),
  username: z.string(),
  status: z.enum(SESSION_STATUSES),
  expires_at: z.date(),
  role: z.enum(ROLES),
});

const loginChallengeRow = z.object({
  id: z.string().uuid(),
  session_id: z.string().uuid(),
  token_id: z.string().uuid(),
  code_hash: z.string(),
  secret_hash: z.string().nullable(),
  attempts: z.number().int(),
  expires_at: z.date(),
  approved_at: z.date().nullable(),
  used_at: z.date().nullable(),
});

const toLoginChallenge = (row: z.infer<typeof loginChallengeRow>): LoginChallenge => ({
  id: row.id,
  sessionId: row.session_id,
  tokenId: row.token_id,
  codeHash: row.code_hash,
  secretHash: row.secret_hash,
  attempts: row.attempts,
  expiresAt: row.expires_at,
  approvedAt: row.approved_at,
  usedAt: row.used_at,
});

const clip = (value: string | undefined, max: number) => (value === undefined ? null : value.slice(0, max));

/**
 * Sessions (pending -> active -> revoked) and the login challenges that activate them. Every
 * method takes the connection first (the pool, or a use case's transaction) and returns domain
 * types. Throws only Slonik/PostgreSQL errors (a missing row is null, never an error).
 */
export const sessionRepository = {
  async insertPending(
    db: CommonQueryMethods,
    session: { id: string; username: string; expiresAt: Date; userAgent?: string; clientIp?: string },
  ): Promise<void> {
    await db.query(sql.unsafe`
      INSERT INTO sessions (id, username, status, expires_at, user_agent, client_ip)
      VALUES (${session.id}, ${session.username}, 'pending', ${sql.timestamp(session.expiresAt)},
        ${clip(session.userAgent, 512)}, ${clip(session.clientIp, 64)})`);
  },

  async findById(db: CommonQueryMethods, id: string, options: { forUpdate?: boolean } = {}): Promise<Session | null> {
    const row = await db.maybeOne(sql.type(sessionRow)`
      SELECT * FROM sessions WHERE id = ${id} ${options.forUpdate ? sql.fragment`FOR UPDATE` : sql.fragment``}`);
    return row ? toSession(row) : null;
  },

  /**
   * What authenticating a call needs, in one query: the session's liveness and its user's role
   * now (a role changed since the token was issued applies from this read on).
   */
  async findForAuthentication(db: CommonQueryMethods, id: string): Promise<SessionWithRole | null> {
    const row = await db.maybeOne(sql.type(sessionWithRoleRow)`
      SELECT s.id, s.username, s.status, s.expires_at, u.role
      FROM sessions s JOIN users u ON u.username = s.username
      WHERE s.id = ${id}`);
    return row ? { id: row.id, username: row.username, status: row.status, expiresAt: row.expires_at, role: row.role } : null;
  },

  async activate(
    db: CommonQueryMethods,
    id: string,
    update: { refreshTokenId: string; expiresAt: Date; userAgent?: string; clientIp?: string },
  ): Promise<void> {
    await db.query(sql.unsafe`
      UPDATE sessions SET status = 'active', activated_at = now(), refresh_token_id = ${update.refreshTokenId},
        expires_at = ${sql.timestamp(update.expiresAt)},
        user_agent = coalesce(${clip(update.userAgent, 512)}, user_agent),
        client_ip = coalesce(${clip(update.clientIp, 64)}, client_ip)
      WHERE id = ${id}`);
  },

  async rotateRefresh(
    db: CommonQueryMethods,
    id: string,
    update: { refreshTokenId: string; expiresAt: Date; userAgent?: string; clientIp?: string },
  ): Promise<void> {
    await db.query(sql.unsafe`
      UPDATE sessions SET refresh_token_id = ${update.refreshTokenId}, expires_at = ${sql.timestamp(update.expiresAt)},
        user_agent = coalesce(${clip(update.userAgent, 512)}, user_agent),
        client_ip = coalesce(${clip(update.clientIp, 64)}, client_ip)
      WHERE id = ${id}`);
  },

  async revoke(db: CommonQueryMethods, id: string, reason: string): Promise<void> {
    await db.query(sql.unsafe`
      UPDATE sessions SET status = 'revoked', revoked_at = now(), revoked_reason = ${reason}
      WHERE id = ${id} AND status <> 'revoked'`);
  },

  /**
   * Revokes every live session of a user, optionally but one; returns the ids it revoked, which
   * the caller publishes (SessionRevocations) once its transaction has committed.
   */
  async revokeAllForUser(db: CommonQueryMethods, username: string, options: { except?: string; reason: string }): Promise<string[]> {
    const rows = await db.any(sql.type(revokedSessionRow)`
      UPDATE sessions SET status = 'revoked', revoked_at = now(), revoked_reason = ${options.reason}
      WHERE username = ${username} AND status <> 'revoked'
        ${options.except ? sql.fragment`AND id <> ${options.except}` : sql.fragment``}
      RETURNING id`);
    return rows.map((row) => row.id);
  },

  async insertChallenge(
    db: CommonQueryMethods,
    challenge: { id: string; sessionId: string; tokenId: string; codeHash: string; secretHash: string; expiresAt: Date },
  ): Promise<void> {
    await db.query(sql.unsafe`
      INSERT INTO login_challenges (id, session_id, token_id, code_hash, secret_hash, expires_at)
      VALUES (${challenge.id}, ${challenge.sessionId}, ${challenge.tokenId}, ${challenge.codeHash}, ${challenge.secretHash},
        ${sql.timestamp(challenge.expiresAt)})`);
  },

  async findChallengeForUpdate(db: CommonQueryMethods, sessionId: string): Promise<LoginChallenge | null> {
    const row = await db.maybeOne(sql.type(loginChallengeRow)`
      SELECT id, session_id, token_id, code_hash, secret_hash, attempts, expires_at, approved_at, used_at
      FROM login_challenges WHERE session_id = ${sessionId} FOR UPDATE`);
    return row ? toLoginChallenge(row) : null;
  },

  async countChallengeAttempt(db: CommonQueryMethods, id: string): Promise<void> {
    await db.query(sql.unsafe`UPDATE login_challenges SET attempts = attempts + 1 WHERE id = ${id}`);
  },

  /** Marks the challenge approved by its emailed link; the first approval's time stays. */
  async approveChallenge(db: CommonQueryMethods, id: string): Promise<void> {
    await db.query(sql.unsafe`UPDATE login_challenges SET approved_at = coalesce(approved_at, now()) WHERE id = ${id}`);
  },

  async markChallengeUsed(db: CommonQueryMethods, id: string): Promise<void> {
    await db.query(sql.unsafe`UPDATE login_challenges SET used_at = now() WHERE id = ${id}`);
  },
};
