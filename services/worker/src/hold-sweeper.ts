import type { DatabasePool } from '@bank/shared/db/pool';
import { ledgerRepository } from '@bank/shared/ledger/ledger.repository';
import type { Logger } from '@bank/shared/logging/logger';
import { startBatchSweep, type BatchSweep } from './batch-sweep.ts';
import type { WorkerMetrics } from './worker-metrics.ts';

/** sweep() expires due holds a batch at a time until a batch comes back short; stop() ends it. */
export type HoldSweeper = BatchSweep;

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
  const { pool, metrics } = options;
  return startBatchSweep({
    runBatch: (limit) => ledgerRepository.expireHolds(pool, limit),
    intervalMs: options.intervalMs,
    batchSize: options.batchSize,
    logger: options.logger,
    messages: { started: 'hold sweeper started', done: 'holds expired', countField: 'expired', idle: 'hold sweep: nothing due', failed: 'hold sweep failed; will retry' },
    onBatch: (count) => metrics?.holdsExpired.inc(count),
    onFailure: () => metrics?.holdSweepFailures.inc(),
  });
}
