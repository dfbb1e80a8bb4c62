import { sql, type CommonQueryMethods } from 'slonik';
import { z } from 'zod';
import { countRow } from '../db/rows.ts';

/**
 * The ledger invariants of DESIGN.md that the data alone can show (all but 5, which needs the
 * callers' acknowledgements), each with the name its metric label carries.
 */
export const LEDGER_INVARIANTS = [
  'currency_balances_sum_to_zero', // 1
  'balance_equals_entries', // 2
  'posted_transfer_has_two_entries', // 3
  'no_negative_user_balance', // 4
  'available_balance_not_negative', // 6
  'hold_settled_once', // 7
  'returns_within_amount', // 8
  'balance_after_is_running_sum', // 9
] as const;
export type LedgerInvariant = (typeof LEDGER_INVARIANTS)[number];

/** Where a check starts: rows written after these ids and this instant. Zero ids: the whole ledger. */
export type InvariantCheckScope = { entryId: bigint; transferId: bigint; since: Date };

export const WHOLE_LEDGER: InvariantCheckScope = { entryId: 0n, transferId: 0n, since: new Date(0) };

const count = sql.type(countRow);
const marks = sql.type(z.object({ entry_id: z.bigint(), transfer_id: z.bigint(), now: z.date() }));

/**
 * The production form of test/ledger-invariants.ts (same rules, same SQL where it can be): each
 * invariant is one `count(*)` of the rows that break it. With WHOLE_LEDGER every row is read; with
 * a narrower scope the invariants over entries and transfers (2, 3, 7, 8, 9) look only at rows
 * written after it, plus the ones those touch, so a periodic check costs what was written since
 * the last one: 9 compares each new entry with the entry before it, 2 compares a touched account
 * with its newest entry's balance_after (the same as the sum of its entries once 9 holds for all
 * of them). 1, 4 and 6 read the accounts and the pending holds, always; 7 reads the holds'
 * own columns to find those settled since. What reads every entry (2 and 9 in full, and
 * 3's join) runs only over the whole ledger. Each count is one statement, so it sees one
 * snapshot; statements of one check may see different ones.
 */
export const ledgerInvariantsRepository = {
  /** The newest entry and transfer ids and the database's clock: the scope of the next check. */
  async currentMarks(db: CommonQueryMethods): Promise<InvariantCheckScope> {
    const row = await db.one(marks`
      SELECT (SELECT coalesce(max(id), 0) FROM entries) AS entry_id, (SELECT coalesce(max(id), 0) FROM transfers) AS transfer_id, now() AS now`);
    return { entryId: row.entry_id, transferId: row.transfer_id, since: row.now };
  },

  /** Violations of each invariant among the rows in `scope`. Throws on a database error. */
  async countViolations(db: CommonQueryMethods, scope: InvariantCheckScope): Promise<Record<LedgerInvariant, number>> {
    const whole = scope.entryId === 0n && scope.transferId === 0n;
    const entryId = scope.entryId.toString();
    const transferId = scope.transferId.toString();
    const since = scope.since.toISOString();
    const counts = {} as Record<LedgerInvariant, number>;

    counts.currency_balances_sum_to_zero = await db.oneFirst(count`
      SELECT count(*)::int AS n FROM (SELECT currency FROM accounts GROUP BY currency HAVING sum(balance) <> 0) s`);

    counts.balance_equals_entries = await db.oneFirst(
      whole
        ? count`
      SELECT count(*)::int AS n FROM (
        SELECT a.id FROM accounts a LEFT JOIN entries e ON e.account_id = a.id
         GROUP BY a.id HAVING a.balance <> coalesce(sum(e.amount), 0)) s`
        : count`
      SELECT count(*)::int AS n
        FROM accounts a
        CROSS JOIN LATERAL (SELECT balance_after FROM entries WHERE account_id = a.id ORDER BY created_at DESC, id DESC LIMIT 1) last
       WHERE a.id IN (SELECT account_id FROM entries WHERE id > ${entryId}::int8) AND a.balance <> last.balance_after`,
    );

    counts.posted_transfer_has_two_entries = await db.oneFirst(count`
      SELECT count(*)::int AS n FROM (
        SELECT t.id,
               CASE WHEN t.status <> 'posted' THEN count(e.id) <> 0
                    ELSE count(e.id) <> 2 OR sum(e.amount) <> 0
                      OR bool_or(e.account_id = t.from_account_id AND e.amount = -coalesce(t.captured_amount, t.amount)) IS NOT TRUE
                      OR bool_or(e.account_id = t.to_account_id AND e.amount = coalesce(t.captured_amount, t.amount)) IS NOT TRUE
               END AS broken
          FROM transfers t LEFT JOIN entries e ON e.transfer_id = t.id
         WHERE ${whole ? sql.fragment`true` : sql.fragment`t.id IN (SELECT id FROM transfers WHERE id > ${transferId}::int8 UNION SELECT transfer_id FROM entries WHERE id > ${entryId}::int8)`}
         GROUP BY t.id) s
       WHERE broken`);

    counts.no_negative_user_balance = await db.oneFirst(count`
      SELECT count(*)::int AS n FROM accounts WHERE NOT is_system AND balance < 0`);

    counts.available_balance_not_negative = await db.oneFirst(count`
      SELECT count(*)::int AS n FROM (
        SELECT a.id
          FROM accounts a JOIN transfers h ON h.from_account_id = a.id AND h.status = 'pending' AND h.expires_at > now()
         WHERE NOT a.is_system
         GROUP BY a.id HAVING a.balance - sum(h.amount) < 0) s`);

    counts.hold_settled_once = await db.oneFirst(count`
      SELECT count(*)::int AS n FROM (
        SELECT t.id
          FROM transfers t
          LEFT JOIN idempotency_keys k ON k.transfer_id = t.id AND k.operation IN ('capture', 'void') AND k.response IS NOT NULL
         WHERE t.expires_at IS NOT NULL
           AND ${whole ? sql.fragment`true` : sql.fragment`(t.id > ${transferId}::int8 OR t.status = 'pending' OR t.resolved_at >= ${since}::timestamptz)`}
         GROUP BY t.id
        HAVING coalesce(t.captured_amount, 0) > t.amount OR (t.resolved_at IS NULL) <> (t.status = 'pending')
            OR count(k.key) <> CASE WHEN t.status IN ('posted', 'voided') THEN 1 ELSE 0 END) s`);

    counts.returns_within_amount = await db.oneFirst(count`
      SELECT count(*)::int AS n FROM (
        SELECT t.id
          FROM transfers t JOIN transfers r ON r.reverses_transfer_id = t.id OR r.refunds_transfer_id = t.id
         WHERE ${
           whole
             ? sql.fragment`true`
             : sql.fragment`t.id IN (SELECT coalesce(reverses_transfer_id, refunds_transfer_id) FROM transfers
                                      WHERE id > ${transferId}::int8 AND (reverses_transfer_id IS NOT NULL OR refunds_transfer_id IS NOT NULL))`
         }
         GROUP BY t.id
        HAVING count(r.id) FILTER (WHERE r.kind = 'reversal') > 1 OR sum(r.amount) > coalesce(t.captured_amount, t.amount)) s`);

    counts.balance_after_is_running_sum = await db.oneFirst(
      whole
        ? count`
      SELECT count(*)::int AS n FROM (
        SELECT balance_after, sum(amount) OVER (PARTITION BY account_id ORDER BY created_at, id) AS running FROM entries) r
       WHERE balance_after <> running`
        : count`
      SELECT count(*)::int AS n
        FROM entries e
        LEFT JOIN LATERAL (
          SELECT p.balance_after FROM entries p
           WHERE p.account_id = e.account_id AND (p.created_at, p.id) < (e.created_at, e.id)
           ORDER BY p.created_at DESC, p.id DESC LIMIT 1) prev ON true
       WHERE e.id > ${entryId}::int8 AND e.balance_after <> coalesce(prev.balance_after, 0) + e.amount`,
    );
    return counts;
  },
};
