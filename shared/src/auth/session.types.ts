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

/** The emailed token and code that confirm a pending session (only the code's hash is stored). */
export type LoginChallenge = {
  readonly id: string;
  readonly sessionId: string;
  readonly tokenId: string;
  readonly codeHash: string;
  readonly attempts: number;
  readonly expiresAt: Date;
  readonly usedAt: Date | null;
};
