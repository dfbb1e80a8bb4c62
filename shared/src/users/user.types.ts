import type { Role } from '../auth/actor.ts';

/** A user as use cases return it: never the password hash. */
export type User = {
  readonly username: string;
  readonly fullName: string;
  readonly email: string;
  readonly role: Role;
  readonly isEmailVerified: boolean;
  readonly passwordChangedAt: Date;
  readonly createdAt: Date;
  readonly notificationSettings: NotificationSettings;
};

/**
 * The informational emails a user wants (all on by default). Security emails (a login from a new
 * address, a password or email change) have no switch: they always go.
 */
export type NotificationSettings = {
  /** Money received: a transfer, refund or reversal to the user's account, a banker's credit. */
  readonly moneyReceived: boolean;
  /** A withdrawal from the user's account. */
  readonly withdrawals: boolean;
  /** A hold captured (either side) or expired (the sender). */
  readonly holds: boolean;
};

/** A user with the stored bcrypt hash, for the use cases that check a password. Never answered. */
export type UserRecord = { readonly user: User; readonly hashedPassword: string };

/** An email verification link as stored: only the secret's sha256 is kept. */
export type EmailVerification = {
  readonly id: bigint;
  readonly username: string;
  readonly email: string;
  /** `verify`: confirms the user's current address; `change`: moves the user to this one. */
  readonly purpose: 'verify' | 'change';
  readonly secretHash: string;
  readonly expiresAt: Date;
  readonly usedAt: Date | null;
};

/** A password reset as stored: only the secret's sha256 is kept. */
export type PasswordReset = {
  readonly id: string;
  readonly username: string;
  readonly secretHash: string;
  readonly expiresAt: Date;
  readonly usedAt: Date | null;
};
