-- Group commit that writes per batch, not per operation (issue 10, "the rest of the hot path,
-- fixed by measurement"). A CPU profile of PostgreSQL running ledger_apply() in batches of 16
-- (perf over pgbench calling the real function) showed most of its time around the money rather
-- than in it: every statement re-reads and re-plans the CHECK constraints of its table
-- (ExecConstraints: stringToNode, ExecPrepareExpr; transfers' alone are 16 kB of node text), and
-- every transfer fired a plpgsql row trigger that wrote its event, which fired 0018's trigger in
-- turn. Per operation, ledger_apply() of 0009 ran two statements on idempotency_keys, two reads
-- of accounts, one write of transfers, two of entries, one of accounts and the event trigger.
--
-- Now a batch writes each table once:
-- 1. its idempotency claims are one INSERT ... ON CONFLICT DO NOTHING, in (actor, key) order as
--    before (two batches never wait on each other's keys in a cycle);
-- 2. its accounts are read once, right after they are locked (in ascending id order, as before),
--    and the batch keeps their balances and totals as its operations change them;
-- 3. a transfer's id and its entries' ids are taken from their sequences when the operation runs,
--    with its accounts locked (so an account's history in (created_at, id) order is still the
--    order its balances were applied in), and its rows are kept;
-- 4. at the end: the transfers in one INSERT, the entries in one, the changed accounts in one
--    UPDATE (the CHECKs, balance_nonnegative included, see every row as before), the keys'
--    answers in one UPDATE, and the events of the transfers it created in one INSERT, in id
--    order, born handled as 0018 decides.
--
-- What an operation reads that an earlier one of the same batch changed is taken from the batch
-- itself: balances and totals (2), the holds it placed (against the available balance), and the
-- transfers it reversed or refunded (a second reversal is refused, refunds add up). A capture,
-- void or expiry still changes its hold's row at once: the hold was committed by an earlier batch
-- (its id is known only then), and the row trigger, now on status changes only, writes its event.
-- Every rule, refusal, lock order and answer is the one of 0009.

-- Born webhooked, per account (0018 decided by type alone): with one webhook anywhere asking for
-- transfer.posted, every transfer's event waited for the fan-out, which claimed and marked it (an
-- UPDATE that cannot be HOT) to write nothing for all but its owner's accounts. An event is now
-- born webhooked unless a webhook asks for its type and either covers all accounts or belongs to
-- the owner of one of its accounts: the fan-out's own rule (0015), less its two refinements that
-- can only refuse (the owner still a banker for all accounts, the webhook older than the event),
-- so nothing a webhook would receive is marked done early. Accounts never change owner.
CREATE FUNCTION events_wanted_by_webhook(p_type text, p_account_ids bigint[]) RETURNS boolean
LANGUAGE sql STABLE AS $$
  SELECT EXISTS (
    SELECT 1 FROM webhooks w
     WHERE p_type = ANY (w.event_types)
       AND (w.all_accounts OR EXISTS (SELECT 1 FROM accounts a WHERE a.id = ANY (p_account_ids) AND a.owner = w.owner)))
$$;

-- The types the notifier sends no email for (0018's list, named once for the trigger below and
-- ledger_apply()'s own insert).
CREATE FUNCTION events_born_notified(p_type text) RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
  SELECT p_type IN ('transfer.pending', 'transfer.voided', 'account.frozen', 'account.unfrozen')
$$;

CREATE OR REPLACE FUNCTION events_born_handled() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF events_born_notified(NEW.type) THEN
    NEW.notified_at := coalesce(NEW.notified_at, NEW.created_at);
  END IF;
  IF NEW.webhooked_at IS NULL AND NOT events_wanted_by_webhook(NEW.type, NEW.account_ids) THEN
    NEW.webhooked_at := NEW.created_at;
  END IF;
  RETURN NEW;
END;
$$;

-- The row trigger of 0013 now fires on status changes only (see the trailer); its INSERT branch
-- goes with it: ledger_apply() names a new transfer's event itself.
CREATE OR REPLACE FUNCTION events_from_transfer() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  v_type text;
BEGIN
  IF OLD.status = 'pending' AND NEW.status IS DISTINCT FROM OLD.status THEN
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

CREATE OR REPLACE FUNCTION ledger_apply(
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
  v_dup       record;
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
  -- The batch's accounts, locked, in ascending id order (v_ids), changed here and written once.
  v_accts     accounts[];
  v_pf        int;
  v_pt        int;
  -- What the batch writes once at its end (see the header of 0019).
  v_tseq      regclass := pg_get_serial_sequence('transfers', 'id')::regclass;
  v_eseq      regclass := pg_get_serial_sequence('entries', 'id')::regclass;
  v_rows      transfers[] := '{}';
  v_ents      entries[] := '{}';
  v_e         entries%ROWTYPE;
  v_done_idx  int[] := '{}';
  v_done_tid  bigint[] := '{}';
  v_done_resp jsonb[] := '{}';
  -- What the batch did that its own later operations must see before it is written.
  v_bheld     bigint[];
  v_rev_targets bigint[] := '{}';
  v_ref_targets bigint[] := '{}';
  v_ref_amounts bigint[] := '{}';
  v_ts        timestamptz;
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

  -- 1. Idempotency claims in (actor, key) order, all in one statement (rows are inserted in the
  --    order the SELECT sorts them, as the loop of 0009 did); then the keys that were already there.
  WITH claimed AS (
    INSERT INTO idempotency_keys AS k (username, key, operation, request_hash)
    SELECT p_actors[s], p_keys[s], p_operations[s], p_hashes[s]
      FROM generate_subscripts(p_actors, 1) AS s ORDER BY p_actors[s], p_keys[s]
    ON CONFLICT DO NOTHING
    RETURNING k.username, k.key
  )
  SELECT array_agg(EXISTS (SELECT 1 FROM claimed c WHERE c.username = p_actors[s] AND c.key = p_keys[s]) ORDER BY s)
    INTO v_open
    FROM generate_subscripts(p_actors, 1) AS s;
  -- A key claimed now that the batch names twice: the second would find its claim unanswered.
  SELECT p_actors[s] AS actor, p_keys[s] AS key INTO v_dup
    FROM generate_subscripts(p_actors, 1) AS s WHERE v_open[s]
   GROUP BY p_actors[s], p_keys[s] HAVING count(*) > 1 LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'ledger_apply: idempotency key % of % appears twice in one batch', v_dup.key, v_dup.actor;
  END IF;
  FOR i IN SELECT s FROM generate_subscripts(p_actors, 1) AS s WHERE NOT v_open[s] ORDER BY p_actors[s], p_keys[s] LOOP
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
  -- Read once, locked: from here on the batch keeps its accounts' balances and totals itself.
  SELECT array_agg(a ORDER BY a.id), array_agg(a.id ORDER BY a.id) INTO v_accts, v_ids
    FROM accounts a WHERE a.id = ANY (v_ids);
  v_bheld := array_fill(0::bigint, ARRAY[coalesce(cardinality(v_ids), 0)]);
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
    v_pf := array_position(v_ids, v_from_ids[i]);
    v_pt := array_position(v_ids, v_to_ids[i]);
    IF v_pf IS NOT NULL THEN v_from := v_accts[v_pf]; END IF;
    IF v_pt IS NOT NULL THEN v_to := v_accts[v_pt]; END IF;
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
      ELSIF v_target.id = ANY (v_rev_targets) OR EXISTS (SELECT 1 FROM transfers r WHERE r.reverses_transfer_id = v_target.id) THEN
        v_error := 'transfer_already_reversed'; v_detail := v_target.id::text;
      ELSE
        SELECT coalesce(sum(r.amount), 0) INTO v_refunded FROM transfers r WHERE r.refunds_transfer_id = v_target.id;
        v_refunded := v_refunded + coalesce((SELECT sum(x.amount) FROM unnest(v_ref_targets, v_ref_amounts) AS x (target, amount)
                                              WHERE x.target = v_target.id), 0);
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
      ELSIF v_target.id = ANY (v_rev_targets) OR EXISTS (SELECT 1 FROM transfers r WHERE r.reverses_transfer_id = v_target.id) THEN
        v_error := 'transfer_not_refundable'; v_detail := v_target.id || ':it was reversed';
      ELSE
        SELECT coalesce(sum(r.amount), 0) INTO v_refunded FROM transfers r WHERE r.refunds_transfer_id = v_target.id;
        v_refunded := v_refunded + coalesce((SELECT sum(x.amount) FROM unnest(v_ref_targets, v_ref_amounts) AS x (target, amount)
                                              WHERE x.target = v_target.id), 0);
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
      -- The holds this batch placed on it (created now: none is older than the window).
      v_held := v_held + v_bheld[v_pf];
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
      -- The row as 0009 inserted it, kept until the batch writes all of its rows at once; its id
      -- taken now, with its accounts locked, so each account's ids still follow its balances.
      v_t := NULL;
      v_t.id := nextval(v_tseq);
      v_t.from_account_id := v_from.id;
      v_t.to_account_id := v_to.id;
      v_t.amount := v_amount;
      v_t.currency := v_currency;
      v_t.kind := v_op;
      v_t.initiated_by := p_actors[i];
      v_t.created_at := v_now;
      v_t.status := CASE WHEN p_hold_ttls[i] IS NOT NULL THEN 'pending' ELSE 'posted' END;
      v_t.expires_at := v_now + make_interval(secs => p_hold_ttls[i]);
      v_t.memo := p_memos[i];
      v_t.reference := p_references[i];
      v_t.metadata := p_metadata[i];
      v_t.destination := p_destinations[i];
      v_t.reverses_transfer_id := CASE v_op WHEN 'reversal' THEN v_target.id END;
      v_t.refunds_transfer_id := CASE v_op WHEN 'refund' THEN v_target.id END;
      v_t.from_outflow_total := CASE WHEN v_from.is_system THEN NULL ELSE v_from.outflow_total + v_outflow END;
      v_t.to_deposit_total := CASE WHEN v_to.is_system THEN NULL ELSE v_to.deposit_total + v_deposit END;
      v_rows := v_rows || v_t;
      IF v_t.status = 'pending' THEN
        v_bheld[v_pf] := v_bheld[v_pf] + v_amount;
      ELSIF v_op = 'reversal' THEN
        v_rev_targets := v_rev_targets || v_target.id;
      ELSIF v_op = 'refund' THEN
        v_ref_targets := v_ref_targets || v_target.id;
        v_ref_amounts := v_ref_amounts || v_amount;
      END IF;
    END IF;

    IF v_t.status = 'posted' THEN
      -- The money moves: two entries, two balances (a capture's at the capture's time), kept
      -- until the end of the batch.
      v_fb := v_from.balance - v_amount;
      v_tb := v_to.balance + v_amount;
      v_fe := nextval(v_eseq);
      v_te := nextval(v_eseq);
      v_e.id := v_fe; v_e.account_id := v_from.id; v_e.transfer_id := v_t.id; v_e.amount := -v_amount;
      v_e.created_at := v_now; v_e.balance_after := v_fb;
      v_ents := v_ents || v_e;
      v_e.id := v_te; v_e.account_id := v_to.id; v_e.transfer_id := v_t.id; v_e.amount := v_amount;
      v_e.created_at := v_now; v_e.balance_after := v_tb;
      v_ents := v_ents || v_e;
      v_from.balance := v_fb;
      v_from.outflow_total := v_from.outflow_total + v_outflow;
      v_accts[v_pf] := v_from;
      v_to.balance := v_tb;
      v_to.deposit_total := v_to.deposit_total + v_deposit;
      v_accts[v_pt] := v_to;
    ELSIF v_outflow > 0 THEN
      -- A hold placed: no money moves, the outgoing limit counts it.
      v_from.outflow_total := v_from.outflow_total + v_outflow;
      v_accts[v_pf] := v_from;
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
    v_done_idx := v_done_idx || i;
    v_done_tid := v_done_tid || v_t.id;
    v_done_resp := v_done_resp || v_response;
    RETURN QUERY SELECT * FROM ledger_answer(i, v_response, false, p_actors[i]);
  END LOOP;

  -- 4. What the batch did, one statement a table: its transfers in id order, their entries, the
  --    balances and totals of the accounts it changed, each key's answer, and the events of the
  --    transfers it created (what the row trigger of 0013 wrote), born handled as 0018 decides.
  IF cardinality(v_rows) > 0 THEN
    INSERT INTO transfers AS t
      (id, from_account_id, to_account_id, amount, currency, kind, initiated_by, created_at, status,
       captured_amount, expires_at, resolved_at, memo, reference, metadata, destination,
       reverses_transfer_id, refunds_transfer_id, from_outflow_total, to_deposit_total)
    OVERRIDING SYSTEM VALUE
    SELECT r.id, r.from_account_id, r.to_account_id, r.amount, r.currency, r.kind, r.initiated_by, r.created_at, r.status,
           r.captured_amount, r.expires_at, r.resolved_at, r.memo, r.reference, r.metadata, r.destination,
           r.reverses_transfer_id, r.refunds_transfer_id, r.from_outflow_total, r.to_deposit_total
      FROM unnest(v_rows) AS r ORDER BY r.id;
  END IF;
  IF cardinality(v_ents) > 0 THEN
    INSERT INTO entries AS e (id, account_id, transfer_id, amount, created_at, balance_after) OVERRIDING SYSTEM VALUE
    SELECT x.id, x.account_id, x.transfer_id, x.amount, x.created_at, x.balance_after
      FROM unnest(v_ents) AS x ORDER BY x.id;
  END IF;
  UPDATE accounts a
     SET balance = u.balance, outflow_total = u.outflow_total, deposit_total = u.deposit_total
    FROM unnest(v_accts) AS u
   WHERE a.id = u.id
     AND (a.balance, a.outflow_total, a.deposit_total) IS DISTINCT FROM (u.balance, u.outflow_total, u.deposit_total);
  UPDATE idempotency_keys k SET transfer_id = d.tid, response = d.resp
    FROM unnest(v_done_idx, v_done_tid, v_done_resp) AS d (i, tid, resp)
   WHERE k.username = p_actors[d.i] AND k.key = p_keys[d.i];
  IF cardinality(v_rows) > 0 THEN
    v_ts := clock_timestamp();
    INSERT INTO events (type, account_ids, transfer_id, data, created_at, notified_at, webhooked_at)
    SELECT x.type, ARRAY[t.from_account_id, t.to_account_id], t.id, to_jsonb(t), v_ts,
           CASE WHEN events_born_notified(x.type) THEN v_ts END,
           CASE WHEN NOT events_wanted_by_webhook(x.type, ARRAY[t.from_account_id, t.to_account_id]) THEN v_ts END
      FROM unnest(v_rows) AS t
     CROSS JOIN LATERAL (SELECT CASE
             WHEN t.status = 'pending' THEN 'transfer.pending'
             WHEN t.kind = 'withdrawal' THEN 'withdrawal.created'
             WHEN t.kind = 'reversal' THEN 'transfer.reversed'
             WHEN t.kind = 'refund' THEN 'transfer.refunded'
             ELSE 'transfer.posted'
           END AS type) x
     ORDER BY t.id;
  END IF;
END;
$$;

DROP TRIGGER transfers_events ON transfers;
CREATE TRIGGER transfers_events AFTER UPDATE OF status ON transfers
  FOR EACH ROW EXECUTE FUNCTION events_from_transfer();

DROP TRIGGER events_born_handled ON events;
CREATE TRIGGER events_born_handled BEFORE INSERT ON events
  FOR EACH ROW WHEN (NEW.webhooked_at IS NULL) EXECUTE FUNCTION events_born_handled();
