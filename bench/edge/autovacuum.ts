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
 * ANALYZE of the whole database, what autovacuum would have done by now as the tables grew: new
 * statistics, and the plans every connection cached on the old ones are made again on next use.
 * Resolves with the seconds it took.
 */
export async function analyzeDatabase(databaseUrl: string): Promise<number> {
  const client = new pg.Client({ connectionString: databaseUrl, application_name: 'bench-analyze' });
  await client.connect();
  const started = performance.now();
  try {
    await client.query('ANALYZE');
    return (performance.now() - started) / 1_000;
  } finally {
    await client.end();
  }
}

/** The line the benches print when they stand in for autovacuum. */
export const ANALYZE_NOTE =
  'this server runs with autovacuum off: the bench runs ANALYZE on its database before every run and every pgbench ceiling, as autovacuum would as the tables grow (without it, the plans each connection made on the empty tables at the start stay for the whole bench)';
