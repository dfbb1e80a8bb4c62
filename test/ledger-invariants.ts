import { sql, type CommonQueryMethods } from 'slonik';
import { z } from 'zod';

/**
 * The invariants of DESIGN.md that the ledger has today (1-5 and 9), checked by SQL. Returns one line per violation; an empty
 * list means the ledger is sound. `acknowledged` are transfer ids that callers were told
 * succeeded: each must exist exactly once.
 */
export async function checkLedgerInvariants(
  db: CommonQueryMethods,
  options: { acknowledged?: readonly bigint[] } = {},
): Promise<string[]> {
  const problems: string[] = [];

  // 1. Per currency, all balances (system accounts included) sum to zero.
  const sums = await db.any(sql.type(z.object({ currency: z.string(), total: z.string() }))`
    SELECT currency, sum(balance)::text AS total FROM accounts GROUP BY currency HAVING sum(balance) <> 0`);
  for (const row of sums) problems.push(`1: ${row.currency} balances sum to ${row.total}, not 0`);

  // 2. Each account's balance equals the sum of its entries.
  const drift = await db.any(sql.type(z.object({ id: z.bigint(), balance: z.bigint(), entries: z.string() }))`
    SELECT a.id, a.balance, coalesce(sum(e.amount), 0)::text AS entries
      FROM accounts a LEFT JOIN entries e ON e.account_id = a.id
     GROUP BY a.id HAVING a.balance <> coalesce(sum(e.amount), 0)`);
  for (const row of drift) problems.push(`2: account ${row.id} balance ${row.balance} but entries sum to ${row.entries}`);

  // 3. Each transfer has exactly two entries, equal and opposite, on its own two accounts.
  const shapes = await db.any(sql.type(z.object({ id: z.bigint(), n: z.number(), problem: z.string() }))`
    SELECT t.id, count(e.id)::int AS n,
           CASE WHEN count(e.id) <> 2 THEN 'entry count'
                WHEN sum(e.amount) <> 0 THEN 'entries do not sum to zero'
                WHEN bool_or(e.account_id = t.from_account_id AND e.amount = -t.amount) IS NOT TRUE THEN 'no debit of the amount on from'
                WHEN bool_or(e.account_id = t.to_account_id AND e.amount = t.amount) IS NOT TRUE THEN 'no credit of the amount on to'
                ELSE 'ok' END AS problem
      FROM transfers t LEFT JOIN entries e ON e.transfer_id = t.id
     GROUP BY t.id
    HAVING count(e.id) <> 2 OR sum(e.amount) <> 0
        OR bool_or(e.account_id = t.from_account_id AND e.amount = -t.amount) IS NOT TRUE
        OR bool_or(e.account_id = t.to_account_id AND e.amount = t.amount) IS NOT TRUE`);
  for (const row of shapes) problems.push(`3: transfer ${row.id}: ${row.problem} (${row.n} entries)`);

  // 4. No user balance below zero.
  const negative = await db.any(sql.type(z.object({ id: z.bigint(), balance: z.bigint() }))`
    SELECT id, balance FROM accounts WHERE NOT is_system AND balance < 0`);
  for (const row of negative) problems.push(`4: user account ${row.id} has negative balance ${row.balance}`);

  // 9. Every entry's balance_after is the running sum of its account's entries in history order.
  const running = await db.any(sql.type(z.object({ id: z.bigint(), balance_after: z.bigint(), running: z.string() }))`
    SELECT id, balance_after, running::text FROM (
      SELECT id, balance_after, sum(amount) OVER (PARTITION BY account_id ORDER BY created_at, id) AS running FROM entries) r
     WHERE balance_after <> running`);
  for (const row of running) problems.push(`9: entry ${row.id} has balance_after ${row.balance_after} but its history sums to ${row.running}`);

  // 5. Every acknowledged transfer exists exactly once.
  const acknowledged = options.acknowledged ?? [];
  if (new Set(acknowledged.map(String)).size !== acknowledged.length) problems.push('5: the same transfer id was acknowledged twice');
  if (acknowledged.length > 0) {
    const found = await db.oneFirst(sql.type(z.object({ n: z.number() }))`
      SELECT count(*)::int AS n FROM transfers WHERE id = ANY(${sql.array(acknowledged.map(String), 'int8')})`);
    if (found !== new Set(acknowledged.map(String)).size) {
      problems.push(`5: ${acknowledged.length} transfers acknowledged but ${found} exist`);
    }
  }
  return problems;
}

/** Deadlocks PostgreSQL has counted in this database so far. */
export async function deadlockCount(db: CommonQueryMethods): Promise<bigint> {
  return db.oneFirst(sql.type(z.object({ deadlocks: z.bigint() }))`
    SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()`);
}
