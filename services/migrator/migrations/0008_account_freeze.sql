-- Freezing (issue 11, item 7): a banker may freeze an account. A frozen account can be read but
-- refuses every movement in or out (ledger_move() and ledger_move_batch() answer account_frozen)
-- until a banker unfreezes it; it cannot be closed while frozen. Each freeze and unfreeze is an
-- audit event.
ALTER TABLE accounts DROP CONSTRAINT accounts_status_check;
ALTER TABLE accounts ADD CONSTRAINT accounts_status_check CHECK (status IN ('open', 'frozen', 'closed'));
-- Only a closed account must be empty (0001 said "open or empty", which a frozen account with money
-- in it would break).
ALTER TABLE accounts DROP CONSTRAINT accounts_closed_empty;
ALTER TABLE accounts ADD CONSTRAINT accounts_closed_empty CHECK (status <> 'closed' OR balance = 0);

-- Still one account per user and currency that is not closed: a frozen account keeps its place,
-- so a user cannot step around a freeze by opening another account in the same currency. The
-- name stays (the repository maps a violation to AccountAlreadyExists by it).
DROP INDEX accounts_owner_currency_open_key;
CREATE UNIQUE INDEX accounts_owner_currency_open_key ON accounts (owner, currency) WHERE status <> 'closed' AND NOT is_system;

ALTER TABLE audit_events DROP CONSTRAINT audit_events_action_known;
ALTER TABLE audit_events ADD CONSTRAINT audit_events_action_known
  CHECK (action IN ('role_granted', 'role_revoked', 'account_frozen', 'account_unfrozen'));
