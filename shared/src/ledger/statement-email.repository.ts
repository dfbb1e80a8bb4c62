import { sql, type CommonQueryMethods } from 'slonik';
import { z } from 'zod';
import { SEND_STATEMENT_EMAIL } from '../mail/email.schema.ts';

/** What one page of a monthly run did. */
export type StatementClaimPage = {
  /** Accounts the page looked at (a page shorter than asked for is the last one). */
  seen: number;
  /** The highest account id of the page: the cursor of the next one (null when the page was empty). */
  lastAccountId: bigint | null;
  /** Outbox rows written for the accounts this call claimed (others had been claimed before). */
  outboxIds: string[];
};

const claimRow = z.object({ seen: z.number(), last_id: z.bigint().nullable(), outbox_ids: z.array(z.string().uuid()) });

/** `2026-11-01`: the month key of the statement_emails tables. */
const monthKey = (since: Date) => since.toISOString().slice(0, 10);

/**
 * The claims of monthly statement emails (statement_emails, statement_email_runs). Every method
 * takes the connection first; throws only Slonik/PostgreSQL errors.
 */
export const statementEmailRepository = {
  /**
   * Claims the statement of `period` for up to `limit` accounts with an id above `afterId`, in id
   * order, and writes the outbox row of each claimed account's email, in one statement (so in one
   * transaction): a claim exists if and only if its email row does. Only user accounts that are
   * not closed, that existed before the period ended and whose owner confirmed their address are
   * taken; an account already claimed for the month (by another worker, or a run before a crash)
   * is passed over. The email row holds the address, the account and the period; the worker
   * renders the statement itself when it sends.
   */
  async claimPage(
    db: CommonQueryMethods,
    query: { period: { since: Date; until: Date }; afterId: bigint | null; limit: number },
  ): Promise<StatementClaimPage> {
    const { since, until } = query.period;
    const row = await db.one(sql.type(claimRow)`
      WITH page AS (
        SELECT a.id, a.owner, u.email, u.full_name
          FROM accounts a JOIN users u ON u.username = a.owner
         WHERE a.id > ${query.afterId ?? 0n} AND NOT a.is_system AND a.status <> 'closed'
           AND a.created_at < ${sql.timestamp(until)} AND u.is_email_verified
         ORDER BY a.id LIMIT ${query.limit}
      ), claimed AS (
        INSERT INTO statement_emails (account_id, month, outbox_id)
        SELECT id, ${monthKey(since)}::date, gen_random_uuid() FROM page
        ON CONFLICT (account_id, month) DO NOTHING
        RETURNING account_id, outbox_id
      ), emails AS (
        INSERT INTO outbox (id, kind, payload)
        SELECT c.outbox_id, ${SEND_STATEMENT_EMAIL},
               jsonb_build_object('to', p.email, 'username', p.owner, 'fullName', p.full_name, 'accountId', p.id::text,
                                  'since', ${since.toISOString()}::text, 'until', ${until.toISOString()}::text)
          FROM claimed c JOIN page p ON p.id = c.account_id
        RETURNING id
      )
      SELECT (SELECT count(*) FROM page)::int AS seen, (SELECT max(id) FROM page) AS last_id,
             coalesce((SELECT array_agg(id::text) FROM emails), '{}') AS outbox_ids`);
    return { seen: row.seen, lastAccountId: row.last_id, outboxIds: row.outbox_ids };
  },

  /** Records that the month's run went through every account (a second record changes nothing). */
  async finishRun(db: CommonQueryMethods, period: { since: Date }): Promise<void> {
    await db.query(sql.unsafe`INSERT INTO statement_email_runs (month) VALUES (${monthKey(period.since)}::date) ON CONFLICT (month) DO NOTHING`);
  },

  async isRunFinished(db: CommonQueryMethods, period: { since: Date }): Promise<boolean> {
    return db.exists(sql.unsafe`SELECT 1 FROM statement_email_runs WHERE month = ${monthKey(period.since)}::date`);
  },
};
