-- The worker checks every few seconds that each `enqueued` outbox row still has its job in Redis
-- (a Redis that loses its data loses the jobs, and nothing else would send those emails again).
-- It pages through those rows by id; without this index each page would scan the whole outbox,
-- which keeps every email ever sent. Only rows waiting for delivery are in it, so it stays small.
CREATE INDEX outbox_enqueued_idx ON outbox (id) WHERE status = 'enqueued';
