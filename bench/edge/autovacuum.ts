// Autovacuum, or the bench standing in for it. The benches start the stack on a fresh database,
// so every pooled connection plans the ledger's statements (plpgsql keeps each plan for the
// connection) while the tables are empty, and only an ANALYZE replaces those plans. A server with
// autovacuum on analyzes a growing table within a minute; one with it off never does, and those
// plans stay: measured on such a server, ledger_apply()'s batch UPDATE of idempotency_keys kept a
// sequential scan of the whole table (one per batch), and HTTP transfers at c32 fell from 1,990
// to 919/s over 50 s of load while PostgreSQL's CPU per transfer went from 0.45 to 1.0 ms. With an
// ANALYZE between runs they held at 2,500-2,650/s and 0.32-0.35 ms.
import pg from 'pg';

/** Whether the server runs autovacuum (`SHOW autovacuum`). */
export async function autovacuumOn(databaseUrl: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: databaseUrl, application_name: 'bench-autovacuum' });
  await client.connect();
  try {
    const { rows } = await client.query<{ autovacuum: string }>('SHOW autovacuum');
    return rows[0]?.autovacuum === 'on';
  } finally {
    await client.end();
  }
}

/**
 * ANALYZE of the service's tables (schema public), what autovacuum would have done by now as they
 * grew: new statistics, and the plans every connection cached on the old ones are made again on
 * next use. Not the bench's own schema `bench` (pgbench's minimal ledger): its ceilings stay
 * measured as before, with the plans PostgreSQL makes without statistics (index scans). With
 * statistics, its 64-row accounts table is one page and its UPDATEs plan a sequential scan, which
 * on a page full of dead row versions measured a third of the speed: a lower ceiling would flatter
 * every ratio. Resolves with the seconds it took.
 */
export async function analyzeDatabase(databaseUrl: string): Promise<number> {
  const client = new pg.Client({ connectionString: databaseUrl, application_name: 'bench-analyze' });
  await client.connect();
  const started = performance.now();
  try {
    const { rows } = await client.query<{ name: string }>(
      `SELECT format('%I.%I', schemaname, relname) AS name FROM pg_stat_user_tables WHERE schemaname = 'public' ORDER BY relname`,
    );
    if (rows.length > 0) await client.query(`ANALYZE ${rows.map((r) => r.name).join(', ')}`);
    return (performance.now() - started) / 1_000;
  } finally {
    await client.end();
  }
}

/** The line the benches print when they stand in for autovacuum. */
export const ANALYZE_NOTE =
  "this server runs with autovacuum off: the bench runs ANALYZE on the service's tables (schema public) before every run and every pgbench ceiling, as autovacuum would as the tables grow (without it, the plans each connection made on the empty tables at the start stay for the whole bench); the minimal ledger of pgbench's ceilings (schema bench) is left unanalyzed, as it always ran";
