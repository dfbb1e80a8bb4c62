/**
 * What an audit event records: role changes, freezes, a banker's credit (written by ledger_apply()
 * in the credit's transaction) and reversals. The same list as the CHECK of `audit_events.action`
 * (migrations 0007-0009); a test compares the two, so a new action cannot be written but unreadable.
 */
export const AUDIT_ACTIONS = [
  'role_granted',
  'role_revoked',
  'account_frozen',
  'account_unfrozen',
  'account_credited',
  'transfer_reversed',
] as const;
export type AuditAction = (typeof AUDIT_ACTIONS)[number];

/** One row of the append-only trail. */
export type AuditEvent = {
  readonly id: bigint;
  /** `operator:<name>` for the admin command, a banker's username for their calls. */
  readonly actor: string;
  readonly action: AuditAction;
  /** What the action was about: a username for role changes, `account:<id>`, `transfer:<id>`. */
  readonly target: string;
  readonly reason: string | null;
  readonly createdAt: Date;
};

/** A newest-first page of the trail. */
export type AuditEventPage = { readonly items: readonly AuditEvent[]; readonly nextPageToken: string };
