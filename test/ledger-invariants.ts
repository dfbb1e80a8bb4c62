import { sql, type CommonQueryMethods } from 'slonik';
import { z } from 'zod';

/**
 * The invariants of DESIGN.md (1-9), checked by SQL. Returns one line per violation; an empty
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

  // 3. Each posted transfer has exactly two entries, equal and opposite, of its posted amount (a
  //    captured hold: its captured amount) on its own two accounts; a pending, voided or expired
  //    transfer has none.
  const shapes = await db.any(sql.type(z.object({ id: z.bigint(), n: z.number(), problem: z.string() }))`
    SELECT id, n, problem FROM (
      SELECT t.id, count(e.id)::int AS n,
             CASE WHEN t.status <> 'posted' THEN CASE WHEN count(e.id) <> 0 THEN t.status || ' transfer has entries' END
                  WHEN count(e.id) <> 2 THEN 'entry count'
                  WHEN sum(e.amount) <> 0 THEN 'entries do not sum to zero'
                  WHEN bool_or(e.account_id = t.from_account_id AND e.amount = -coalesce(t.captured_amount, t.amount)) IS NOT TRUE
                    THEN 'no debit of the posted amount on from'
                  WHEN bool_or(e.account_id = t.to_account_id AND e.amount = coalesce(t.captured_amount, t.amount)) IS NOT TRUE
                    THEN 'no credit of the posted amount on to'
             END AS problem
        FROM transfers t LEFT JOIN entries e ON e.transfer_id = t.id
       GROUP BY t.id) s
     WHERE problem IS NOT NULL`);
  for (const row of shapes) problems.push(`3: transfer ${row.id}: ${row.problem} (${row.n} entries)`);

  // 4. No user balance below zero.
  const negative = await db.any(sql.type(z.object({ id: z.bigint(), balance: z.bigint() }))`
    SELECT id, balance FROM accounts WHERE NOT is_system AND balance < 0`);
  for (const row of negative) problems.push(`4: user account ${row.id} has negative balance ${row.balance}`);

  // 6. Every user account's available balance (its balance less its active holds: pending, deadline
  //    not passed) is at least zero.
  const overheld = await db.any(sql.type(z.object({ id: z.bigint(), balance: z.bigint(), held: z.string() }))`
    SELECT a.id, a.balance, sum(h.amount)::text AS held
      FROM accounts a JOIN transfers h ON h.from_account_id = a.id AND h.status = 'pending' AND h.expires_at > now()
     WHERE NOT a.is_system
     GROUP BY a.id HAVING a.balance - sum(h.amount) < 0`);
  for (const row of overheld) problems.push(`6: account ${row.id} holds ${row.held} against a balance of ${row.balance}`);

  // 7. A hold moves no money until captured (3: a pending hold has no entries); captured <= held;
  //    each hold was settled (captured, voided or expired) at most once: exactly one settling
  //    capture or void answer per settled hold, none for an expired one or one still pending.
  const holds = await db.any(sql.type(z.object({ id: z.bigint(), problem: z.string() }))`
    SELECT t.id,
           CASE WHEN t.captured_amount > t.amount THEN 'captured more than held'
                WHEN (t.resolved_at IS NULL) <> (t.status = 'pending') THEN 'settled time does not match its status'
                ELSE 'settled ' || count(k.key) || ' times as ' || t.status END AS problem
      FROM transfers t
      LEFT JOIN idempotency_keys k ON k.transfer_id = t.id AND k.operation IN ('capture', 'void') AND k.response IS NOT NULL
     WHERE t.expires_at IS NOT NULL
     GROUP BY t.id
    HAVING coalesce(t.captured_amount, 0) > t.amount OR (t.resolved_at IS NULL) <> (t.status = 'pending')
        OR count(k.key) <> CASE WHEN t.status IN ('posted', 'voided') THEN 1 ELSE 0 END`);
  for (const row of holds) problems.push(`7: hold ${row.id}: ${row.problem}`);

  // 8. At most one reversal per transfer; a transfer's refunds (and its reversal, which returns what
  //    the refunds did not) never sum to more than it moved.
  const returned = await db.any(sql.type(z.object({ id: z.bigint(), reversals: z.number(), returned: z.string(), posted: z.bigint() }))`
    SELECT t.id, count(r.id) FILTER (WHERE r.kind = 'reversal')::int AS reversals, coalesce(sum(r.amount), 0)::text AS returned,
           coalesce(t.captured_amount, t.amount) AS posted
      FROM transfers t JOIN transfers r ON r.reverses_transfer_id = t.id OR r.refunds_transfer_id = t.id
     GROUP BY t.id
    HAVING count(r.id) FILTER (WHERE r.kind = 'reversal') > 1 OR sum(r.amount) > coalesce(t.captured_amount, t.amount)`);
  for (const row of returned) {
    problems.push(`8: transfer ${row.id} moved ${row.posted}, ${row.reversals} reversals, ${row.returned} returned in all`);
  }

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
