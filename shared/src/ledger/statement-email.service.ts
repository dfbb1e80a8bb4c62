import type { DatabasePool } from 'slonik';
import type { Logger } from '../logging/logger.ts';
import { statementEmailRepository } from './statement-email.repository.ts';

/** A calendar month, UTC: [since, until). */
export type StatementPeriod = { since: Date; until: Date };

/** The calendar month (UTC) before the one `now` falls in: what the 1st's statements cover. */
export function monthBefore(now: Date): StatementPeriod {
  return {
    since: new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - 1, 1)),
    until: new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1)),
  };
}

/** `2026-11`: a period as logs and job ids name it. */
export const monthName = (period: StatementPeriod) => period.since.toISOString().slice(0, 7);

/** What a run did. */
export type StatementRunResult = { period: StatementPeriod; accounts: number; emails: number };

/**
 * The monthly statement emails: each open user account (of an owner with a confirmed address)
 * gets its statement of a past calendar month once, as a PDF attachment the worker renders when
 * it sends. Any number of runs of one month may go at once or one after another (several workers,
 * a retried job, a worker's catch-up at start): the claim of (account, month) and the email's
 * outbox row are written together, so every account gets exactly one email row; the emails then
 * go out as every outbox row does (at least once, retried, never lost).
 */
export class StatementEmailService {
  readonly #pool: DatabasePool;
  readonly #outbox: { enqueueOutbox(ids: readonly string[]): Promise<number> };
  readonly #pageSize: number;
  readonly #logger: Logger | undefined;

  constructor(deps: { pool: DatabasePool; outbox: { enqueueOutbox(ids: readonly string[]): Promise<number> }; pageSize: number; logger?: Logger }) {
    if (!Number.isInteger(deps.pageSize) || deps.pageSize < 1) throw new Error('pageSize must be a positive integer');
    this.#pool = deps.pool;
    this.#outbox = deps.outbox;
    this.#pageSize = deps.pageSize;
    this.#logger = deps.logger;
  }

  /** Whether a run of `period` went through every account. */
  isDone(period: StatementPeriod): Promise<boolean> {
    return statementEmailRepository.isRunFinished(this.#pool, period);
  }

  /**
   * Claims and queues the statement email of every account not yet claimed for `period`, a page
   * of accounts per transaction, each page handed to the queue right after its commit (a failed
   * hand-over is left to the outbox sweep), then records the month as done. Throws when the
   * database fails; the pages committed before stay claimed and queued, and a run again picks up
   * the rest. Stops between pages when `signal` aborts (the month is then not recorded as done).
   */
  async run(period: StatementPeriod, options: { signal?: AbortSignal } = {}): Promise<StatementRunResult> {
    const month = monthName(period);
    let accounts = 0;
    let emails = 0;
    for (let afterId: bigint | null = null; ;) {
      if (options.signal?.aborted) {
        this.#logger?.info({ month, accounts, emails }, 'statement emails: run stopped before its end');
        return { period, accounts, emails };
      }
      const page = await statementEmailRepository.claimPage(this.#pool, { period, afterId, limit: this.#pageSize });
      accounts += page.seen;
      emails += page.outboxIds.length;
      await this.#outbox.enqueueOutbox(page.outboxIds);
      if (page.seen < this.#pageSize || page.lastAccountId === null) break;
      afterId = page.lastAccountId;
    }
    await statementEmailRepository.finishRun(this.#pool, period);
    this.#logger?.info({ month, accounts, emails }, 'statement emails: month done');
    return { period, accounts, emails };
  }
}
