-- The trail of what bankers and operators do: one row per action, written in the same
-- transaction as the change it records, never updated or deleted (the trigger function of 0001).
CREATE TABLE audit_events (
  id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  -- Who acted: `operator:<name>` for the admin command, a username for a banker's call.
  actor      text NOT NULL CONSTRAINT audit_events_actor_length CHECK (length(actor) BETWEEN 1 AND 200),
  -- Role changes today; credit, reversal, freeze and unfreeze join this list with their features.
  action     text NOT NULL CONSTRAINT audit_events_action_known CHECK (action IN ('role_granted', 'role_revoked')),
  -- What the action was about: a username for role changes (an account or transfer id later).
  target     text NOT NULL CONSTRAINT audit_events_target_length CHECK (length(target) BETWEEN 1 AND 200),
  reason     text CONSTRAINT audit_events_reason_length CHECK (length(reason) BETWEEN 1 AND 500),
  created_at timestamptz NOT NULL DEFAULT now()
);

-- Pages are read newest first by id (`WHERE id < $cursor ORDER BY id DESC LIMIT n`): a backward
-- scan of the primary key serves them, so no other index is needed for the list.

CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events FOR EACH ROW EXECUTE FUNCTION forbid_history_change();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events FOR EACH STATEMENT EXECUTE FUNCTION forbid_history_change();
