-- Monthly statement emails (issue 14): on the 1st the worker emails each open user account its
-- statement for the month before, as a PDF attachment.
--
-- A row here claims (account, month). It is written in the same transaction as the outbox row
-- that sends the email, so however many workers run the month at once, and wherever one of them
-- crashes, each account gets exactly one email row per month: a second claim of the same key does
-- nothing (ON CONFLICT DO NOTHING waits for the first claimer's commit), and a claim that rolled
-- back left no outbox row behind.
CREATE TABLE statement_emails (
  account_id bigint NOT NULL REFERENCES accounts (id),
  -- The first day (UTC) of the calendar month the statement covers.
  month      date NOT NULL CONSTRAINT statement_emails_month_check CHECK (extract(day FROM month) = 1),
  -- The outbox row of the email (kind send-statement-email); the outbox says whether it went out.
  outbox_id  uuid NOT NULL CONSTRAINT statement_emails_outbox_id_key UNIQUE,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (account_id, month)
);

-- A month whose run went through every account. A worker that starts runs the month before the
-- current one when it has no row here (the 1st's scheduled run was missed: no worker was up).
CREATE TABLE statement_email_runs (
  month       date PRIMARY KEY CONSTRAINT statement_email_runs_month_check CHECK (extract(day FROM month) = 1),
  finished_at timestamptz NOT NULL DEFAULT now()
);
