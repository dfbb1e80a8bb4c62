/** Who is calling a use case. The edges build it from a verified access token. */
export const ROLES = ['depositor', 'banker'] as const;
export type Role = (typeof ROLES)[number];

export type Actor = {
  /** The user's username: the stable user id every table references. */
  readonly username: string;
  readonly role: Role;
  /** The session the access token belongs to, when the call came through a session. */
  readonly sessionId?: string;
};
