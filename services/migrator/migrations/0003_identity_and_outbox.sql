-- Identity (sessions, email verification, login challenges) and the transactional email outbox.

CREATE TABLE email_verifications (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  username    text NOT NULL REFERENCES users (username),
  email       text NOT NULL,
  -- sha256 of the secret sent by email; the secret itself is never stored.
  secret_hash text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  expires_at  timestamptz NOT NULL,
  used_at     timestamptz
);
CREATE INDEX email_verifications_username_idx ON email_verifications (username);

CREATE TABLE sessions (
  id             uuid PRIMARY KEY,
  username       text NOT NULL REFERENCES users (username),
  status         text NOT NULL DEFAULT 'pending' CONSTRAINT sessions_status_check CHECK (status IN ('pending', 'active', 'revoked')),
  -- The token id (jti) of the one refresh token that is currently valid for this session.
  refresh_token_id uuid,
  user_agent     text,
  client_ip      text,
  created_at     timestamptz NOT NULL DEFAULT now(),
  activated_at   timestamptz,
  expires_at     timestamptz NOT NULL,
  revoked_at     timestamptz,
  revoked_reason text
);
CREATE INDEX sessions_username_idx ON sessions (username, status);

CREATE TABLE login_challenges (
  id          uuid PRIMARY KEY,
  session_id  uuid NOT NULL CONSTRAINT login_challenges_session_key UNIQUE REFERENCES sessions (id),
  -- token id (jti) of the emailed PASETO login token, and sha256 of the short code.
  token_id    uuid NOT NULL,
  code_hash   text NOT NULL,
  attempts    integer NOT NULL DEFAULT 0,
  created_at  timestamptz NOT NULL DEFAULT now(),
  expires_at  timestamptz NOT NULL,
  used_at     timestamptz
);

CREATE TABLE outbox (
  id          uuid PRIMARY KEY,
  kind        text NOT NULL,
  payload     jsonb NOT NULL,
  status      text NOT NULL DEFAULT 'pending' CONSTRAINT outbox_status_check CHECK (status IN ('pending', 'enqueued', 'sent', 'failed')),
  attempts    integer NOT NULL DEFAULT 0,
  last_error  text,
  created_at  timestamptz NOT NULL DEFAULT now(),
  enqueued_at timestamptz,
  sent_at     timestamptz
);
-- The worker's sweep looks for rows never handed to the queue.
CREATE INDEX outbox_pending_idx ON outbox (created_at) WHERE status = 'pending';
