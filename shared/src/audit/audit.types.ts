/**
 * What an audit event records. Role changes today; credit, reversal, freeze and unfreeze are added
 * here (and to the CHECK of `audit_events.action`) with their features.
 */
export const AUDIT_ACTIONS = ['role_granted', 'role_revoked', 'account_frozen', 'account_unfrozen'] as const;
export type AuditAction = (typeof AUDIT_ACTIONS)[number];

/** One row of the append-only trail. */
export type AuditEvent = {
  readonly id: bigint;
  /** `operator:<name>` for the admin command, a banker's username for their calls. */
  readonly actor: string;
  readonly action: AuditAction;
  /** What the action was about: a username for role changes. */
  readonly target: string;
  readonly reason: string | null;
  readonly createdAt: Date;
};

/** A newest-first page of the trail. */
export type AuditEventPage = { readonly items: readonly AuditEvent[]; readonly nextPageToken: string };
