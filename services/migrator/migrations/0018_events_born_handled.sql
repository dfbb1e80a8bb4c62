-- An event nobody will read is born handled (issue 14's "bench:edge with notifications and
-- webhooks on"). Marking an event done is an UPDATE of its row, and one that cannot be HOT (the
-- consumers' partial indexes name the columns): under a transfer storm the two marks cost
-- PostgreSQL about as much again as writing the event. Most events need neither mark:
--
-- - notifications: pending and voided holds and account freezes send no email (the notifier
--   plans none for them), so they are born notified;
-- - webhooks: an event whose type no webhook asks for is born webhooked. A webhook receives
--   every event whose statement starts after the call that created it answered (the check reads
--   the webhooks committed by then); an event written while a webhook is being created may or may
--   not reach it, as before, when the fan-out's "created before the event" compared two clocks.
--
-- Both consumers still claim what is left exactly as before; nothing here changes what a webhook
-- or a user receives for an event someone wants.
CREATE FUNCTION events_born_handled() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.type IN ('transfer.pending', 'transfer.voided', 'account.frozen', 'account.unfrozen') THEN
    NEW.notified_at := coalesce(NEW.notified_at, NEW.created_at);
  END IF;
  IF NEW.webhooked_at IS NULL AND NOT EXISTS (SELECT 1 FROM webhooks w WHERE NEW.type = ANY (w.event_types)) THEN
    NEW.webhooked_at := NEW.created_at;
  END IF;
  RETURN NEW;
END;
$$;
CREATE TRIGGER events_born_handled BEFORE INSERT ON events
  FOR EACH ROW EXECUTE FUNCTION events_born_handled();
