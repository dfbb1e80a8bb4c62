-- Group commit: the money movements a process has waiting at one moment, as one call and one
-- commit. Each movement keeps exactly the semantics of ledger_move() (migration 0004): its own
-- idempotency claim, its own refusal (a refused movement never fails its neighbours), its own
-- answer. The arrays are the movements, one index per movement; the answer has one row per
-- movement, `idx` naming it (1-based).
--
-- Order of work, chosen so that batches from many processes (and single ledger_move() calls)
-- can never deadlock one another:
--   1. idempotency claims, in (actor, key) order. A claim can wait on another transaction's claim
--      of the same key; taking them in one global order means those waits never form a cycle.
--      A key already committed is answered here: replayed, or refused as idempotency_conflict.
--   2. every account the claimed movements touch, locked in ascending id order in one statement
--      (LockRows runs above the Sort, so rows are locked in id order). Account-lock waits happen
--      only after a transaction holds all its claims, so no wait cycle mixes the two.
--   3. the movements in the order given, each checked against the balances as the movements
--      before it in this batch left them: a hot pair's transfers share one transaction instead of
--      queueing on its row locks.
-- Refusals are the names ledger_move() uses, plus amount_out_of_range where ledger_move() would
-- raise a bigint overflow (numeric_value_out_of_range): here it must not fail the neighbours.
-- A key that appears twice in one batch is a caller error (the batcher never sends that): it
-- raises, the whole batch rolls back, and the caller retries each movement on its own.
CREATE FUNCTION ledger_move_batch(
  p_actors          text[],
  p_roles           text[],
  p_keys            text[],
  p_hashes          text[],
  p_operations      text[],    -- 'transfer' or 'deposit'
  p_from_account_id bigint[],  -- NULL for a deposit: the currency's funding account pays
  p_to_account_id   bigint[],
  p_amounts         bigint[],
  p_currencies      text[]     -- NULL for a deposit: the receiving account's currency
)
RETURNS TABLE (
  idx             int,
  transfer_id     bigint,
  from_account_id bigint,
  to_account_id   bigint,
  amount          bigint,
  currency        text,
  kind            text,
  created_at      timestamptz,
  from_entry_id   bigint,
  to_entry_id     bigint,
  from_balance    bigint,
  to_balance      bigint,
  replayed        boolean,
  error_code      text,
  error_detail    text
)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  n           int := coalesce(array_length(p_actors, 1), 0);
  i           int;
  v_claimed   boolean;
  v_open      boolean[];   -- claimed and not yet answered
  v_from_ids  bigint[] := p_from_account_id;
  v_currency  text[] := p_currencies;
  v_ids       bigint[];
  v_deposit_currency text;
  v_funding_id bigint;
  v_existing  idempotency_keys%ROWTYPE;
  v_from      accounts%ROWTYPE;
  v_to        accounts%ROWTYPE;
  v_now       timestamptz := now();
  v_amount    bigint;
  v_tid       bigint;
  v_fe        bigint;
  v_te        bigint;
  v_error     text;
  v_detail    text;
  -- The answer, one slot per movement.
  r_tid       bigint[];
  r_from      bigint[];
  r_to        bigint[];
  r_amount    bigint[];
  r_currency  text[];
  r_kind      text[];
  r_at        timestamptz[];
  r_fe        bigint[];
  r_te        bigint[];
  r_fb        bigint[];
  r_tb        bigint[];
  r_replayed  boolean[];
  r_error     text[];
  r_detail    text[];
BEGIN
  IF n = 0 THEN RETURN; END IF;
  IF coalesce(array_length(p_roles, 1), 0) <> n OR coalesce(array_length(p_keys, 1), 0) <> n
     OR coalesce(array_length(p_hashes, 1), 0) <> n OR coalesce(array_length(p_operations, 1), 0) <> n
     OR coalesce(array_length(p_from_account_id, 1), 0) <> n OR coalesce(array_length(p_to_account_id, 1), 0) <> n
     OR coalesce(array_length(p_amounts, 1), 0) <> n OR coalesce(array_length(p_currencies, 1), 0) <> n THEN
    RAISE EXCEPTION 'ledger_move_batch: all arrays must have % elements', n;
  END IF;
  v_open := array_fill(false, ARRAY[n]);
  r_tid := array_fill(NULL::bigint, ARRAY[n]);      r_from := r_tid;   r_to := r_tid;   r_amount := r_tid;
  r_fe := r_tid;   r_te := r_tid;   r_fb := r_tid;   r_tb := r_tid;
  r_currency := array_fill(NULL::text, ARRAY[n]);   r_kind := r_currency;   r_error := r_currency;   r_detail := r_currency;
  r_at := array_fill(NULL::timestamptz, ARRAY[n]);
  r_replayed := array_fill(NULL::boolean, ARRAY[n]);

  -- 1. Idempotency claims in (actor, key) order.
  FOR i IN SELECT s FROM generate_subscripts(p_actors, 1) AS s ORDER BY p_actors[s], p_keys[s] LOOP
    INSERT INTO idempotency_keys (username, key, operation, request_hash)
    VALUES (p_actors[i], p_keys[i], p_operations[i], p_hashes[i])
    ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS v_claimed = ROW_COUNT;
    IF v_claimed THEN
      v_open[i] := true;
      CONTINUE;
    END IF;
    SELECT * INTO STRICT v_existing FROM idempotency_keys k WHERE k.username = p_actors[i] AND k.key = p_keys[i];
    IF v_existing.request_hash <> p_hashes[i] OR v_existing.operation <> p_operations[i] THEN
      r_error[i] := 'idempotency_conflict';
      r_detail[i] := 'idempotency key reused with a different request';
    ELSIF v_existing.response IS NULL THEN
      RAISE EXCEPTION 'ledger_move_batch: idempotency key % of % appears twice in one batch', p_keys[i], p_actors[i];
    ELSE
      r_tid[i]      := (v_existing.response->>'transfer_id')::bigint;
      r_from[i]     := (v_existing.response->>'from_account_id')::bigint;
      r_to[i]       := (v_existing.response->>'to_account_id')::bigint;
      r_amount[i]   := (v_existing.response->>'amount')::bigint;
      r_currency[i] := v_existing.response->>'currency';
      r_kind[i]     := v_existing.response->>'kind';
      r_at[i]       := (v_existing.response->>'created_at')::timestamptz;
      r_fe[i]       := (v_existing.response->>'from_entry_id')::bigint;
      r_te[i]       := (v_existing.response->>'to_entry_id')::bigint;
      r_fb[i]       := (v_existing.response->>'from_balance')::bigint;
      r_tb[i]       := (v_existing.response->>'to_balance')::bigint;
      r_replayed[i] := true;
    END IF;
  END LOOP;

  -- A deposit is paid by the funding account of the receiving account's currency.
  FOR i IN 1..n LOOP
    CONTINUE WHEN NOT v_open[i] OR p_operations[i] <> 'deposit';
    SELECT a.currency INTO v_deposit_currency FROM accounts a WHERE a.id = p_to_account_id[i];
    IF FOUND THEN
      SELECT a.id INTO STRICT v_funding_id FROM accounts a WHERE a.is_system AND a.currency = v_deposit_currency;
      v_currency[i] := v_deposit_currency;
      v_from_ids[i] := v_funding_id;
    ELSE
      r_error[i] := 'account_not_found';
      r_detail[i] := p_to_account_id[i]::text;
      v_open[i] := false;
      DELETE FROM idempotency_keys k WHERE k.username = p_actors[i] AND k.key = p_keys[i];
    END IF;
  END LOOP;

  -- 2. Every account the open movements touch, locked in ascending id order.
  v_ids := ARRAY(
    SELECT DISTINCT x FROM (
      SELECT unnest(ARRAY[v_from_ids[s], p_to_account_id[s]]) AS x FROM generate_subscripts(p_actors, 1) AS s WHERE v_open[s]
    ) ids WHERE x IS NOT NULL ORDER BY x);
  PERFORM 1 FROM accounts a WHERE a.id = ANY (v_ids) ORDER BY a.id FOR UPDATE;
  -- The batch's time, taken with its accounts locked (as ledger_move() does): an account's history
  -- in (created_at, id) order is the order its balances were applied in.
  v_now := clock_timestamp();

  -- 3. The movements in the order given, on the balances the earlier ones left.
  FOR i IN 1..n LOOP
    CONTINUE WHEN NOT v_open[i];
    v_amount := p_amounts[i];
    v_error := NULL;
    v_from := NULL;
    v_to := NULL;
    SELECT * INTO v_from FROM accounts a WHERE a.id = v_from_ids[i];
    SELECT * INTO v_to FROM accounts a WHERE a.id = p_to_account_id[i];
    -- The rules of ledger_move(), in the same order, with the same answers.
    IF v_from.id IS NULL OR (p_roles[i] <> 'banker' AND p_operations[i] = 'transfer' AND v_from.owner IS DISTINCT FROM p_actors[i]) THEN
      v_error := 'account_not_found'; v_detail := v_from_ids[i]::text;
    ELSIF v_to.id IS NULL OR (p_operations[i] = 'deposit' AND p_roles[i] <> 'banker' AND v_to.owner IS DISTINCT FROM p_actors[i]) THEN
      v_error := 'account_not_found'; v_detail := p_to_account_id[i]::text;
    ELSIF p_operations[i] = 'transfer' AND v_from.owner IS DISTINCT FROM p_actors[i] THEN
      v_error := 'permission_denied'; v_detail := v_from.id::text;
    ELSIF p_operations[i] = 'deposit' AND v_to.owner IS DISTINCT FROM p_actors[i] THEN
      v_error := 'permission_denied'; v_detail := v_to.id::text;
    ELSIF v_to.is_system THEN
      v_error := 'account_not_found'; v_detail := v_to.id::text;
    ELSIF v_from.status <> 'open' THEN
      v_error := CASE v_from.status WHEN 'frozen' THEN 'account_frozen' ELSE 'account_closed' END; v_detail := v_from.id::text;
    ELSIF v_to.status <> 'open' THEN
      v_error := CASE v_to.status WHEN 'frozen' THEN 'account_frozen' ELSE 'account_closed' END; v_detail := v_to.id::text;
    ELSIF v_from.currency <> v_currency[i] OR v_to.currency <> v_currency[i] THEN
      v_error := 'currency_mismatch';
      v_detail := format('currency mismatch: from %s to %s, request %s', v_from.currency, v_to.currency, v_currency[i]);
    ELSIF NOT v_from.is_system AND v_from.balance < v_amount THEN
      v_error := 'insufficient_funds'; v_detail := v_from.id::text;
    ELSIF v_to.balance > 9223372036854775807 - v_amount OR v_from.balance < -9223372036854775807 + v_amount THEN
      v_error := 'amount_out_of_range'; v_detail := 'amount would overflow an account balance';
    END IF;

    IF v_error IS NOT NULL THEN
      -- Give the claim back: nothing else was written for this movement.
      DELETE FROM idempotency_keys k WHERE k.username = p_actors[i] AND k.key = p_keys[i];
      r_error[i] := v_error;
      r_detail[i] := v_detail;
      CONTINUE;
    END IF;

    INSERT INTO transfers (from_account_id, to_account_id, amount, currency, kind, initiated_by, created_at)
    VALUES (v_from.id, v_to.id, v_amount, v_currency[i], p_operations[i], p_actors[i], v_now)
    RETURNING id INTO v_tid;
    INSERT INTO entries (account_id, transfer_id, amount, created_at, balance_after)
    VALUES (v_from.id, v_tid, -v_amount, v_now, v_from.balance - v_amount) RETURNING id INTO v_fe;
    INSERT INTO entries (account_id, transfer_id, amount, created_at, balance_after)
    VALUES (v_to.id, v_tid, v_amount, v_now, v_to.balance + v_amount) RETURNING id INTO v_te;
    UPDATE accounts a
       SET balance = a.balance + CASE WHEN a.id = v_from.id THEN -v_amount ELSE v_amount END
     WHERE a.id IN (v_from.id, v_to.id);

    r_tid[i] := v_tid;                r_from[i] := v_from.id;          r_to[i] := v_to.id;
    r_amount[i] := v_amount;          r_currency[i] := v_currency[i];  r_kind[i] := p_operations[i];
    r_at[i] := v_now;                 r_fe[i] := v_fe;                 r_te[i] := v_te;
    r_fb[i] := v_from.balance - v_amount;
    r_tb[i] := v_to.balance + v_amount;
    r_replayed[i] := false;

    -- The same stored answer ledger_move() writes, so either function can replay the other's.
    UPDATE idempotency_keys k
       SET transfer_id = v_tid,
           response = jsonb_build_object(
             'transfer_id', v_tid::text, 'from_account_id', v_from.id::text,
             'to_account_id', v_to.id::text, 'amount', v_amount::text, 'currency', v_currency[i],
             'kind', p_operations[i], 'created_at', v_now, 'from_entry_id', v_fe::text,
             'to_entry_id', v_te::text, 'from_balance', r_fb[i]::text, 'to_balance', r_tb[i]::text)
     WHERE k.username = p_actors[i] AND k.key = p_keys[i];
  END LOOP;

  RETURN QUERY
    SELECT t.* FROM unnest(
      ARRAY(SELECT generate_series(1, n)), r_tid, r_from, r_to, r_amount, r_currency, r_kind, r_at,
      r_fe, r_te, r_fb, r_tb, r_replayed, r_error, r_detail
    ) AS t(idx, transfer_id, from_account_id, to_account_id, amount, currency, kind, created_at,
           from_entry_id, to_entry_id, from_balance, to_balance, replayed, error_code, error_detail);
END;
$$;
