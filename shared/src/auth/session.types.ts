import type { Role } from './actor.ts';

export const SESSION_STATUSES = ['pending', 'active', 'revoked'] as const;
export type SessionStatus = (typeof SESSION_STATUSES)[number];

/** A login session: pending until its login challenge is confirmed, then active until revoked. */
export type Session = {
  readonly id: string;
  readonly username: string;
  readonly status: SessionStatus;
  /** The one refresh token that may still be used (the latest issued); null while pending. */
  readonly refreshTokenId: string | null;
  readonly userAgent: string | null;
  readonly clientIp: string | null;
  readonly createdAt: Date;
  readonly activatedAt: Date | null;
  readonly expiresAt: Date;
  readonly revokedAt: Date | null;
  readonly revokedReason: string | null;
};

/** What authentication reads of a session: whether it is alive, and its user's role now. */
export type SessionWithRole = Pick<Session, 'id' | 'username' | 'status' | 'expiresAt'> & { readonly role: Role };

/**
 * What confirms a pending session: the login secret of the client that gave the password, with
 * the emailed token or code, or alone once the emailed link approved it. Only hashes of the
 * secret and the code are stored.
 */
export type LoginChallenge = {
  readonly id: string;
  readonly sessionId: string;
  readonly tokenId: string;
  readonly codeHash: string;
  /** sha256 of the login secret (hex); null for a challenge made before secrets existed, which nothing confirms. */
  readonly secretHash: string | null;
  readonly attempts: number;
  readonly expiresAt: Date;
  /** When the emailed link approved the login; from then on the secret alone confirms it. */
  readonly approvedAt: Date | null;
  readonly usedAt: Date | null;
};
