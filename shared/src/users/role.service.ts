import type { DatabasePool } from 'slonik';
import type { Role } from '../auth/actor.ts';
import type { SessionRevocations } from '../auth/session-liveness.ts';
import { sessionRepository } from '../auth/session.repository.ts';
import { auditRepository } from '../audit/audit.repository.ts';
import type { AuditEvent } from '../audit/audit.types.ts';
import { InvalidArgument, UserNotFound, type FieldViolation } from '../errors/domain-error.ts';
import { throwIfAborted, type UseCaseOptions } from '../use-case/use-case-options.ts';
import { userRepository } from './user.repository.ts';
import type { User } from './user.types.ts';

/** What a role change did: `unchanged` when the user already had the role (no row written). */
export type RoleChangeResult =
  | { readonly outcome: 'changed'; readonly user: User; readonly previousRole: Role; readonly auditEvent: AuditEvent; readonly revokedSessions: readonly string[] }
  | { readonly outcome: 'unchanged'; readonly user: User };

const MAX_ACTOR_LENGTH = 200;
const MAX_REASON_LENGTH = 500;

/**
 * Granting and revoking the banker role: an operator's act (the admin command), not an API call.
 *
 * A change sets `users.role`, writes its `audit_events` row and revokes every session of the
 * user, all in one transaction, so the trail never misses a change and no access token issued
 * under the old role keeps working: this process drops the sessions at once and publishes their
 * ids to every other process, which stop trusting them within SESSION_CACHE_TTL_MS in any case.
 * Setting the role a user already has changes nothing and writes nothing (`unchanged`).
 *
 * Throws InvalidArgument (actor, reason), UserNotFound, and the abort reason of an aborted
 * signal before touching the database; nothing else on purpose.
 */
export class RoleService {
  readonly #pool: DatabasePool;
  readonly #revocations: SessionRevocations | undefined;

  constructor(deps: { pool: DatabasePool; sessionRevocations?: SessionRevocations }) {
    this.#pool = deps.pool;
    this.#revocations = deps.sessionRevocations;
  }

  /** Makes the user a banker (`role_granted`). */
  grantBanker(input: { username: string; actor: string; reason?: string | undefined }, options: UseCaseOptions = {}): Promise<RoleChangeResult> {
    return this.#setRole(input, 'banker', options);
  }

  /** Makes the user a depositor again (`role_revoked`). */
  revokeBanker(input: { username: string; actor: string; reason?: string | undefined }, options: UseCaseOptions = {}): Promise<RoleChangeResult> {
    return this.#setRole(input, 'depositor', options);
  }

  async #setRole(input: { username: string; actor: string; reason?: string | undefined }, role: Role, options: UseCaseOptions): Promise<RoleChangeResult> {
    const violations: FieldViolation[] = [];
    const actor = input.actor.trim();
    if (actor.length < 1 || actor.length > MAX_ACTOR_LENGTH) violations.push({ field: 'actor', description: `must be 1 to ${MAX_ACTOR_LENGTH} characters` });
    const reason = input.reason === undefined ? null : input.reason.trim();
    if (reason !== null && (reason.length < 1 || reason.length > MAX_REASON_LENGTH)) {
      violations.push({ field: 'reason', description: `must be 1 to ${MAX_REASON_LENGTH} characters when given` });
    }
    if (violations.length > 0) throw new InvalidArgument(violations);

    throwIfAborted(options.signal);
    const result = await this.#pool.transaction(async (tx): Promise<RoleChangeResult> => {
      const found = await userRepository.findByUsername(tx, input.username, { forUpdate: true });
      if (!found) throw new UserNotFound(input.username);
      if (found.user.role === role) return { outcome: 'unchanged', user: found.user };
      const user = await userRepository.setRole(tx, input.username, role);
      const auditEvent = await auditRepository.insert(tx, {
        actor,
        action: role === 'banker' ? 'role_granted' : 'role_revoked',
        target: input.username,
        reason,
      });
      const revokedSessions = await sessionRepository.revokeAllForUser(tx, input.username, { reason: 'role changed' });
      return { outcome: 'changed', user, previousRole: found.user.role, auditEvent, revokedSessions };
    });
    if (result.outcome === 'changed') await this.#revocations?.revoked(result.revokedSessions);
    return result;
  }
}
