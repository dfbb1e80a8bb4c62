import type { Actor } from '@bank/shared/auth/actor';
import { Unauthenticated } from '@bank/shared/errors/domain-error';

/**
 * Reads `authorization: Bearer <access token>` and verifies the token.
 * @throws Unauthenticated when the header is missing or malformed, or the token does not verify
 */
export async function authenticateCall(authorization: string | undefined, verify: (accessToken: string) => Promise<Actor>): Promise<Actor> {
  if (!authorization) throw new Unauthenticated('missing authorization: Bearer <access token>');
  const match = /^Bearer[ ]+([^\s]+)\s*$/i.exec(authorization);
  if (!match?.[1]) throw new Unauthenticated('authorization must be "Bearer <access token>"');
  return verify(match[1]);
}
