import type { DatabasePool } from '@bank/shared/db/pool';
import { eventsRepository } from '@bank/shared/events/events.repository';
import type { Logger } from '@bank/shared/logging/logger';
import { startBatchSweep, type BatchSweep } from './batch-sweep.ts';
import type { WorkerMetrics } from './worker-metrics.ts';

/**
 * Deletes events older than `retentionDays` once both consumers handled them and no webhook
 * delivery still waits to send (with their finished deliveries), at most `batchSize` per
 * statement, once at start and then every `intervalMs` (events_prune(), migration 0020). Every
 * worker replica may run it: the rows are taken FOR UPDATE SKIP LOCKED. Returns undefined when
 * `retentionDays` is 0 (events are kept forever).
 */
export function startEventPruner(options: {
  pool: DatabasePool;
  retentionDays: number;
  intervalMs: number;
  batchSize: number;
  logger: Logger;
  metrics?: Pick<WorkerMetrics, 'eventsPruned' | 'eventPruneFailures'>;
}): BatchSweep | undefined {
  const { pool, retentionDays, metrics } = options;
  if (retentionDays === 0) return undefined;
  return startBatchSweep({
    runBatch: (limit) => eventsRepository.prune(pool, retentionDays * 86_400, limit),
    intervalMs: options.intervalMs,
    batchSize: options.batchSize,
    logger: options.logger,
    messages: { started: 'event pruner started', done: 'events pruned', countField: 'pruned', idle: 'event pruning: nothing past retention', failed: 'event pruning failed; will retry' },
    onBatch: (count) => metrics?.eventsPruned.inc(count),
    onFailure: () => metrics?.eventPruneFailures.inc(),
    details: { retentionDays },
  });
}
