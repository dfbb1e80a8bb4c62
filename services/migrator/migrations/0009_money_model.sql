-- The money model of a bank (issue 11): holds (pending transfers), withdrawals to a settlement
-- account, limits, reversals and refunds, references (memo, reference, metadata), and banker
-- credits with their audit trail. Every movement still goes through one database call per batch:
-- ledger_apply() below replaces the bodies of ledger_move() (0004) and ledger_move_batch() (0006),
-- which stay as thin wrappers for callers of the previous release during a rolling deploy.

-- 1. System accounts have a kind: per currency one funding account (deposits come from it) and one
--    settlement account (withdrawals go to it), so per currency every balance still sums to zero.
ALTER TABLE accounts ADD COLUMN kind text NOT NULL DEFAULT 'user';
UPDATE accounts SET kind = 'funding' WHERE is_system;
ALTER TABLE accounts ADD CONSTRAINT accounts_kind_check CHECK (kind IN ('user', 'funding', 'settlement'));
ALTER TABLE accounts ADD CONSTRAINT accounts_kind_system CHECK (is_system = (kind <> 'user'));
DROP INDEX accounts_system_currency_key;
CREATE UNIQUE INDEX accounts_system_currency_kind_key ON accounts (currency, kind) WHERE is_system;
INSERT INTO accounts (owner, currency, is_system, kind)
SELECT NULL, code, true, 'settlement' FROM unnest(ARRAY['USD', 'EUR', 'GBP', 'JPY', 'CHF', 'CAD', 'AUD']) AS code;

-- Running totals behind the rolling-day limits: an account's outgoing transfers, holds and
-- withdrawals, and the self-service deposits into it, summed since this migration. Each transfer
-- row keeps the totals of its two accounts right after it (from_outflow_total, to_deposit_total),
-- so the sum over the last 24 hours is the total now minus the total of the last row at or before
-- the window's start: one index read however busy the account. Movements before this migration
-- count from it on (there were no limits before).
ALTER TABLE accounts ADD COLUMN outflow_total bigint NOT NULL DEFAULT 0;
ALTER TABLE accounts ADD COLUMN deposit_total bigint NOT NULL DEFAULT 0;

-- 2. Transfers: status (a pending transfer is a hold), references, links.
ALTER TABLE transfers
  ADD COLUMN status text NOT NULL DEFAULT 'posted',
  ADD COLUMN captured_amount bigint,
  ADD COLUMN expires_at timestamptz,
  ADD COLUMN resolved_at timestamptz,
  ADD COLUMN memo text,
  ADD COLUMN reference text,
  ADD COLUMN metadata jsonb,
  ADD COLUMN destination text,
  ADD COLUMN reverses_transfer_id bigint REFERENCES transfers (id),
  ADD COLUMN refunds_transfer_id bigint REFERENCES transfers (id),
  ADD COLUMN from_outflow_total bigint,
  ADD COLUMN to_deposit_total bigint;

ALTER TABLE transfers DROP CONSTRAINT transfers_kind_check;
ALTER TABLE transfers ADD CONSTRAINT transfers_kind_check
  CHECK (kind IN ('transfer', 'deposit', 'withdrawal', 'reversal', 'refund')) NOT VALID;
ALTER TABLE transfers ADD CONSTRAINT transfers_status_check
  CHECK (status IN ('posted', 'pending', 'voided', 'expired')) NOT VALID;
-- A hold is a transfer with expires_at; only a hold is ever anything but posted, and only a
-- captured hold has a captured amount, between 1 and what was held. resolved_at: when a hold
-- stopped being pending.
ALTER TABLE transfers ADD CONSTRAINT transfers_hold_check CHECK (
  (expires_at IS NOT NULL OR (status = 'posted' AND captured_amount IS NULL))
  AND ((captured_amount IS NOT NULL) = (expires_at IS NOT NULL AND status = 'posted'))
  AND (captured_amount IS NULL OR captured_amount BETWEEN 1 AND amount)
  AND ((resolved_at IS NOT NULL) = (expires_at IS NOT NULL AND status <> 'pending'))
  AND (expires_at IS NULL OR kind = 'transfer')) NOT VALID;
ALTER TABLE transfers ADD CONSTRAINT transfers_references_check CHECK (
  (memo IS NULL OR length(memo) BETWEEN 1 AND 140)
  AND (reference IS NULL OR length(reference) BETWEEN 1 AND 64)
  AND (metadata IS NULL OR jsonb_typeof(metadata) = 'object')
  AND ((destination IS NOT NULL) = (kind = 'withdrawal'))
  AND (destination IS NULL OR length(destination) BETWEEN 1 AND 64)
  AND ((reverses_transfer_id IS NOT NULL) = (kind = 'reversal'))
  AND ((refunds_transfer_id IS NOT NULL) = (kind = 'refund'))) NOT VALID;
ALTER TABLE transfers VALIDATE CONSTRAINT transfers_kind_check;
ALTER TABLE transfers VALIDATE CONSTRAINT transfers_status_check;
ALTER TABLE transfers VALIDATE CONSTRAINT transfers_hold_check;
ALTER TABLE transfers VALIDATE CONSTRAINT transfers_references_check;

-- At most one reversal per transfer, whatever the code does.
CREATE UNIQUE INDEX transfers_reverses_key ON transfers (reverses_transfer_id) WHERE reverses_transfer_id IS NOT NULL;
CREATE INDEX transfers_refunds_idx ON transfers (refunds_transfer_id) WHERE refunds_transfer_id IS NOT NULL;
-- The active holds of an account (available balance), and all pending ones by deadline (the sweep).
CREATE INDEX transfers_pending_idx ON transfers (from_account_id, expires_at) INCLUDE (amount, created_at) WHERE status = 'pending';
CREATE INDEX transfers_pending_expiry_idx ON transfers (expires_at) WHERE status = 'pending';
-- An account's holds by creation (what they released counts back under the outgoing limit; balance at an instant).
CREATE INDEX transfers_holds_idx ON transfers (from_account_id, created_at) WHERE expires_at IS NOT NULL;
-- GET /v1/transfers?account_id=..&reference=..
CREATE INDEX transfers_from_reference_idx ON transfers (from_account_id, reference, created_at, id) WHERE reference IS NOT NULL;
CREATE INDEX transfers_to_reference_idx ON transfers (to_account_id, reference, created_at, id) WHERE reference IS NOT NULL;

-- Transfers stay append-only, except that a pending transfer's status columns (status,
-- captured_amount, resolved_at) change once, when it is captured, voided or expires.
CREATE FUNCTION transfers_guard_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE' AND OLD.status = 'pending' AND NEW.status <> 'pending'
     AND (to_jsonb(NEW) - ARRAY['status', 'captured_amount', 'resolved_at'])
       = (to_jsonb(OLD) - ARRAY['status', 'captured_amount', 'resolved_at']) THEN
    RETURN NEW;
  END IF;
  RAISE EXCEPTION 'table % is append-only (only a pending transfer''s status may change, once)', TG_TABLE_NAME
    USING ERRCODE = 'BK900';
END;
$$;
DROP TRIGGER transfers_append_only ON transfers;
CREATE TRIGGER transfers_append_only BEFORE UPDATE OR DELETE ON transfers FOR EACH ROW EXECUTE FUNCTION transfers_guard_change();

-- 3. Banker credits and reversals join the audit trail.
ALTER TABLE audit_events DROP CONSTRAINT audit_events_action_known;
ALTER TABLE audit_events ADD CONSTRAINT audit_events_action_known
  CHECK (action IN ('role_granted', 'role_revoked', 'account_frozen', 'account_unfrozen', 'account_credited', 'transfer_reversed'));

-- 4. The answer of one movement, from its stored idempotency response: the same function answers a
--    movement made now and its replay, so the two cannot drift apart. Responses stored by 0004/0006
--    lack the newer fields; they read as a posted movement initiated by the key's owner.
CREATE FUNCTION ledger_answer(p_idx int, r jsonb, p_replayed boolean, p_actor text)
RETURNS TABLE (
  idx int, transfer_id bigint, from_account_id bigint, to_account_id bigint, amount bigint, currency text,
  kind text, status text, captured_amount bigint, expires_at timestamptz, created_at timestamptz,
  memo text, reference text, metadata jsonb, destination text, reverses_transfer_id bigint,
  refunds_transfer_id bigint, initiated_by text, from_entry_id bigint, to_entry_id bigint,
  entries_at timestamptz, from_balance bigint, to_balance bigint, replayed boolean,
  error_code text, error_detail text
)
LANGUAGE sql STABLE AS $$
  SELECT p_idx, (r->>'transfer_id')::bigint, (r->>'from_account_id')::bigint, (r->>'to_account_id')::bigint,
         (r->>'amount')::bigint, r->>'currency', r->>'kind', coalesce(r->>'status', 'posted'),
         (r->>'captured_amount')::bigint, (r->>'expires_at')::timestamptz, (r->>'created_at')::timestamptz,
         r->>'memo', r->>'reference',
         CASE WHEN jsonb_typeof(r->'metadata') = 'object' THEN r->'metadata' ELSE '{}'::jsonb END, r->>'destination',
         (r->>'reverses_transfer_id')::bigint, (r->>'refunds_transfer_id')::bigint,
         coalesce(r->>'initiated_by', p_actor), (r->>'from_entry_id')::bigint, (r->>'to_entry_id')::bigint,
         coalesce((r->>'entries_at')::timestamptz, (r->>'created_at')::timestamptz),
         (r->>'from_balance')::bigint, (r->>'to_balance')::bigint, p_replayed, NULL::text, NULL::text
$$;

-- A refused operation's answer: its name and detail, every other column null.
CREATE FUNCTION ledger_refusal(p_idx int, p_code text, p_detail text)
RETURNS TABLE (
  idx int, transfer_id bigint, from_account_id bigint, to_account_id bigint, amount bigint, currency text,
  kind text, status text, captured_amount bigint, expires_at timestamptz, created_at timestamptz,
  memo text, reference text, metadata jsonb, destination text, reverses_transfer_id bigint,
  refunds_transfer_id bigint, initiated_by text, from_entry_id bigint, to_entry_id bigint,
  entries_at timestamptz, from_balance bigint, to_balance bigint, replayed boolean,
  error_code text, error_detail text
)
LANGUAGE sql IMMUTABLE AS $$
  SELECT p_idx, NULL::bigint, NULL::bigint, NULL::bigint, NULL::bigint, NULL::text, NULL::text, NULL::text,
         NULL::bigint, NULL::timestamptz, NULL::timestamptz, NULL::text, NULL::text, NULL::jsonb, NULL::text, NULL::bigint,
         NULL::bigint, NULL::text, NULL::bigint, NULL::bigint, NULL::timestamptz, NULL::bigint, NULL::bigint, NULL::boolean,
         p_code, p_detail
$$;

-- 5. ledger_apply: a batch of money operations as one call and one commit (group commit, 0006).
--
-- Operations (p_operations), each with its own idempotency claim, its own refusal (a refused
-- operation never fails its neighbours) and its own answer row (`idx`, 1-based):
--   transfer    from -> to, same currency; with p_hold_ttls set, a hold: a pending transfer that
--               reserves the amount on the sender (available balance) and moves nothing
--   deposit     the currency's funding account -> to; a depositor's own account within the
--               deposit limits, or any user account for a banker (a credit, audited, uncapped)
--   withdrawal  from -> the currency's settlement account, to p_destinations
--   capture     a pending hold (p_targets) posts p_amounts (NULL: all held), releasing the rest
--   void        a pending hold is released
--   reversal    a banker moves a posted movement's amount (less its refunds) back, at most once
--   refund      the receiver of a posted transfer sends (part of) it back, in total at most its amount
--
-- Order of work, so that batches and sweeps never deadlock one another (as 0006):
--   1. idempotency claims in (actor, key) order; a key already committed is answered here;
--   2. the accounts each claimed operation touches are found (a capture's or refund's from the
--      transfer it names) and locked in ascending id order in one statement;
--   3. the operations in the order given, on the balances the earlier ones left. A hold changes
--      status only under its sender's account lock, with `status = 'pending'` in the UPDATE, so the
--      worker's sweep (which takes no account lock) and a capture can never both win.
-- Limits (NULL: none): p_deposit_max per self-service deposit; p_deposit_daily per user and
-- currency, and p_outgoing_daily per account (transfers, holds, withdrawals), per rolling 24 hours.
-- A hold counts at its amount while active and at its captured amount once captured, never again.
--
-- Refusals (error_code; error_detail):
--   account_not_found, permission_denied, account_closed, account_frozen, insufficient_funds,
--   transfer_not_found, hold_expired                     an id
--   currency_mismatch                                    a sentence
--   idempotency_conflict, amount_out_of_range            a sentence (amount_out_of_range: a balance
--                                                        would overflow, or a capture above the hold)
--   limit_exceeded                                       '<limit name>:<remaining minor units>'
--   transfer_not_pending                                 '<id>:<status>'
--   transfer_already_reversed                            an id
--   transfer_not_reversible, transfer_not_refundable     '<id>:<why>'
--   refund_exceeds_transfer                              '<id>:<remaining minor units>'
CREATE FUNCTION ledger_apply(
  p_actors          text[],
  p_roles           text[],
  p_keys            text[],
  p_hashes          text[],
  p_operations      text[],
  p_from_account_id bigint[],
  p_to_account_id   bigint[],
  p_amounts         bigint[],
  p_currencies      text[],
  p_targets         bigint[],
  p_hold_ttls       int[],
  p_memos           text[],
  p_references      text[],
  p_metadata        jsonb[],
  p_destinations    text[],
  p_deposit_max     bigint,
  p_deposit_daily   bigint,
  p_outgoing_daily  bigint
)
RETURNS TABLE (
  idx int, transfer_id bigint, from_account_id bigint, to_account_id bigint, amount bigint, currency text,
  kind text, status text, captured_amount bigint, expires_at timestamptz, created_at timestamptz,
  memo text, reference text, metadata jsonb, destination text, reverses_transfer_id bigint,
  refunds_transfer_id bigint, initiated_by text, from_entry_id bigint, to_entry_id bigint,
  entries_at timestamptz, from_balance bigint, to_balance bigint, replayed boolean,
  error_code text, error_detail text
)
LANGUAGE plpgsql AS $$
#variable_conflict use_variable
DECLARE
  n           int := coalesce(array_length(p_actors, 1), 0);
  i           int;
  v_op        text;
  v_claimed   boolean;
  v_open      boolean[];
  v_from_ids  bigint[];
  v_to_ids    bigint[];
  v_ids       bigint[];
  v_existing  idempotency_keys%ROWTYPE;
  v_from      accounts%ROWTYPE;
  v_to        accounts%ROWTYPE;
  v_target    transfers%ROWTYPE;
  v_t         transfers%ROWTYPE;
  v_now       timestamptz;
  v_window    timestamptz;
  v_amount    bigint;
  v_currency  text;
  v_held      bigint;
  v_held_old  bigint;
  v_cum       bigint;
  v_used      bigint;
  v_released  bigint;
  v_refunded  bigint;
  v_outflow   bigint;
  v_deposit   bigint;
  v_fe        bigint;
  v_te        bigint;
  v_fb        bigint;
  v_tb        bigint;
  v_changed   int;
  v_error     text;
  v_detail    text;
  v_response  jsonb;
BEGIN
  IF n = 0 THEN RETURN; END IF;
  IF coalesce(array_length(p_roles, 1), 0) <> n OR coalesce(array_length(p_keys, 1), 0) <> n
     OR coalesce(array_length(p_hashes, 1), 0) <> n OR coalesce(array_length(p_operations, 1), 0) <> n
     OR coalesce(array_length(p_from_account_id, 1), 0) <> n OR coalesce(array_length(p_to_account_id, 1), 0) <> n
     OR coalesce(array_length(p_amounts, 1), 0) <> n OR coalesce(array_length(p_currencies, 1), 0) <> n
     OR coalesce(array_length(p_targets, 1), 0) <> n OR coalesce(array_length(p_hold_ttls, 1), 0) <> n
     OR coalesce(array_length(p_memos, 1), 0) <> n OR coalesce(array_length(p_references, 1), 0) <> n
     OR coalesce(array_length(p_metadata, 1), 0) <> n OR coalesce(array_length(p_destinations, 1), 0) <> n THEN
    RAISE EXCEPTION 'ledger_apply: all arrays must have % elements', n;
  END IF;
  v_open := array_fill(false, ARRAY[n]);
  v_from_ids := p_from_account_id;
  v_to_ids := p_to_account_id;

  -- 1. Idempotency claims in (actor, key) order.
  FOR i IN SELECT s FROM generate_subscripts(p_actors, 1) AS s ORDER BY p_actors[s], p_keys[s] LOOP
    INSERT INTO idempotency_keys AS k (username, key, operation, request_hash)
    VALUES (p_actors[i], p_keys[i], p_operations[i], p_hashes[i])
    ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS v_claimed = ROW_COUNT;
    IF v_claimed THEN
      v_open[i] := true;
      CONTINUE;
    END IF;
    SELECT * INTO STRICT v_existing FROM idempotency_keys k WHERE k.username = p_actors[i] AND k.key = p_keys[i];
    IF v_existing.request_hash <> p_hashes[i] OR v_existing.operation <> p_operations[i] THEN
      RETURN QUERY SELECT * FROM ledger_refusal(i, 'idempotency_conflict', 'idempotency key reused with a different request');
    ELSIF v_existing.response IS NULL THEN
      RAISE EXCEPTION 'ledger_apply: idempotency key % of % appears twice in one batch', p_keys[i], p_actors[i];
    ELSE
      RETURN QUERY SELECT * FROM ledger_answer(i, v_existing.response, true, p_actors[i]);
    END IF;
  END LOOP;

  -- 2. The accounts of every claimed operation, then all of them locked in ascending id order.
  FOR i IN 1..n LOOP
    CONTINUE WHEN NOT v_open[i];
    v_op := p_operations[i];
    v_error := NULL;
    IF v_op = 'deposit' THEN
      v_from_ids[i] := (SELECT f.id FROM accounts a JOIN accounts f ON f.is_system AND f.kind = 'funding' AND f.currency = a.currency
                         WHERE a.id = p_to_account_id[i]);
      IF v_from_ids[i] IS NULL THEN v_error := 'account_not_found'; v_detail := p_to_account_id[i]::text; END IF;
    ELSIF v_op = 'withdrawal' THEN
      v_to_ids[i] := (SELECT s.id FROM accounts a JOIN accounts s ON s.is_system AND s.kind = 'settlement' AND s.currency = a.currency
                       WHERE a.id = p_from_account_id[i]);
      IF v_to_ids[i] IS NULL THEN v_error := 'account_not_found'; v_detail := p_from_account_id[i]::text; END IF;
    ELSIF v_op IN ('capture', 'void', 'reversal', 'refund') THEN
      SELECT t.from_account_id, t.to_account_id INTO v_fe, v_te FROM transfers t WHERE t.id = p_targets[i];
      IF NOT FOUND THEN
        v_error := 'transfer_not_found'; v_detail := p_targets[i]::text;
      ELSIF v_op IN ('capture', 'void') THEN
        v_from_ids[i] := v_fe; v_to_ids[i] := v_te;
      ELSE
        -- The money goes back: from the original's receiver to its sender.
        v_from_ids[i] := v_te; v_to_ids[i] := v_fe;
      END IF;
    ELSIF v_op <> 'transfer' THEN
      RAISE EXCEPTION 'ledger_apply: unknown operation %', v_op;
    END IF;
    IF v_error IS NOT NULL THEN
      v_open[i] := false;
      DELETE FROM idempotency_keys k WHERE k.username = p_actors[i] AND k.key = p_keys[i];
      RETURN QUERY SELECT * FROM ledger_refusal(i, v_error, v_detail);
    END IF;
  END LOOP;

  v_ids := ARRAY(
    SELECT DISTINCT x FROM (
      SELECT unnest(ARRAY[v_from_ids[s], v_to_ids[s]]) AS x FROM generate_subscripts(p_actors, 1) AS s WHERE v_open[s]
    ) ids WHERE x IS NOT NULL ORDER BY x);
  PERFORM 1 FROM accounts a WHERE a.id = ANY (v_ids) ORDER BY a.id FOR UPDATE;
  -- The batch's time, taken with its accounts locked: an account's history in (created_at, id)
  -- order is the order its balances were applied in.
  v_now := clock_timestamp();
  v_window := v_now - interval '24 hours';

  -- 3. The operations in the order given.
  FOR i IN 1..n LOOP
    CONTINUE WHEN NOT v_open[i];
    v_op := p_operations[i];
    v_amount := p_amounts[i];
    v_error := NULL;
    v_detail := NULL;
    v_from := NULL;
    v_to := NULL;
    v_target := NULL;
    v_outflow := 0;
    v_deposit := 0;
    v_held := 0;
    v_held_old := 0;
    SELECT * INTO v_from FROM accounts a WHERE a.id = v_from_ids[i];
    SELECT * INTO v_to FROM accounts a WHERE a.id = v_to_ids[i];
    IF v_op IN ('capture', 'void', 'reversal', 'refund') THEN
      SELECT * INTO v_target FROM transfers t WHERE t.id = p_targets[i];
    END IF;
    v_currency := coalesce(p_currencies[i], v_target.currency, CASE WHEN v_op = 'deposit' THEN v_to.currency ELSE v_from.currency END);

    -- Who may act, and on what. Another user's account or transfer is not found for a depositor.
    IF v_op = 'transfer' THEN
      IF v_from.id IS NULL OR (p_roles[i] <> 'banker' AND v_from.owner IS DISTINCT FROM p_actors[i]) THEN
        v_error := 'account_not_found'; v_detail := v_from_ids[i]::text;
      ELSIF v_to.id IS NULL OR v_to.is_system THEN
        v_error := 'account_not_found'; v_detail := v_to_ids[i]::text;
      ELSIF v_from.owner IS DISTINCT FROM p_actors[i] THEN
        v_error := 'permission_denied'; v_detail := v_from.id::text;
      END IF;
    ELSIF v_op = 'deposit' THEN
      IF v_to.id IS NULL OR v_to.is_system OR (p_roles[i] <> 'banker' AND v_to.owner IS DISTINCT FROM p_actors[i]) THEN
        v_error := 'account_not_found'; v_detail := v_to_ids[i]::text;
      END IF;
    ELSIF v_op = 'withdrawal' THEN
      IF v_from.id IS NULL OR v_from.is_system OR (p_roles[i] <> 'banker' AND v_from.owner IS DISTINCT FROM p_actors[i]) THEN
        v_error := 'account_not_found'; v_detail := v_from_ids[i]::text;
      ELSIF v_from.owner IS DISTINCT FROM p_actors[i] THEN
        v_error := 'permission_denied'; v_detail := v_from.id::text;
      END IF;
    ELSIF p_roles[i] <> 'banker' AND v_from.owner IS DISTINCT FROM p_actors[i] AND v_to.owner IS DISTINCT FROM p_actors[i] THEN
      v_error := 'transfer_not_found'; v_detail := p_targets[i]::text;
    ELSIF v_op IN ('capture', 'void') THEN
      -- Only the sender (or a banker) settles a hold.
      IF v_target.expires_at IS NULL THEN
        v_error := 'transfer_not_pending'; v_detail := v_target.id || ':' || v_target.status;
      ELSIF p_roles[i] <> 'banker' AND v_from.owner IS DISTINCT FROM p_actors[i] THEN
        v_error := 'permission_denied'; v_detail := v_from.id::text;
      ELSIF v_target.status <> 'pending' THEN
        v_error := 'transfer_not_pending'; v_detail := v_target.id || ':' || v_target.status;
      ELSIF v_target.expires_at <= v_now THEN
        -- Expiry is enforced at the moment of use: the hold is expired now, whether or not the sweep ran.
        UPDATE transfers t SET status = 'expired', resolved_at = t.expires_at WHERE t.id = v_target.id AND t.status = 'pending';
        v_error := 'hold_expired'; v_detail := v_target.id::text;
      ELSIF v_op = 'capture' THEN
        v_amount := coalesce(v_amount, v_target.amount);
        IF v_amount > v_target.amount THEN
          v_error := 'amount_out_of_range'; v_detail := 'must be at most the held amount, ' || v_target.amount || ' minor units';
        END IF;
      END IF;
    ELSIF v_op = 'reversal' THEN
      IF p_roles[i] <> 'banker' THEN
        v_error := 'permission_denied'; v_detail := v_target.id::text;
      ELSIF v_target.kind = 'reversal' THEN
        v_error := 'transfer_not_reversible'; v_detail := v_target.id || ':a reversal cannot be reversed';
      ELSIF v_target.status <> 'posted' THEN
        v_error := 'transfer_not_reversible'; v_detail := v_target.id || ':it moved no money (it is ' || v_target.status || ')';
      ELSIF EXISTS (SELECT 1 FROM transfers r WHERE r.reverses_transfer_id = v_target.id) THEN
        v_error := 'transfer_already_reversed'; v_detail := v_target.id::text;
      ELSE
        SELECT coalesce(sum(r.amount), 0) INTO v_refunded FROM transfers r WHERE r.refunds_transfer_id = v_target.id;
        v_amount := coalesce(v_target.captured_amount, v_target.amount) - v_refunded;
        IF v_amount <= 0 THEN
          v_error := 'transfer_not_reversible'; v_detail := v_target.id || ':it was refunded in full';
        END IF;
      END IF;
    ELSIF v_op = 'refund' THEN
      -- Only the receiver sends money back.
      IF v_from.owner IS DISTINCT FROM p_actors[i] THEN
        v_error := 'permission_denied'; v_detail := v_from.id::text;
      ELSIF v_target.kind <> 'transfer' THEN
        v_error := 'transfer_not_refundable'; v_detail := v_target.id || ':only a transfer between users can be refunded';
      ELSIF v_target.status <> 'posted' THEN
        v_error := 'transfer_not_refundable'; v_detail := v_target.id || ':it moved no money (it is ' || v_target.status || ')';
      ELSIF EXISTS (SELECT 1 FROM transfers r WHERE r.reverses_transfer_id = v_target.id) THEN
        v_error := 'transfer_not_refundable'; v_detail := v_target.id || ':it was reversed';
      ELSE
        SELECT coalesce(sum(r.amount), 0) INTO v_refunded FROM transfers r WHERE r.refunds_transfer_id = v_target.id;
        v_used := coalesce(v_target.captured_amount, v_target.amount) - v_refunded;
        v_amount := coalesce(v_amount, v_used);
        IF v_used <= 0 OR v_amount > v_used THEN
          v_error := 'refund_exceeds_transfer'; v_detail := v_target.id || ':' || greatest(v_used, 0);
        END IF;
      END IF;
    END IF;

    -- The accounts' state. A void moves no money: it is allowed on any account. A banker's
    -- reversal is allowed on a frozen account.
    IF v_error IS NULL AND v_op <> 'void' THEN
      IF v_from.status = 'closed' OR (v_from.status = 'frozen' AND v_op <> 'reversal') THEN
        v_error := 'account_' || v_from.status; v_detail := v_from.id::text;
      ELSIF v_to.status = 'closed' OR (v_to.status = 'frozen' AND v_op <> 'reversal') THEN
        v_error := 'account_' || v_to.status; v_detail := v_to.id::text;
      ELSIF v_op = 'transfer' AND (v_from.currency <> v_currency OR v_to.currency <> v_currency) THEN
        v_error := 'currency_mismatch';
        v_detail := format('currency mismatch: from %s to %s, request %s', v_from.currency, v_to.currency, v_currency);
      END IF;
    END IF;

    -- Funds: a user account spends at most its available balance (its balance less its active
    -- holds). A capture spends its own hold, so it only needs the balance.
    IF v_error IS NULL AND NOT v_from.is_system AND v_op NOT IN ('void', 'capture') THEN
      SELECT coalesce(sum(h.amount), 0), coalesce(sum(h.amount) FILTER (WHERE h.created_at <= v_window), 0)
        INTO v_held, v_held_old
        FROM transfers h WHERE h.from_account_id = v_from.id AND h.status = 'pending' AND h.expires_at > v_now;
      IF v_from.balance - v_held < v_amount THEN
        v_error := 'insufficient_funds'; v_detail := v_from.id::text;
      END IF;
    ELSIF v_error IS NULL AND v_op = 'capture' AND v_from.balance < v_amount THEN
      v_error := 'insufficient_funds'; v_detail := v_from.id::text;
    END IF;
    IF v_error IS NULL AND v_op NOT IN ('void')
       AND (v_to.balance > 9223372036854775807 - v_amount OR v_from.balance < -9223372036854775807 + v_amount) THEN
      v_error := 'amount_out_of_range'; v_detail := 'amount would overflow an account balance';
    END IF;

    -- Limits, inside the same locks as the movement: no two concurrent movements pass one together.
    IF v_error IS NULL AND v_op = 'deposit' AND p_roles[i] <> 'banker' THEN
      v_deposit := v_amount;
      IF p_deposit_max IS NOT NULL AND v_amount > p_deposit_max THEN
        v_error := 'limit_exceeded'; v_detail := 'deposit_max_amount:' || p_deposit_max;
      ELSIF p_deposit_daily IS NOT NULL THEN
        SELECT t.to_deposit_total INTO v_cum FROM transfers t
         WHERE t.to_account_id = v_to.id AND t.created_at <= v_window ORDER BY t.created_at DESC, t.id DESC LIMIT 1;
        v_used := v_to.deposit_total - coalesce(v_cum, 0);
        -- The same user's accounts in this currency closed within the day (one open at a time).
        v_used := v_used + (SELECT coalesce(sum(t.amount), 0) FROM accounts c JOIN transfers t ON t.to_account_id = c.id
                             WHERE c.owner = v_to.owner AND c.currency = v_to.currency AND c.id <> v_to.id
                               AND c.status = 'closed' AND c.closed_at > v_window
                               AND t.kind = 'deposit' AND t.initiated_by = c.owner AND t.created_at > v_window);
        IF v_used + v_amount > p_deposit_daily THEN
          v_error := 'limit_exceeded'; v_detail := 'deposit_daily_limit:' || greatest(p_deposit_daily - v_used, 0);
        END IF;
      END IF;
    ELSIF v_error IS NULL AND v_op IN ('transfer', 'withdrawal') THEN
      v_outflow := v_amount;
      IF p_outgoing_daily IS NOT NULL THEN
        SELECT t.from_outflow_total INTO v_cum FROM transfers t
         WHERE t.from_account_id = v_from.id AND t.created_at <= v_window ORDER BY t.created_at DESC, t.id DESC LIMIT 1;
        -- Counted at creation: posted movements and holds of the last 24 hours, plus older holds still active.
        v_used := v_from.outflow_total - coalesce(v_cum, 0) + v_held_old;
        IF v_used + v_amount > p_outgoing_daily THEN
          -- Near the limit, exactly: holds of the window count only what they did not release.
          SELECT coalesce(sum(CASE
                   WHEN h.status = 'pending' AND h.expires_at <= v_now THEN h.amount
                   WHEN h.status IN ('voided', 'expired') THEN h.amount
                   WHEN h.status = 'posted' THEN h.amount - h.captured_amount
                   ELSE 0 END), 0)
            INTO v_released
            FROM transfers h WHERE h.from_account_id = v_from.id AND h.expires_at IS NOT NULL AND h.created_at > v_window;
          v_used := v_used - v_released;
          IF v_used + v_amount > p_outgoing_daily THEN
            v_error := 'limit_exceeded'; v_detail := 'outgoing_daily_limit:' || greatest(p_outgoing_daily - v_used, 0);
          END IF;
        END IF;
      END IF;
    END IF;

    IF v_error IS NOT NULL THEN
      -- Give the claim back: nothing else was written for this operation (an expired hold found
      -- here stays expired: that is a fact, not part of the refused operation).
      DELETE FROM idempotency_keys k WHERE k.username = p_actors[i] AND k.key = p_keys[i];
      RETURN QUERY SELECT * FROM ledger_refusal(i, v_error, v_detail);
      CONTINUE;
    END IF;

    v_fe := NULL;
    v_te := NULL;
    v_fb := v_from.balance;
    v_tb := v_to.balance;
    IF v_op IN ('capture', 'void') THEN
      UPDATE transfers t
         SET status = CASE v_op WHEN 'capture' THEN 'posted' ELSE 'voided' END,
             captured_amount = CASE v_op WHEN 'capture' THEN v_amount END,
             resolved_at = v_now
       WHERE t.id = v_target.id AND t.status = 'pending'
      RETURNING * INTO v_t;
      GET DIAGNOSTICS v_changed = ROW_COUNT;
      IF v_changed = 0 THEN
        -- The sweep expired it after this call read it (its deadline passed meanwhile).
        DELETE FROM idempotency_keys k WHERE k.username = p_actors[i] AND k.key = p_keys[i];
        RETURN QUERY SELECT * FROM ledger_refusal(i, 'hold_expired', v_target.id::text);
        CONTINUE;
      END IF;
    ELSE
      INSERT INTO transfers AS t (from_account_id, to_account_id, amount, currency, kind, initiated_by, created_at,
                                  status, expires_at, memo, reference, metadata, destination,
                                  reverses_transfer_id, refunds_transfer_id, from_outflow_total, to_deposit_total)
      VALUES (v_from.id, v_to.id, v_amount, v_currency,
              v_op, p_actors[i], v_now,
              CASE WHEN p_hold_ttls[i] IS NOT NULL THEN 'pending' ELSE 'posted' END,
              v_now + make_interval(secs => p_hold_ttls[i]),
              p_memos[i], p_references[i], p_metadata[i], p_destinations[i],
              CASE v_op WHEN 'reversal' THEN v_target.id END, CASE v_op WHEN 'refund' THEN v_target.id END,
              CASE WHEN v_from.is_system THEN NULL ELSE v_from.outflow_total + v_outflow END,
              CASE WHEN v_to.is_system THEN NULL ELSE v_to.deposit_total + v_deposit END)
      RETURNING * INTO v_t;
    END IF;

    IF v_t.status = 'posted' THEN
      -- The money moves: two entries, two balances (a capture's at the capture's time).
      v_fb := v_from.balance - v_amount;
      v_tb := v_to.balance + v_amount;
      INSERT INTO entries AS e (account_id, transfer_id, amount, created_at, balance_after)
      VALUES (v_from.id, v_t.id, -v_amount, v_now, v_fb) RETURNING e.id INTO v_fe;
      INSERT INTO entries AS e (account_id, transfer_id, amount, created_at, balance_after)
      VALUES (v_to.id, v_t.id, v_amount, v_now, v_tb) RETURNING e.id INTO v_te;
      UPDATE accounts a
         SET balance = a.balance + CASE WHEN a.id = v_from.id THEN -v_amount ELSE v_amount END,
             outflow_total = a.outflow_total + CASE WHEN a.id = v_from.id THEN v_outflow ELSE 0 END,
             deposit_total = a.deposit_total + CASE WHEN a.id = v_to.id THEN v_deposit ELSE 0 END
       WHERE a.id IN (v_from.id, v_to.id);
    ELSIF v_outflow > 0 THEN
      -- A hold placed: no money moves, the outgoing limit counts it.
      UPDATE accounts a SET outflow_total = a.outflow_total + v_outflow WHERE a.id = v_from.id;
    END IF;

    IF p_roles[i] = 'banker' AND v_op = 'deposit' THEN
      INSERT INTO audit_events (actor, action, target, reason)
      VALUES (p_actors[i], 'account_credited', 'account:' || v_to.id, coalesce(p_memos[i], 'credit'));
    ELSIF v_op = 'reversal' THEN
      INSERT INTO audit_events (actor, action, target, reason)
      VALUES (p_actors[i], 'transfer_reversed', 'transfer:' || v_target.id, coalesce(p_memos[i], 'reversal'));
    END IF;

    v_response := jsonb_build_object(
      'transfer_id', v_t.id, 'from_entry_id', v_fe, 'to_entry_id', v_te,
      'entries_at', CASE WHEN v_fe IS NULL THEN NULL ELSE v_now END,
      'from_balance', v_fb, 'to_balance', v_tb)
      || (to_jsonb(v_t) - ARRAY['id', 'resolved_at', 'from_outflow_total', 'to_deposit_total']);
    UPDATE idempotency_keys k SET transfer_id = v_t.id, response = v_response
     WHERE k.username = p_actors[i] AND k.key = p_keys[i];
    RETURN QUERY SELECT * FROM ledger_answer(i, v_response, false, p_actors[i]);
  END LOOP;
END;
$$;

-- 6. The worker's sweep: pending holds past their deadline become expired (at their deadline),
--    oldest first, at most p_limit per call. It takes no account lock and skips rows a capture or
--    void is changing, so it never waits and never deadlocks; the conditional UPDATEs on `status`
--    make sure each hold is settled once. Expiry is already enforced wherever a hold is used or
--    read; the sweep only makes the stored status say so.
CREATE FUNCTION ledger_expire_holds(p_limit int) RETURNS int LANGUAGE sql AS $$
  WITH due AS (
    SELECT t.id FROM transfers t WHERE t.status = 'pending' AND t.expires_at <= clock_timestamp()
     ORDER BY t.expires_at LIMIT p_limit FOR UPDATE SKIP LOCKED
  ), expired AS (
    UPDATE transfers t SET status = 'expired', resolved_at = t.expires_at
      FROM due WHERE t.id = due.id AND t.status = 'pending'
    RETURNING t.id
  )
  SELECT count(*)::int FROM expired
$$;

-- 7. The previous release's entry points, now ledger_apply() underneath (same answers, and the
--    holds, frozen accounts and settlement accounts of this release respected). Without limits:
--    the previous release had none, and it only runs during a rolling deploy.
CREATE OR REPLACE FUNCTION ledger_move_batch(
  p_actors text[], p_roles text[], p_keys text[], p_hashes text[], p_operations text[],
  p_from_account_id bigint[], p_to_account_id bigint[], p_amounts bigint[], p_currencies text[]
)
RETURNS TABLE (
  idx int, transfer_id bigint, from_account_id bigint, to_account_id bigint, amount bigint, currency text,
  kind text, created_at timestamptz, from_entry_id bigint, to_entry_id bigint, from_balance bigint,
  to_balance bigint, replayed boolean, error_code text, error_detail text
)
LANGUAGE sql AS $$
  SELECT a.idx, a.transfer_id, a.from_account_id, a.to_account_id, a.amount, a.currency, a.kind, a.created_at,
         a.from_entry_id, a.to_entry_id, a.from_balance, a.to_balance, a.replayed, a.error_code, a.error_detail
    FROM ledger_apply(
      p_actors, p_roles, p_keys, p_hashes, p_operations, p_from_account_id, p_to_account_id, p_amounts, p_currencies,
      array_fill(NULL::bigint, ARRAY[coalesce(array_length(p_actors, 1), 0)]),
      array_fill(NULL::int, ARRAY[coalesce(array_length(p_actors, 1), 0)]),
      array_fill(NULL::text, ARRAY[coalesce(array_length(p_actors, 1), 0)]),
      array_fill(NULL::text, ARRAY[coalesce(array_length(p_actors, 1), 0)]),
      array_fill(NULL::jsonb, ARRAY[coalesce(array_length(p_actors, 1), 0)]),
      array_fill(NULL::text, ARRAY[coalesce(array_length(p_actors, 1), 0)]),
      NULL, NULL, NULL) a
   ORDER BY a.idx
$$;

CREATE OR REPLACE FUNCTION ledger_move(
  p_actor text, p_actor_role text, p_idempotency_key text, p_request_hash text, p_operation text,
  p_from_account_id bigint, p_to_account_id bigint, p_amount bigint, p_currency text,
  OUT transfer_id bigint, OUT from_account_id bigint, OUT to_account_id bigint, OUT amount bigint,
  OUT currency text, OUT kind text, OUT created_at timestamptz, OUT from_entry_id bigint,
  OUT to_entry_id bigint, OUT from_balance bigint, OUT to_balance bigint, OUT replayed boolean,
  OUT error_code text, OUT error_detail text
)
LANGUAGE sql AS $$
  SELECT b.transfer_id, b.from_account_id, b.to_account_id, b.amount, b.currency, b.kind, b.created_at,
         b.from_entry_id, b.to_entry_id, b.from_balance, b.to_balance, b.replayed, b.error_code, b.error_detail
    FROM ledger_move_batch(
      ARRAY[p_actor], ARRAY[p_actor_role], ARRAY[p_idempotency_key], ARRAY[p_request_hash], ARRAY[p_operation],
      ARRAY[p_from_account_id], ARRAY[p_to_account_id], ARRAY[p_amount], ARRAY[p_currency]) b
$$;
