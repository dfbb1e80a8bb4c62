// The worker's queue of work, read from the database: what a run left for it to do. bench:edge
// waits for it to empty before each measured run and each pgbench ceiling, so no run (and no
// ceiling) shares the cores with the worker still catching up on the run before; and after each
// edge run, so the CPU a run is charged includes the emails and webhooks it caused.
import pg from 'pg';

export type WorkerBacklog = { eventsUnnotified: number; eventsUnwebhooked: number; emailsUnsent: number; deliveriesPending: number };

export const backlogTotal = (b: WorkerBacklog): number => b.eventsUnnotified + b.eventsUnwebhooked + b.emailsUnsent + b.deliveriesPending;

/** One read of the backlog (each count on its consumer's partial index). */
export async function readBacklog(client: pg.Client): Promise<WorkerBacklog> {
  const { rows } = await client.query<{ n: number; w: number; e: number; d: number }>(`
    SELECT (SELECT count(*) FROM events WHERE notified_at IS NULL)::int AS n,
           (SELECT count(*) FROM events WHERE webhooked_at IS NULL)::int AS w,
           (SELECT count(*) FROM outbox WHERE status IN ('pending', 'enqueued'))::int AS e,
           (SELECT count(*) FROM webhook_deliveries WHERE status = 'pending')::int AS d`);
  const row = rows[0]!;
  return { eventsUnnotified: row.n, eventsUnwebhooked: row.w, emailsUnsent: row.e, deliveriesPending: row.d };
}

/**
 * Waits until the worker has nothing left to do (every event handled by both consumers, every
 * email sent, no webhook delivery pending), polling every 100 ms, at most `timeoutMs`. Resolves
 * with the seconds it waited and what was left when it gave up (null: it emptied). Coalesced
 * money-received windows are not waited for: their digests are due a minute later by design.
 */
export async function waitForIdleWorker(databaseUrl: string, timeoutMs = 120_000): Promise<{ seconds: number; leftOver: WorkerBacklog | null }> {
  const client = new pg.Client({ connectionString: databaseUrl, application_name: 'bench-idle-wait' });
  await client.connect();
  const started = performance.now();
  try {
    for (;;) {
      const backlog = await readBacklog(client);
      const seconds = (performance.now() - started) / 1_000;
      if (backlogTotal(backlog) === 0) return { seconds, leftOver: null };
      if (seconds * 1_000 >= timeoutMs) return { seconds, leftOver: backlog };
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  } finally {
    await client.end();
  }
}
