-- History pages that stay flat as an account's history grows (issue 10, goal P3).
--
-- The history lists (ledger.repository.ts listEntries / listTransfers) page newest first in
-- (created_at, id) order and filter an optional time range on created_at. Until now the only
-- per-account indexes were (account_id, id): a range query walked the account's history by id,
-- newest first, and threw away every row after `until` (a range over the oldest 1% of 5M
-- entries read all 5M). With (account, created_at, id) both the order and the range are one
-- btree range, so every page, with or without a range or a cursor, is an index scan that stops
-- after the page's rows.
--
-- Why created_at order and not the range turned into id bounds: bounds would be exact only if an
-- account's ids and created_at always ran in one order. The money functions take created_at with
-- the accounts locked (0004, 0006), which makes that so for rows they write, but nothing in the
-- schema enforces it; an index in (created_at, id) order answers ranges and pages directly
-- without relying on it.
--
-- Each new index replaces the old (account, id) index of the same table instead of joining it:
-- nothing else orders these tables by (account, id) (ledger_move() and ledger_move_batch() only
-- insert; the invariant checks scan whole tables), the foreign keys on account_id, from_account_id
-- and to_account_id still find their rows through the new indexes' leading column, and every
-- index is paid by every transfer (one transfer row and two entries per movement). So the write
-- path keeps three per-account indexes, each 8 bytes wider per tuple.
--
-- CREATE INDEX (not CONCURRENTLY) because the migrator runs each file in one transaction, where
-- CONCURRENTLY is refused. It takes a SHARE lock: money movements wait while each index builds
-- (`npm run bench:history` prints how long they take for 5M transfers and 10M entries). On a big
-- production table one would instead, outside this migrator: CREATE INDEX CONCURRENTLY each new
-- index (no write lock; check pg_index.indisvalid afterwards and drop and retry an invalid one),
-- deploy the code that reads them, then DROP INDEX CONCURRENTLY the old ones, and only then record
-- this version as applied.

CREATE INDEX entries_account_created_idx ON entries (account_id, created_at, id);
DROP INDEX entries_account_idx;

CREATE INDEX transfers_from_account_created_idx ON transfers (from_account_id, created_at, id);
DROP INDEX transfers_from_account_idx;

CREATE INDEX transfers_to_account_created_idx ON transfers (to_account_id, created_at, id);
DROP INDEX transfers_to_account_idx;
