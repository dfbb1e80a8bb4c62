-- The "is this event wanted by a webhook" check, planned once per connection (issue 10, "the
-- rest of the hot path, fixed by measurement"). 0019 wrote events_wanted_by_webhook() in SQL;
-- ledger_apply()'s INSERT INTO events calls it for the events it writes. PostgreSQL keeps no
-- plan of a SQL function's body between statements (this one is not inlined: it is a sub-select):
-- every statement that calls it parses and plans the body again (auto_explain shows it as its own
-- nested query in every call of ledger_apply()); a plpgsql function keeps the plan of its query
-- for the connection's life. Measured on the database alone with pgbench on one connection, the
-- SQL and the plpgsql body swapped between runs: the call by itself, 0.18 ms of CPU with the SQL
-- body and 0.10 ms with this one; ledger_apply() with one transfer per call (six pairs of runs),
-- 2.3-3.8 ms with the SQL body and 1.2-2.3 ms with this one, lower in every pair; with 16 transfers
-- per call, 4.5-5.7 ms and 4.0-5.0 ms, within the machine's swings. Same question, same answer.
CREATE OR REPLACE FUNCTION events_wanted_by_webhook(p_type text, p_account_ids bigint[]) RETURNS boolean
LANGUAGE plpgsql STABLE AS $$
BEGIN
  RETURN EXISTS (
    SELECT 1 FROM webhooks w
     WHERE p_type = ANY (w.event_types)
       AND (w.all_accounts OR EXISTS (SELECT 1 FROM accounts a WHERE a.id = ANY (p_account_ids) AND a.owner = w.owner)));
END;
$$;
