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
};
