import { getOption, type DescMethod } from '@bufbuild/protobuf';
import { allow_anonymous } from '@bank/proto/bank/v1/options_pb';
import type { Actor } from '../auth/actor.ts';
import { Unauthenticated } from '../errors/domain-error.ts';

/** True when the contract marks the method `(bank.v1.allow_anonymous) = true`. */
export const isAnonymousMethod = (method: DescMethod): boolean => getOption(method, allow_anonymous);

/**
 * The one authentication step of both edges: anonymous methods need nothing; every other method
 * needs `authorization: Bearer <access token>` that verifies as an access token of a live session.
 * @throws Unauthenticated
 */
export async function authenticateCall(
  method: DescMethod,
  authorization: string | undefined,
  verify: (accessToken: string) => Promise<Actor>,
): Promise<Actor | undefined> {
  if (isAnonymousMethod(method)) return undefined;
  if (!authorization) throw new Unauthenticated('missing authorization: Bearer <access token>');
  const match = /^Bearer[ ]+([^\s]+)\s*$/i.exec(authorization);
  if (!match?.[1]) throw new Unauthenticated('authorization must be "Bearer <access token>"');
  return verify(match[1]);
}
