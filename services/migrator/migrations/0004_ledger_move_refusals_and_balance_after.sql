-- ledger_move() again, with three changes; 0002 stays as it was applied (migrations are
-- checksummed) and this replaces its function:
--   * a refusal is named: error_code carries a name (TigerBeetle's CreateTransferResult is the
--     model) instead of an opaque BK00x code, so it reads the same in the function, in the
--     TypeScript that maps it to a domain error, and in the metrics;
--   * every entry carries balance_after, its account's balance right after it (the column is added
--     and back-filled here), so a balance at any instant is one index read;
--   * created_at is taken once the accounts are locked (see step 4).
--
-- balance_after: the history of an account in (created_at, id) order is the order its balances
-- were applied in (step 4), so each entry's balance_after is the running sum of its account's
-- entries in that order. Existing entries are back-filled the same way.
ALTER TABLE entries ADD COLUMN balance_after bigint;
ALTER TABLE entries DISABLE TRIGGER entries_append_only;
UPDATE entries e
   SET balance_after = r.running
  FROM (SELECT id, sum(amount) OVER (PARTITION BY account_id ORDER BY created_at, id) AS running FROM entries) r
 WHERE e.id = r.id;
ALTER TABLE entries ENABLE TRIGGER entries_append_only;
ALTER TABLE entries ALTER COLUMN balance_after SET NOT NULL;
--
-- The whole money movement as one function, so a transfer or a deposit costs one round trip.
--
-- Rules, in order:
--   1. idempotency: claim (actor, key). A concurrent duplicate waits here on the primary key
--      until the first commits, then replays its stored response (or is refused with
--      idempotency_conflict when the same key came with a different request). If the first gave
--      its claim back, the duplicate proceeds and judges the request itself.
--   2. lock both accounts in ascending id order, always, in two statements: no deadlocks.
--   3. check existence, ownership, status, currency and funds on the locked rows.
--   4. one transfer row, two entries that sum to zero, both balances changed in one UPDATE.
--
-- A refused movement is an ordinary answer, not a fault: it comes back as a row with error_code
-- and error_detail set (all other columns null) instead of an exception. The pool gives up a
-- connection whenever a query fails (it cannot know what state a failed statement left behind),
-- and a reconnect costs about 20 times the transfer itself. Nothing is written before the rules
-- pass except the idempotency claim, which is deleted again before answering with a refusal.
-- Faults (bigint overflow, a CHECK backstop, lost connections) still raise.
--
-- The refusals (error_code) and what error_detail then holds:
--   account_not_found     the account id (also someone else's account, for a depositor)
--   permission_denied     the account id (a banker moving money out of or into an account not theirs)
--   account_closed        the account id
--   account_frozen        the account id (a banker froze it; 0008 adds the status)
--   currency_mismatch     the currencies of both accounts and of the request
--   insufficient_funds    the paying account's id
--   idempotency_conflict  a sentence: the key came earlier with a different request
-- shared/src/ledger/ledger.errors.ts holds the same list as a type and maps each to its error.
CREATE OR REPLACE FUNCTION ledger_move(
  p_actor           text,
  p_actor_role      text,
  p_idempotency_key text,
  p_request_hash    text,
  p_operation       text,    -- 'transfer' or 'deposit'
  p_from_account_id bigint,  -- NULL for a deposit: the currency's funding account pays
  p_to_account_id   bigint,
  p_amount          bigint,
  p_currency        text,    -- NULL for a deposit: the receiving account's currency
  OUT transfer_id     bigint,
  OUT from_account_id bigint,
  OUT to_account_id   bigint,
  OUT amount          bigint,
  OUT currency        text,
  OUT kind            text,
  OUT created_at      timestamptz,
  OUT from_entry_id   bigint,
  OUT to_entry_id     bigint,
  OUT from_balance    bigint,
  OUT to_balance      bigint,
  OUT replayed        boolean,
  OUT error_code      text,    -- NULL when the money moved (or was replayed)
  OUT error_detail    text
)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  v_claimed       boolean;
  v_existing      idempotency_keys%ROWTYPE;
  v_low           accounts%ROWTYPE;
  v_high          accounts%ROWTYPE;
  v_from          accounts%ROWTYPE;
  v_to            accounts%ROWTYPE;
  v_from_id       bigint := p_from_account_id;
  v_currency      text := p_currency;
  v_now           timestamptz := now();
  v_transfer_id   bigint;
  v_from_entry_id bigint;
  v_to_entry_id   bigint;
  v_response      jsonb;
  v_error         text;
  v_detail        text;
BEGIN
  -- 1. Idempotency claim.
  INSERT INTO idempotency_keys (username, key, operation, request_hash)
  VALUES (p_actor, p_idempotency_key, p_operation, p_request_hash)
  ON CONFLICT DO NOTHING;
  GET DIAGNOSTICS v_claimed = ROW_COUNT;
  IF NOT v_claimed THEN
    SELECT * INTO STRICT v_existing FROM idempotency_keys k WHERE k.username = p_actor AND k.key = p_idempotency_key;
    IF v_existing.request_hash <> p_request_hash OR v_existing.operation <> p_operation THEN
      error_code := 'idempotency_conflict';
      error_detail := 'idempotency key reused with a different request';
      RETURN;
    END IF;
    transfer_id     := (v_existing.response->>'transfer_id')::bigint;
    from_account_id := (v_existing.response->>'from_account_id')::bigint;
    to_account_id   := (v_existing.response->>'to_account_id')::bigint;
    amount          := (v_existing.response->>'amount')::bigint;
    currency        := v_existing.response->>'currency';
    kind            := v_existing.response->>'kind';
    created_at      := (v_existing.response->>'created_at')::timestamptz;
    from_entry_id   := (v_existing.response->>'from_entry_id')::bigint;
    to_entry_id     := (v_existing.response->>'to_entry_id')::bigint;
    from_balance    := (v_existing.response->>'from_balance')::bigint;
    to_balance      := (v_existing.response->>'to_balance')::bigint;
    replayed        := true;
    RETURN;
  END IF;

  -- A deposit is paid by the funding account of the receiving account's currency.
  IF p_operation = 'deposit' THEN
    SELECT a.currency INTO v_currency FROM accounts a WHERE a.id = p_to_account_id;
    IF FOUND THEN
      SELECT a.id INTO STRICT v_from_id FROM accounts a WHERE a.is_system AND a.currency = v_currency;
    ELSE
      v_error := 'account_not_found';
      v_detail := p_to_account_id::text;
    END IF;
  END IF;

  IF v_error IS NULL THEN
    -- 2. Lock in ascending id order.
    SELECT * INTO v_low FROM accounts a WHERE a.id = least(v_from_id, p_to_account_id) FOR UPDATE;
    SELECT * INTO v_high FROM accounts a WHERE a.id = greatest(v_from_id, p_to_account_id) FOR UPDATE;
    IF v_low.id = v_from_id THEN v_from := v_low; v_to := v_high; ELSE v_from := v_high; v_to := v_low; END IF;

    -- 3. Rules on the locked rows. A depositor never learns whether someone else's account
    --    exists (not found); a banker, who may read it, is told plainly it may not move it.
    IF v_from.id IS NULL OR (p_actor_role <> 'banker' AND p_operation = 'transfer' AND v_from.owner IS DISTINCT FROM p_actor) THEN
      v_error := 'account_not_found'; v_detail := v_from_id::text;
    ELSIF v_to.id IS NULL OR (p_operation = 'deposit' AND p_actor_role <> 'banker' AND v_to.owner IS DISTINCT FROM p_actor) THEN
      v_error := 'account_not_found'; v_detail := p_to_account_id::text;
    ELSIF p_operation = 'transfer' AND v_from.owner IS DISTINCT FROM p_actor THEN
      v_error := 'permission_denied'; v_detail := v_from.id::text;
    ELSIF p_operation = 'deposit' AND v_to.owner IS DISTINCT FROM p_actor THEN
      v_error := 'permission_denied'; v_detail := v_to.id::text;
    ELSIF v_to.is_system THEN
      v_error := 'account_not_found'; v_detail := v_to.id::text;
    ELSIF v_from.status <> 'open' THEN
      v_error := CASE v_from.status WHEN 'frozen' THEN 'account_frozen' ELSE 'account_closed' END; v_detail := v_from.id::text;
    ELSIF v_to.status <> 'open' THEN
      v_error := CASE v_to.status WHEN 'frozen' THEN 'account_frozen' ELSE 'account_closed' END; v_detail := v_to.id::text;
    ELSIF v_from.currency <> v_currency OR v_to.currency <> v_currency THEN
      v_error := 'currency_mismatch';
      v_detail := format('currency mismatch: from %s to %s, request %s', v_from.currency, v_to.currency, v_currency);
    ELSIF NOT v_from.is_system AND v_from.balance < p_amount THEN
      v_error := 'insufficient_funds'; v_detail := v_from.id::text;
    END IF;
  END IF;

  IF v_error IS NOT NULL THEN
    -- Give the claim back: nothing else was written, and a waiting duplicate may now proceed.
    DELETE FROM idempotency_keys k WHERE k.username = p_actor AND k.key = p_idempotency_key;
    error_code := v_error;
    error_detail := v_detail;
    RETURN;
  END IF;

  -- 4. Write: the transfer, its two entries, both balances. Their time is taken now, with the
  --    accounts locked, not at the transaction's start: the next movement on these accounts can only
  --    lock them after this one commits, so an account's history in (created_at, id) order is the
  --    order its balances were applied in, however long this transaction waited for its locks.
  v_now := clock_timestamp();
  INSERT INTO transfers (from_account_id, to_account_id, amount, currency, kind, initiated_by, created_at)
  VALUES (v_from.id, v_to.id, p_amount, v_currency, p_operation, p_actor, v_now)
  RETURNING id INTO v_transfer_id;

  INSERT INTO entries (account_id, transfer_id, amount, created_at, balance_after)
  VALUES (v_from.id, v_transfer_id, -p_amount, v_now, v_from.balance - p_amount) RETURNING id INTO v_from_entry_id;
  INSERT INTO entries (account_id, transfer_id, amount, created_at, balance_after)
  VALUES (v_to.id, v_transfer_id, p_amount, v_now, v_to.balance + p_amount) RETURNING id INTO v_to_entry_id;

  UPDATE accounts a
     SET balance = a.balance + CASE WHEN a.id = v_from.id THEN -p_amount ELSE p_amount END
   WHERE a.id IN (v_from.id, v_to.id);

  v_response := jsonb_build_object(
    'transfer_id', v_transfer_id::text, 'from_account_id', v_from.id::text,
    'to_account_id', v_to.id::text, 'amount', p_amount::text, 'currency', v_currency,
    'kind', p_operation, 'created_at', v_now, 'from_entry_id', v_from_entry_id::text,
    'to_entry_id', v_to_entry_id::text, 'from_balance', (v_from.balance - p_amount)::text,
    'to_balance', (v_to.balance + p_amount)::text);

  UPDATE idempotency_keys k
     SET transfer_id = v_transfer_id, response = v_response
   WHERE k.username = p_actor AND k.key = p_idempotency_key;

  transfer_id     := v_transfer_id;
  from_account_id := v_from.id;
  to_account_id   := v_to.id;
  amount          := p_amount;
  currency        := v_currency;
  kind            := p_operation;
  created_at      := v_now;
  from_entry_id   := v_from_entry_id;
  to_entry_id     := v_to_entry_id;
  from_balance    := v_from.balance - p_amount;
  to_balance      := v_to.balance + p_amount;
  replayed        := false;
END;
$$;
