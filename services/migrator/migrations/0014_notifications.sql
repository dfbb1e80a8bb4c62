-- Notification emails (issue 14, item 1): the settings a user keeps, the client addresses they
-- have logged in from, and the open coalescing window of each recipient of money.

-- The informational notifications a user wants; security ones (a login from a new address, a
-- password or email change) are always sent and have no switch. On by default.
ALTER TABLE users
  ADD COLUMN notify_money_received boolean NOT NULL DEFAULT true,
  ADD COLUMN notify_withdrawals    boolean NOT NULL DEFAULT true,
  ADD COLUMN notify_holds          boolean NOT NULL DEFAULT true;

-- Client addresses each user confirmed a login from (IPv4 as it is, IPv6 by its /64, as the rate
-- limiter keys them: a privacy address changes within its /64 every day). A confirmed login from
-- an address not here emails the user, unless the user has none here yet (the first login, or the
-- first since this table exists: nothing to compare with, so no alarm).
CREATE TABLE login_addresses (
  username      text NOT NULL REFERENCES users (username),
  address       text NOT NULL,
  first_seen_at timestamptz NOT NULL DEFAULT now(),
  last_seen_at  timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT login_addresses_pkey PRIMARY KEY (username, address)
);

-- "Money received" is coalesced per recipient: the first email goes at once and opens a window;
-- what arrives while it is open is gathered in `items` and sent as one digest when it closes
-- (the worker's notifier deletes the row in the transaction that writes the digest's outbox row).
-- At most one open window per user (the primary key); the notifier appends under the row lock,
-- and flushes windows it takes FOR UPDATE SKIP LOCKED, so two workers never send one digest twice
-- and an item is in exactly one email.
CREATE TABLE notification_windows (
  username  text PRIMARY KEY REFERENCES users (username),
  opened_at timestamptz NOT NULL,
  closes_at timestamptz NOT NULL,
  -- The money received since opened_at (after the email that opened the window), oldest first:
  -- [{eventId, transferId, amount, currency, sender, memo, kind, at}], amounts as decimal strings.
  items     jsonb NOT NULL DEFAULT '[]' CONSTRAINT notification_windows_items_check CHECK (jsonb_typeof(items) = 'array'),
  CONSTRAINT notification_windows_period_check CHECK (closes_at > opened_at)
);
CREATE INDEX notification_windows_closes_at_idx ON notification_windows (closes_at);
