-- Events are kept for a while, not forever (issue 14 left the table growing by one row, with the
-- whole transfer as JSON, per movement). events_prune() deletes, oldest first, events older than
-- the retention that both consumers handled and that no webhook delivery still waits to send,
-- with their finished deliveries (and so their delivery logs, ON DELETE CASCADE). The ledger
-- itself (transfers, entries) is never pruned: statements and history read it, not events.
--
-- It looks at the p_limit oldest events only (the primary key's first rows: no index on
-- created_at, which every movement would pay for); events there that must stay (a consumer behind,
-- a delivery still retrying, which ends within its retry window of a day) hold the pruning back
-- until they may go. FOR UPDATE SKIP LOCKED: two workers prune different rows, and a consumer
-- claiming an event is never waited on.
CREATE FUNCTION events_prune(p_older_than interval, p_limit int) RETURNS int LANGUAGE sql AS $$
  WITH head AS (
    SELECT e.id FROM events e ORDER BY e.id LIMIT p_limit
  ), doomed AS (
    SELECT e.id FROM events e JOIN head h ON h.id = e.id
     WHERE e.created_at < now() - p_older_than
       AND e.notified_at IS NOT NULL AND e.webhooked_at IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = e.id AND d.status = 'pending')
     FOR UPDATE OF e SKIP LOCKED
  ), deliveries AS (
    DELETE FROM webhook_deliveries d USING doomed WHERE d.event_id = doomed.id RETURNING d.id
  ), pruned AS (
    DELETE FROM events e USING doomed WHERE e.id = doomed.id RETURNING e.id
  )
  SELECT count(*)::int FROM pruned
$$;

-- Deleting an event looks up its deliveries (the foreign key's check, and the prune above): by
-- index, not by a scan of every delivery per event.
CREATE INDEX webhook_deliveries_event_idx ON webhook_deliveries (event_id);
