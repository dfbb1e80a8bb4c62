import type { DatabasePool } from 'slonik';
import { maskEmail, type Logger } from '../logging/logger.ts';
import type { EmailQueue } from '../queue/email-queue.ts';
import { withTimeout } from '../process/with-timeout.ts';
import { outboxRepository } from './outbox.repository.ts';

/**
 * Hands committed outbox rows to the queue. Use cases call `enqueueOutbox(ids)` right after their
 * transaction commits; the worker calls `sweep()` periodically for rows nobody enqueued (Redis was
 * down, the process died between commit and enqueue) and `recoverLostJobs()` for rows whose job
 * Redis lost. The job id is the outbox id, so two enqueues of one row collapse into one job.
 */
export class OutboxPublisher {
  readonly #pool: DatabasePool;
  readonly #queue: EmailQueue;
  readonly #logger: Logger | undefined;
  readonly #timeoutMs: number;
  /** The last row recoverLostJobs checked, when more enqueued rows follow it. */
  #checkedUpTo: string | undefined;

  constructor(options: { pool: DatabasePool; queue: EmailQueue; logger?: Logger; enqueueTimeoutMs?: number }) {
    this.#pool = options.pool;
    this.#queue = options.queue;
    this.#logger = options.logger;
    this.#timeoutMs = options.enqueueTimeoutMs ?? 2_000;
  }

  /**
   * Enqueues committed rows. Never throws: a failure is logged and left to the sweep, because the
   * caller's change (and the row) is already committed and the user must not see an error for it.
   * Returns how many rows were enqueued.
   */
  async enqueueOutbox(ids: readonly string[]): Promise<number> {
    if (ids.length === 0) return 0;
    try {
      const rows = await withTimeout(Promise.all(ids.map((id) => outboxRepository.findById(this.#pool, id))), this.#timeoutMs, 'outbox lookup');
      const jobs = rows.flatMap((row) => (row && row.status === 'pending' ? [{ id: row.id, kind: row.kind }] : []));
      return await this.#add(jobs);
    } catch (error) {
      this.#logger?.warn({ err: errorSummary(error), outboxIds: ids }, 'outbox enqueue failed; the sweep will retry');
      return 0;
    }
  }

  /** Enqueues pending rows nobody enqueued (see outboxRepository.findSweepable). Throws when Redis or the DB fails. */
  async sweep(options: { pendingAfterMs?: number; limit?: number } = {}): Promise<number> {
    const rows = await outboxRepository.findSweepable(this.#pool, { pendingAfterMs: options.pendingAfterMs ?? 5_000, limit: options.limit ?? 500 });
    const count = await this.#add(rows);
    if (count > 0) this.#logger?.info({ count }, 'outbox sweep enqueued rows');
    return count;
  }

  /**
   * Re-adds the job of every `enqueued` row whose job Redis no longer holds (Redis lost its data: a
   * restart without persistence, a failover to a replica that had not caught up). Nothing else
   * would send those emails. Checks up to `limit` rows a call, going on after the last row the
   * previous call checked and starting over after the last one, so each enqueued row is checked
   * within ceil(enqueued rows / limit) calls. A job that still exists in any state (waiting,
   * active, delayed for a retry, failed, completed) is left alone. Returns how many jobs it re-added.
   * Throws when Redis or the DB fails.
   */
  async recoverLostJobs(options: { limit?: number } = {}): Promise<number> {
    const limit = options.limit ?? 500;
    const rows = await outboxRepository.findEnqueued(this.#pool, { afterId: this.#checkedUpTo, limit });
    this.#checkedUpTo = rows.length < limit ? undefined : rows.at(-1)?.id;
    if (rows.length === 0) return 0;
    const states = await withTimeout(Promise.all(rows.map((row) => this.#queue.getJobState(row.id))), this.#timeoutMs, 'email queue');
    const lost = rows.filter((_, i) => states[i] === 'unknown');
    if (lost.length === 0) return 0;
    // A job hash left behind outside every list (a partial loss) would turn the add below into a
    // no-op, since the job id is taken: remove what is left of each first. A job taken meanwhile
    // by a worker is locked and stays; its add then collapses into it.
    await withTimeout(Promise.all(lost.map((row) => this.#queue.remove(row.id))), this.#timeoutMs, 'email queue');
    await this.#add(lost);
    this.#logger?.warn({ count: lost.length, outboxIds: lost.map((row) => row.id) }, 'outbox rows whose queue job was lost: re-enqueued');
    return lost.length;
  }

  async #add(rows: readonly { id: string; kind: string }[]): Promise<number> {
    if (rows.length === 0) return 0;
    await withTimeout(this.#queue.addBulk(rows.map((row) => ({ name: row.kind, data: { outboxId: row.id }, opts: { jobId: row.id } }))), this.#timeoutMs, 'email queue');
    await outboxRepository.markEnqueued(this.#pool, rows.map((row) => row.id));
    return rows.length;
  }
}

/** Name and message of an error for a log line, with email addresses masked (SMTP errors quote them). */
export function errorSummary(error: unknown): { name: string; message: string } {
  const maskAll = (text: string) => text.replace(/[^\s<>"'(),;:]+@[^\s<>"'(),;:]+/g, (address) => maskEmail(address));
  if (error instanceof Error) return { name: error.name, message: maskAll(error.message) };
  return { name: 'Error', message: maskAll(String(error)) };
}
