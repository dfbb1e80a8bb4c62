-- Webhooks (issue 14, item 3): endpoints users register to be told about events (migration
-- 0013), and one delivery per (webhook, event) that the worker POSTs, at least once, retrying
-- with backoff, with a log of every attempt.
--
-- The worker's fan-out claims the 'webhooks' events (events.webhooked_at) and writes the
-- deliveries of every matching webhook in the same transaction, so an event is either fanned out
-- completely or not at all. Deliveries are then claimed with a lease: a claim moves
-- next_attempt_at to the lease's end and sets lease_token, so a worker that dies mid-delivery
-- leaves a row that is due again when its lease runs out; another worker (or the restarted one)
-- sends it then, with the same event id.
CREATE TABLE webhooks (
  id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  owner          text NOT NULL REFERENCES users (username),
  url            text NOT NULL CONSTRAINT webhooks_url_length CHECK (length(url) BETWEEN 1 AND 2048),
  event_types    text[] NOT NULL CONSTRAINT webhooks_event_types_check CHECK (
                   cardinality(event_types) >= 1 AND event_types <@ ARRAY[
                     'transfer.posted', 'transfer.pending', 'transfer.captured', 'transfer.voided',
                     'transfer.expired', 'transfer.reversed', 'transfer.refunded', 'withdrawal.created',
                     'account.frozen', 'account.unfrozen']::text[]),
  -- Every account's events, not only the owner's: bankers only (checked when it is created and
  -- again at every fan-out, so a banker who lost the role stops receiving others' events).
  all_accounts   boolean NOT NULL DEFAULT false,
  -- The HMAC key, exactly as the create call returned it. Kept as it is because signing needs it;
  -- the API returns it once and never again, and nothing logs it.
  signing_secret text NOT NULL,
  created_at     timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX webhooks_owner_idx ON webhooks (owner, id);

CREATE TABLE webhook_deliveries (
  id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  webhook_id       bigint NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
  event_id         bigint NOT NULL REFERENCES events (id),
  status           text NOT NULL DEFAULT 'pending' CONSTRAINT webhook_deliveries_status_check CHECK (status IN ('pending', 'delivered', 'failed')),
  -- Attempts started (a claim counts one, so an attempt cut short by a crash counts too), and
  -- how many of them came before the last redeliver: the backoff counts from there.
  attempts         integer NOT NULL DEFAULT 0,
  attempts_before_redeliver integer NOT NULL DEFAULT 0,
  -- Due time while pending (while leased: when the lease runs out); null once delivered or failed.
  next_attempt_at  timestamptz DEFAULT clock_timestamp(),
  -- Set by a claim, cleared by its result: a result is recorded only by the claim that holds it.
  lease_token      uuid,
  last_status_code integer,
  last_error       text,
  last_attempt_at  timestamptz,
  delivered_at     timestamptz,
  created_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
  CONSTRAINT webhook_deliveries_once UNIQUE (webhook_id, event_id),
  CONSTRAINT webhook_deliveries_due_check CHECK ((status = 'pending') = (next_attempt_at IS NOT NULL))
);
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
-- The delivery log of one webhook, newest first.
CREATE INDEX webhook_deliveries_webhook_idx ON webhook_deliveries (webhook_id, id);

-- The delivery log: one row per attempt that finished (a crashed attempt leaves none, only its
-- count on the delivery).
CREATE TABLE webhook_delivery_attempts (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  delivery_id bigint NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
  attempt     integer NOT NULL,
  started_at  timestamptz NOT NULL,
  duration_ms integer NOT NULL,
  -- The HTTP status the endpoint answered; null when there was no answer (timeout, refused address...).
  status_code integer,
  error       text
);
CREATE INDEX webhook_delivery_attempts_delivery_idx ON webhook_delivery_attempts (delivery_id, id);
