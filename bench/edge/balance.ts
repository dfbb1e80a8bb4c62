// The accounts GetBalance is measured on: one per history length, built straight into the bench
// database by bulk SQL (test/history-builder.ts, as bench:history builds its 10k and 5M), then
// given the bench users' password and a verified email so that each owner logs in through the
// real flow and reads its own balance, as a customer would.
import { sql } from 'slonik';
import { createDatabasePool } from '../../shared/src/db/pool.ts';
import { buildHistory } from '../../test/history-builder.ts';
import { entriesCount } from './report.ts';
import { logIn } from './users.ts';

export type BalanceAccount = {
  /** `10k`, `5M`. */
  label: string;
  entries: number;
  owner: string;
  accountId: bigint;
  accessToken: string;
  /** The instant read: the middle of the account's history. */
  at: Date;
  buildSeconds: number;
};

/**
 * Builds one account per entry count (each entry a transfer in or out; see buildHistory), runs
 * VACUUM (ANALYZE) on the ledger tables (fresh statistics, and no autovacuum of the new rows
 * starting during the measurement), and logs each owner in. Call it while no load runs: the build
 * locks transfers and entries against writes until it commits.
 * @throws when a build fails or an owner cannot log in
 */
export async function buildBalanceAccounts(options: {
  databaseUrl: string;
  httpUrl: string;
  inboxUrl: string;
  prefix: string;
  /** A bench user whose password hash the owners take (every bench user has PASSWORD). */
  passwordOf: string;
  sizes: readonly number[];
  log: (line: string) => void;
}): Promise<{ accounts: BalanceAccount[]; vacuumSeconds: number }> {
  // One statement of the 5M build writes 10M entries into indexed tables: minutes, not seconds.
  const pool = await createDatabasePool(options.databaseUrl, { maximumPoolSize: 1, statementTimeoutMs: 3_600_000 });
  try {
    const built: { entries: number; history: Awaited<ReturnType<typeof buildHistory>> }[] = [];
    for (const entries of options.sizes) {
      const owner = `${options.prefix}bal_${built.length}`;
      const history = await buildHistory(pool, { owner, transfers: entries });
      options.log(`built ${entriesCount(entries)} entries for account ${history.accountId} in ${history.seconds.toFixed(1)} s`);
      built.push({ entries, history });
    }
    const vacuuming = performance.now();
    await pool.query(sql.unsafe`VACUUM (ANALYZE) accounts, transfers, entries`);
    const vacuumSeconds = (performance.now() - vacuuming) / 1_000;
    const owners = built.map((b) => b.history.owner);
    await pool.query(sql.unsafe`
      UPDATE users SET is_email_verified = true,
                       hashed_password = (SELECT hashed_password FROM users WHERE username = ${options.passwordOf})
       WHERE username = ANY(${sql.array(owners, 'text')})`);
    const accounts: BalanceAccount[] = [];
    for (const { entries, history } of built) {
      accounts.push({
        label: entriesCount(entries),
        entries,
        owner: history.owner,
        accountId: history.accountId,
        accessToken: await logIn(options.httpUrl, options.inboxUrl, history.owner, `${history.owner}@example.test`),
        at: new Date((history.start.getTime() + history.end.getTime()) / 2),
        buildSeconds: Number(history.seconds.toFixed(1)),
      });
    }
    return { accounts, vacuumSeconds: Number(vacuumSeconds.toFixed(1)) };
  } finally {
    await pool.end();
  }
}
