import type { DatabasePool } from 'slonik';
import { maskEmail, type Logger } from '../logging/logger.ts';
import { emailJobOptions, type EmailQueue } from '../queue/email-queue.ts';
import { withTimeout } from '../process/with-timeout.ts';
import { SECRET_PAYLOAD_FIELDS } from '../mail/email.schema.ts';
import { outboxRepository } from './outbox.repository.ts';

/** How many times a job that failed without settling its row is re-added before the row is given up (OUTBOX_JOB_MAX_RECOVERIES's default). */
export const MAX_JOB_RECOVERIES = 3;

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
  readonly #maxJobRecoveries: number;
  /** The last row recoverLostJobs checked, when more enqueued rows follow it. */
  #checkedUpTo: string | undefined;

  constructor(options: { pool: DatabasePool; queue: EmailQueue; logger?: Logger; enqueueTimeoutMs?: number; /** OUTBOX_JOB_MAX_RECOVERIES */ maxJobRecoveries?: number }) {
    this.#pool = options.pool;
    this.#queue = options.queue;
    this.#logger = options.logger;
    this.#timeoutMs = options.enqueueTimeoutMs ?? 2_000;
    this.#maxJobRecoveries = options.maxJobRecoveries ?? MAX_JOB_RECOVERIES;
  }

  /**
   * Enqueues committed rows. Never throws: a failure is logged and left to the sweep, because the
   * caller's change (and the row) is already committed and the user must not see an error for it.
   * Returns how many rows were enqueued.
   */
  async enqueueOutbox(ids: readonly string[]): Promise<number> {
    if (ids.length === 0) return 0;
    try {
      // One statement for the lot (a notifier round hands over up to a batch of rows at once).
      const rows = new Map((await withTimeout(outboxRepository.findByIds(this.#pool, ids), this.#timeoutMs, 'outbox lookup')).map((row) => [row.id, row]));
      const jobs = ids.flatMap((id) => {
        const row = rows.get(id);
        return row && row.status === 'pending' ? [{ id: row.id, kind: row.kind }] : [];
      });
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
   * within ceil(enqueued rows / limit) calls. A job that still exists waiting, active, delayed or
   * completed is left alone. A job that FAILED while its row is still `enqueued` ended without
   * settling the row (it stalled out with its workers killed, or its last attempt could not reach
   * the database): nothing would send that email either, so it is re-added too, at most
   * `maxJobRecoveries` times (OUTBOX_JOB_MAX_RECOVERIES, 3 by default); after that the row is marked failed (a job that fails that way every
   * time, say one that crashes its worker, must not loop). Returns how many jobs it re-added.
   * Throws when Redis or the DB fails.
   */
  async recoverLostJobs(options: { limit?: number } = {}): Promise<number> {
    const limit = options.limit ?? 500;
    const rows = await outboxRepository.findEnqueued(this.#pool, { afterId: this.#checkedUpTo, limit });
    this.#checkedUpTo = rows.length < limit ? undefined : rows.at(-1)?.id;
    if (rows.length === 0) return 0;
    const states = await withTimeout(Promise.all(rows.map((row) => this.#queue.getJobState(row.id))), this.#timeoutMs, 'email queue');
    const lost: { id: string; kind: string; recoveries?: number }[] = rows.filter((_, i) => states[i] === 'unknown');
    const failed = rows.filter((_, i) => states[i] === 'failed');
    if (failed.length > 0) {
      const jobs = await withTimeout(Promise.all(failed.map((row) => this.#queue.getJob(row.id))), this.#timeoutMs, 'email queue');
      const given: string[] = [];
      for (const [i, row] of failed.entries()) {
        const recoveries = jobs[i]?.data.recoveries ?? 0;
        if (recoveries < this.#maxJobRecoveries) {
          lost.push({ ...row, recoveries: recoveries + 1 });
        } else {
          await outboxRepository.markFailed(this.#pool, row.id, `its job failed ${recoveries + 1} times without settling the email`, SECRET_PAYLOAD_FIELDS);
          given.push(row.id);
        }
      }
      if (given.length > 0) this.#logger?.error({ outboxIds: given }, 'outbox rows whose job kept failing without settling them: marked failed');
    }
    if (lost.length === 0) return 0;
    // A job hash left behind outside every list (a partial loss, or a failed job) would turn the add
    // below into a no-op, since the job id is taken: remove what is left of each first. A job taken
    // meanwhile by a worker is locked and stays; its add then collapses into it.
    await withTimeout(Promise.all(lost.map((row) => this.#queue.remove(row.id))), this.#timeoutMs, 'email queue');
    await this.#add(lost);
    this.#logger?.warn(
      { count: lost.length, outboxIds: lost.map((row) => row.id), failedBefore: failed.length },
      'outbox rows whose queue job was lost or failed unsettled: re-enqueued',
    );
    return lost.length;
  }

  async #add(rows: readonly { id: string; kind: string; recoveries?: number }[]): Promise<number> {
    if (rows.length === 0) return 0;
    const data = (row: (typeof rows)[number]) => (row.recoveries === undefined ? { outboxId: row.id } : { outboxId: row.id, recoveries: row.recoveries });
    await withTimeout(this.#queue.addBulk(rows.map((row) => ({ name: row.kind, data: data(row), opts: emailJobOptions(row) }))), this.#timeoutMs, 'email queue');
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
