-- Passwords a person can manage, and an email change that waits for its link (issue 13).

-- A password reset: an emailed single-use link (30 minutes by default). Only the sha256 of its
-- secret is stored. Confirming one uses up every open reset of the user.
CREATE TABLE password_resets (
  id          uuid PRIMARY KEY,
  username    text NOT NULL REFERENCES users (username),
  secret_hash text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  expires_at  timestamptz NOT NULL,
  used_at     timestamptz
);
CREATE INDEX password_resets_open_idx ON password_resets (username) WHERE used_at IS NULL;

-- What a verification link is for: `verify` confirms the user's current address (sign-up);
-- `change` moves the user to the link's address when it is followed (the current one stays the
-- user's until then). A newer change cancels the open ones (used_at set without a verification).
ALTER TABLE email_verifications
  ADD COLUMN purpose text NOT NULL DEFAULT 'verify'
  CONSTRAINT email_verifications_purpose_check CHECK (purpose IN ('verify', 'change'));
