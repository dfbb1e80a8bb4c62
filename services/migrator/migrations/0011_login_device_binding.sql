-- A login bound to the device that gave the password (issue 13): step 1 answers a random login
-- secret that only that client holds; only its hash is kept here. Confirming needs it, with the
-- emailed token or code, or alone once the emailed link approved the challenge (approved_at).
-- Challenges pending when this runs have no secret and can no longer be confirmed: they expire
-- within LOGIN_TOKEN_TTL_SECONDS and their users log in again.
ALTER TABLE login_challenges
  ADD COLUMN secret_hash text,
  ADD COLUMN approved_at timestamptz;
