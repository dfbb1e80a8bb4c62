-- Events (issue 14): what happened to money and accounts, written in the transaction of its
-- cause, for the consumers that tell people and systems about it (notification emails,
-- webhooks). The outbox of events: a row exists if and only if its cause committed.
--
-- Written by triggers on transfers and accounts, so every path that moves money or freezes an
-- account (ledger_apply() and its wrappers, the hold sweep, the banker's freeze) produces its
-- events without knowing about them, and no path can forget to.
--
-- Each consumer marks the rows it is done with in its own column (notified_at, webhooked_at) and
-- claims work with FOR UPDATE SKIP LOCKED on its own partial index, so consumers never wait for
-- each other and a consumer that is down only lets its own backlog grow. An id cursor would not
-- do: ids are taken before commit, so a transaction that commits late would be skipped.
--
-- data is the row as it was at the event (to_jsonb of transfers or accounts): a consumer shows
-- the transfer as it was when it was captured, not as it is when the consumer gets to it.
CREATE TABLE events (
  id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  -- Stable identity for the outside world (a webhook's event id); never reused.
  public_id    uuid NOT NULL DEFAULT gen_random_uuid() CONSTRAINT events_public_id_key UNIQUE,
  type         text NOT NULL CONSTRAINT events_type_check CHECK (type IN (
                 'transfer.posted', 'transfer.pending', 'transfer.captured', 'transfer.voided',
                 'transfer.expired', 'transfer.reversed', 'transfer.refunded', 'withdrawal.created',
                 'account.frozen', 'account.unfrozen')),
  -- The accounts the event concerns: both sides of a transfer (system accounts included), or
  -- the account itself. Who may see the event follows from their owners.
  account_ids  bigint[] NOT NULL CONSTRAINT events_account_ids_check CHECK (cardinality(account_ids) BETWEEN 1 AND 2),
  transfer_id  bigint REFERENCES transfers (id),
  account_id   bigint REFERENCES accounts (id),
  data         jsonb NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
  notified_at  timestamptz,
  webhooked_at timestamptz,
  CONSTRAINT events_subject_check CHECK ((transfer_id IS NULL) <> (account_id IS NULL))
);
CREATE INDEX events_unnotified_idx ON events (id) WHERE notified_at IS NULL;
CREATE INDEX events_unwebhooked_idx ON events (id) WHERE webhooked_at IS NULL;
CREATE INDEX events_transfer_idx ON events (transfer_id) WHERE transfer_id IS NOT NULL;

CREATE FUNCTION events_from_transfer() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  v_type text;
BEGIN
  IF TG_OP = 'INSERT' THEN
    v_type := CASE
      WHEN NEW.status = 'pending' THEN 'transfer.pending'
      WHEN NEW.kind = 'withdrawal' THEN 'withdrawal.created'
      WHEN NEW.kind = 'reversal' THEN 'transfer.reversed'
      WHEN NEW.kind = 'refund' THEN 'transfer.refunded'
      ELSE 'transfer.posted'
    END;
  ELSIF OLD.status = 'pending' AND NEW.status IS DISTINCT FROM OLD.status THEN
    v_type := CASE NEW.status
      WHEN 'posted' THEN 'transfer.captured'
      WHEN 'voided' THEN 'transfer.voided'
      WHEN 'expired' THEN 'transfer.expired'
    END;
  END IF;
  IF v_type IS NOT NULL THEN
    INSERT INTO events (type, account_ids, transfer_id, data)
    VALUES (v_type, ARRAY[NEW.from_account_id, NEW.to_account_id], NEW.id, to_jsonb(NEW));
  END IF;
  RETURN NULL;
END;
$$;
CREATE TRIGGER transfers_events AFTER INSERT OR UPDATE OF status ON transfers
  FOR EACH ROW EXECUTE FUNCTION events_from_transfer();

-- An account's data carries available_balance as the API shows it (balance less active holds).
CREATE FUNCTION events_from_account() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  v_type text;
BEGIN
  IF NEW.status = 'frozen' AND OLD.status <> 'frozen' THEN
    v_type := 'account.frozen';
  ELSIF OLD.status = 'frozen' AND NEW.status = 'open' THEN
    v_type := 'account.unfrozen';
  END IF;
  IF v_type IS NOT NULL THEN
    INSERT INTO events (type, account_ids, account_id, data)
    VALUES (v_type, ARRAY[NEW.id], NEW.id, to_jsonb(NEW) || jsonb_build_object('available_balance',
      NEW.balance - coalesce((SELECT sum(h.amount) FROM transfers h
                               WHERE h.from_account_id = NEW.id AND h.status = 'pending' AND h.expires_at > now()), 0)));
  END IF;
  RETURN NULL;
END;
$$;
CREATE TRIGGER accounts_events AFTER UPDATE OF status ON accounts
  FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status) EXECUTE FUNCTION events_from_account();
