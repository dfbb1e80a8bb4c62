import { sql, type DatabasePool } from 'slonik';
import { z } from 'zod';

export type BuiltHistory = {
  owner: string;
  accountId: bigint;
  /** Transfers in or out of the account; the account has as many entries. */
  transfers: number;
  /** Their ids: firstTransferId .. firstTransferId + transfers - 1, in created_at order but for the jitter. */
  firstTransferId: bigint;
  /** created_at runs from about `start` to `end`. */
  start: Date;
  end: Date;
  /** How long building took. */
  seconds: number;
};

/**
 * One user account with a long history, written straight by SQL for the history benchmark and
 * the plan test: `transfers` movements spread evenly over `spanDays` days up to `end`, each a
 * transfer row and its two entries. Every tenth is a deposit from the currency's funding
 * account, half of the rest come in from and the rest go out to one of `counterparties` other
 * accounts, so the account's rows are interleaved with others' in the tables and both sides of
 * the transfers list are used. created_at steps back by up to 1.5 steps at random, so ids and
 * created_at disagree between neighbours, as overlapping transactions make them.
 *
 * Balances are not maintained (nothing here moves money) and the foreign-key checks are skipped
 * for speed (session_replication_role, in this transaction only), so it needs a superuser and a
 * database whose ledger invariants nobody checks. Ids are taken after the current maximum under a
 * table lock, so concurrent writers wait rather than collide.
 */
export async function buildHistory(
  pool: DatabasePool,
  options: { owner: string; transfers: number; end?: Date; spanDays?: number; counterparties?: number },
): Promise<BuiltHistory> {
  const started = performance.now();
  const { owner, transfers: n } = options;
  const counterparties = options.counterparties ?? 16;
  const end = options.end ?? new Date();
  const spanSeconds = (options.spanDays ?? 730) * 86_400;
  const { accountId, firstTransferId } = await pool.transaction(async (tx) => {
    await tx.query(sql.unsafe`SET LOCAL session_replication_role = replica`);
    await tx.query(sql.unsafe`LOCK TABLE transfers, entries IN SHARE ROW EXCLUSIVE MODE`);
    await tx.query(sql.unsafe`
      INSERT INTO users (username, email, full_name, hashed_password)
      SELECT u, u || '@example.test', 'History ' || u, 'not-a-real-hash'
        FROM unnest(array_append(array(SELECT ${owner} || '_cp' || k FROM generate_series(1, ${counterparties}) k), ${owner})) u`);
    const account = await tx.oneFirst(sql.type(z.object({ id: z.bigint() }))`
      INSERT INTO accounts (owner, currency) VALUES (${owner}, 'USD') RETURNING id`);
    await tx.query(sql.unsafe`
      INSERT INTO accounts (owner, currency) SELECT ${owner} || '_cp' || k, 'USD' FROM generate_series(1, ${counterparties}) k`);
    const base = await tx.oneFirst(sql.type(z.object({ base: z.bigint() }))`SELECT coalesce(max(id), 0) AS base FROM transfers`);
    await tx.query(sql.unsafe`
      WITH p AS (
        SELECT ${base}::bigint AS base,
               (SELECT id FROM accounts WHERE is_system AND kind = 'funding' AND currency = 'USD') AS funding,
               array(SELECT a.id FROM generate_series(1, ${counterparties}) k
                       JOIN accounts a ON a.owner = ${owner} || '_cp' || k ORDER BY k) AS cps,
               ${sql.timestamp(end)} - make_interval(secs => ${spanSeconds}) AS t0,
               ${spanSeconds}::float8 / ${n} AS step),
      m AS (
        SELECT p.base + i AS id, i % 10 = 0 AS deposit, i % 10 BETWEEN 1 AND 5 AS incoming,
               1 + (i * 7) % ${counterparties} AS cp, p.cps, p.funding, p.t0, p.step, i
          FROM p, generate_series(1::bigint, ${n}::bigint) i)
      INSERT INTO transfers (id, from_account_id, to_account_id, amount, currency, kind, initiated_by, created_at) OVERRIDING SYSTEM VALUE
      SELECT id,
             CASE WHEN deposit THEN funding WHEN incoming THEN cps[cp] ELSE ${account} END,
             CASE WHEN deposit OR incoming THEN ${account} ELSE cps[cp] END,
             1 + (i * 7919) % 100000, 'USD',
             CASE WHEN deposit THEN 'deposit' ELSE 'transfer' END,
             CASE WHEN incoming AND NOT deposit THEN ${owner} || '_cp' || cp ELSE ${owner} END,
             t0 + make_interval(secs => step * i - step * 1.5 * ((i * 2654435761) % 10007) / 10007.0)
        FROM m`);
    // The two entries of each new transfer, debit first, in transfer order (as ledger_move writes).
    await tx.query(sql.unsafe`
      INSERT INTO entries (id, account_id, transfer_id, amount, created_at, balance_after) OVERRIDING SYSTEM VALUE
      SELECT id, account_id, transfer_id, amount, created_at,
             -- The running sum of what this build adds (balances are not touched: no invariant holds here).
             sum(amount) OVER (PARTITION BY account_id ORDER BY created_at, id)
        FROM (SELECT eb.base + 2 * (t.id - ${base}::bigint) - 1 + s.k AS id,
                     CASE s.k WHEN 0 THEN t.from_account_id ELSE t.to_account_id END AS account_id, t.id AS transfer_id,
                     CASE s.k WHEN 0 THEN -t.amount ELSE t.amount END AS amount, t.created_at
                FROM (SELECT coalesce(max(id), 0) AS base FROM entries) eb,
                     transfers t CROSS JOIN LATERAL (VALUES (0), (1)) s (k)
               WHERE t.id > ${base}::bigint) n`);
    await tx.query(sql.unsafe`SELECT setval(pg_get_serial_sequence('transfers', 'id'), (SELECT max(id) FROM transfers))`);
    await tx.query(sql.unsafe`SELECT setval(pg_get_serial_sequence('entries', 'id'), (SELECT max(id) FROM entries))`);
    return { accountId: account, firstTransferId: base + 1n };
  });
  const start = new Date(end.getTime() - spanSeconds * 1_000);
  return { owner, accountId, transfers: n, firstTransferId, start, end, seconds: (performance.now() - started) / 1_000 };
}
