import type { DatabasePool } from '@bank/shared/db/pool';
import { ledgerRepository } from '@bank/shared/ledger/ledger.repository';
import type { Logger } from '@bank/shared/logging/logger';
import { errorSummary } from '@bank/shared/outbox/outbox-publisher';
import type { WorkerMetrics } from './worker-metrics.ts';

export type HoldSweeper = {
  /**
   * Runs one round now (after the round in progress, if any): expires due holds a batch at a time
   * until a batch comes back short. Resolves with how many it expired; throws when the database
   * fails (the holds expired before the failure stay expired).
   */
  sweep(): Promise<number>;
  /** Stops the timer and waits for the round in progress, which ends after its current batch. */
  stop(): Promise<void>;
};

/**
 * Marks pending holds past their deadline expired (status `expired`, resolved at their deadline):
 * once at start, then every `intervalMs`, at most `batchSize` per statement, each batch its own
 * short transaction. Expiry is already enforced wherever a hold is used or read, so a late or
 * failed round only leaves the stored status behind; a failure is logged and the next tick tries
 * again. A tick that finds a round still draining a backlog is skipped.
 *
 * Every worker replica runs this sweep, and that is safe: ledger_expire_holds() takes its rows
 * FOR UPDATE SKIP LOCKED and its UPDATE re-checks `status = 'pending'`, so two sweeps (or a sweep
 * and a capture or void) never settle one hold twice and never wait on each other.
 */
export function startHoldSweeper(options: {
  pool: DatabasePool;
  intervalMs: number;
  batchSize: number;
  logger: Logger;
  metrics?: Pick<WorkerMetrics, 'holdsExpired' | 'holdSweepFailures'>;
}): HoldSweeper {
  const { pool, intervalMs, batchSize, logger, metrics } = options;
  let stopped = false;
  let queued = 0;
  let tail: Promise<unknown> = Promise.resolve();

  const round = async (): Promise<number> => {
    if (stopped) return 0;
    const started = performance.now();
    let expired = 0;
    let batches = 0;
    try {
      for (;;) {
        const count = await ledgerRepository.expireHolds(pool, batchSize);
        expired += count;
        batches += 1;
        metrics?.holdsExpired.inc(count);
        if (count < batchSize || stopped) break;
      }
    } catch (error) {
      metrics?.holdSweepFailures.inc();
      logger.warn({ err: errorSummary(error), expired, batches, retryInMs: intervalMs }, 'hold sweep failed; will retry');
      throw error;
    }
    const durationMs = Math.round(performance.now() - started);
    if (expired > 0) logger.info({ expired, batches, durationMs }, 'holds expired');
    else logger.debug({ durationMs }, 'hold sweep: nothing due');
    return expired;
  };

  const sweep = (): Promise<number> => {
    queued += 1;
    const result = tail.then(round).finally(() => (queued -= 1));
    tail = result.catch(() => undefined);
    return result;
  };
  // The failure is logged inside the round; the timer only keeps its rejection from going unhandled.
  const tick = () => {
    if (queued === 0) sweep().catch(() => undefined);
  };

  logger.info({ intervalMs, batchSize }, 'hold sweeper started');
  tick();
  const timer = setInterval(tick, intervalMs);
  timer.unref();
  return {
    sweep,
    async stop() {
      stopped = true;
      clearInterval(timer);
      await tail;
    },
  };
}
