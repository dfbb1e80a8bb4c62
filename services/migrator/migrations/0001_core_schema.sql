-- Core schema: users, accounts, the double-entry ledger, idempotency records.
-- Names of tables and core columns are relied on by operators (see DESIGN.md): keep them.

CREATE TABLE users (
  id                  bigint GENERATED ALWAYS AS IDENTITY CONSTRAINT users_id_key UNIQUE,
  username            text PRIMARY KEY CONSTRAINT users_username_format CHECK (username ~ '^[a-z0-9_]{3,32}$'),
  email               text NOT NULL CONSTRAINT users_email_format CHECK (email ~ '^[^@\s]+@[^@\s]+$' AND length(email) <= 254),
  full_name           text NOT NULL CONSTRAINT users_full_name_length CHECK (length(full_name) BETWEEN 1 AND 200),
  hashed_password     text NOT NULL,
  role                text NOT NULL DEFAULT 'depositor' CONSTRAINT users_role_check CHECK (role IN ('depositor', 'banker')),
  is_email_verified   boolean NOT NULL DEFAULT false,
  password_changed_at timestamptz NOT NULL DEFAULT now(),
  created_at          timestamptz NOT NULL DEFAULT now(),
  updated_at          timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_email_key ON users (lower(email));

-- Supported currencies are a fixed list (ISO 4217). The CHECKs below name them again on purpose:
-- a row with an unknown currency cannot exist, whatever the application does.
CREATE TABLE accounts (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  owner       text REFERENCES users (username),
  currency    char(3) NOT NULL CONSTRAINT accounts_currency_check CHECK (currency IN ('USD', 'EUR', 'GBP', 'JPY', 'CHF', 'CAD', 'AUD')),
  balance     bigint NOT NULL DEFAULT 0,
  status      text NOT NULL DEFAULT 'open' CONSTRAINT accounts_status_check CHECK (status IN ('open', 'closed')),
  is_system   boolean NOT NULL DEFAULT false,
  created_at  timestamptz NOT NULL DEFAULT now(),
  closed_at   timestamptz,
  -- A system funding account has no owner and may go negative; every user account has one.
  CONSTRAINT accounts_owner_check CHECK (is_system = (owner IS NULL)),
  -- The rule money depends on: no user account below zero, enforced by the database itself.
  CONSTRAINT accounts_balance_nonnegative CHECK (is_system OR balance >= 0),
  CONSTRAINT accounts_closed_at_check CHECK ((status = 'closed') = (closed_at IS NOT NULL)),
  CONSTRAINT accounts_closed_empty CHECK (status = 'open' OR balance = 0)
);
CREATE UNIQUE INDEX accounts_owner_currency_open_key ON accounts (owner, currency) WHERE status = 'open' AND NOT is_system;
CREATE UNIQUE INDEX accounts_system_currency_key ON accounts (currency) WHERE is_system;
CREATE INDEX accounts_owner_idx ON accounts (owner, id);

-- One funding account per currency, created first so they have the lowest ids.
INSERT INTO accounts (owner, currency, is_system)
SELECT NULL, code, true FROM unnest(ARRAY['USD', 'EUR', 'GBP', 'JPY', 'CHF', 'CAD', 'AUD']) AS code;

CREATE TABLE transfers (
  id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  from_account_id bigint NOT NULL REFERENCES accounts (id),
  to_account_id   bigint NOT NULL REFERENCES accounts (id),
  amount          bigint NOT NULL CONSTRAINT transfers_amount_positive CHECK (amount > 0),
  currency        char(3) NOT NULL CONSTRAINT transfers_currency_check CHECK (currency IN ('USD', 'EUR', 'GBP', 'JPY', 'CHF', 'CAD', 'AUD')),
  kind            text NOT NULL DEFAULT 'transfer' CONSTRAINT transfers_kind_check CHECK (kind IN ('transfer', 'deposit')),
  initiated_by    text NOT NULL REFERENCES users (username),
  created_at      timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT transfers_distinct_accounts CHECK (from_account_id <> to_account_id)
);
CREATE INDEX transfers_from_account_idx ON transfers (from_account_id, id);
CREATE INDEX transfers_to_account_idx ON transfers (to_account_id, id);

CREATE TABLE entries (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  account_id  bigint NOT NULL REFERENCES accounts (id),
  transfer_id bigint NOT NULL REFERENCES transfers (id),
  amount      bigint NOT NULL CONSTRAINT entries_amount_nonzero CHECK (amount <> 0),
  created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX entries_account_idx ON entries (account_id, id);
CREATE INDEX entries_transfer_idx ON entries (transfer_id);

-- History is append-only: no UPDATE, DELETE or TRUNCATE on transfers and entries, ever.
CREATE FUNCTION forbid_history_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'table % is append-only', TG_TABLE_NAME USING ERRCODE = 'BK900';
END;
$$;
CREATE TRIGGER transfers_append_only BEFORE UPDATE OR DELETE ON transfers FOR EACH ROW EXECUTE FUNCTION forbid_history_change();
CREATE TRIGGER transfers_no_truncate BEFORE TRUNCATE ON transfers FOR EACH STATEMENT EXECUTE FUNCTION forbid_history_change();
CREATE TRIGGER entries_append_only BEFORE UPDATE OR DELETE ON entries FOR EACH ROW EXECUTE FUNCTION forbid_history_change();
CREATE TRIGGER entries_no_truncate BEFORE TRUNCATE ON entries FOR EACH STATEMENT EXECUTE FUNCTION forbid_history_change();

-- Idempotency records: one per (user, key). The stored request hash tells a true retry (same
-- request) from a misuse of the key (different request); the stored response is replayed.
CREATE TABLE idempotency_keys (
  username     text NOT NULL REFERENCES users (username),
  key          text NOT NULL CONSTRAINT idempotency_keys_key_length CHECK (length(key) BETWEEN 1 AND 255),
  operation    text NOT NULL,
  request_hash text NOT NULL,
  -- Null only inside the transaction that claimed the key and has not moved the money yet.
  transfer_id  bigint REFERENCES transfers (id),
  response     jsonb,
  created_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (username, key)
);
