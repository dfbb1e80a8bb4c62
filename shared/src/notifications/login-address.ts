import type { CommonQueryMethods } from 'slonik';
import { clientAddressKey } from '../auth/rate-limiter.ts';
import { SEND_NEW_LOGIN_ADDRESS_EMAIL, type NewLoginAddressEmailPayload } from '../mail/notification-email.schema.ts';
import { outboxRepository } from '../outbox/outbox.repository.ts';
import type { User } from '../users/user.types.ts';
import { notificationRepository } from './notification.repository.ts';

/**
 * Remembers the client address of a login being confirmed, in the confirming transaction, and
 * writes the security email "new login from an address not used before" when the user has logged
 * in from other addresses but never this one. The very first address of a user (a new user's
 * first login, or an existing user's first since migration 0014) raises no alarm: there is
 * nothing to compare it with. Addresses are keyed as the rate limiter keys them (IPv4 as it is,
 * IPv6 by its /64). A login without a known address (an in-process caller) is not recorded.
 * Security emails have no setting: this one always goes. Returns the outbox id, if it wrote one.
 */
export async function noteLoginAddress(
  tx: CommonQueryMethods,
  login: { user: User; sessionId: string; clientIp?: string | undefined; userAgent?: string | undefined; at?: Date },
): Promise<string | undefined> {
  if (!login.clientIp) return undefined;
  const address = clientAddressKey(login.clientIp);
  const seen = await notificationRepository.rememberLoginAddress(tx, login.user.username, address);
  if (seen.known || seen.firstAddress) return undefined;
  const payload: NewLoginAddressEmailPayload = {
    to: login.user.email,
    username: login.user.username,
    fullName: login.user.fullName,
    address,
    userAgent: login.userAgent ? login.userAgent.slice(0, 200) : null,
    sessionId: login.sessionId,
    at: (login.at ?? new Date()).toISOString(),
  };
  return outboxRepository.insert(tx, { kind: SEND_NEW_LOGIN_ADDRESS_EMAIL, payload });
}
