import type { Logger } from '@bank/shared/logging/logger';
import { errorSummary } from '@bank/shared/outbox/outbox-publisher';

export type BatchSweep = {
  /**
   * Runs one round now (after the round in progress, if any): calls the batch until one comes
   * back short. Resolves with how many rows the round handled; throws when the database fails
   * (what the batches before the failure did stays done).
   */
  sweep(): Promise<number>;
  /** Stops the timer and waits for the round in progress, which ends after its current batch. */
  stop(): Promise<void>;
};

/** What a sweep logs, by name, so each keeps its own messages. */
export type BatchSweepMessages = {
  started: string;
  /** A round that handled rows: logged at info with `count` under `countField`, batches and durationMs. */
  done: string;
  countField: string;
  /** A round that found nothing: debug. */
  idle: string;
  /** A round that failed: warn, with the error and retryInMs. */
  failed: string;
};

/**
 * A periodic sweep in batches: once at start, then every `intervalMs`, `runBatch(batchSize)` again
 * and again until a batch handles fewer than `batchSize` rows, each batch its own short statement.
 * A failure is logged and counted and the next tick tries again; a tick that finds a round still
 * draining a backlog is skipped. The hold sweep and the event pruning run on it.
 */
export function startBatchSweep(options: {
  runBatch: (limit: number) => Promise<number>;
  intervalMs: number;
  batchSize: number;
  logger: Logger;
  messages: BatchSweepMessages;
  onBatch?: (count: number) => void;
  onFailure?: () => void;
  /** Logged with the start message. */
  details?: Record<string, unknown>;
}): BatchSweep {
  const { runBatch, intervalMs, batchSize, logger, messages } = options;
  let stopped = false;
  let queued = 0;
  let tail: Promise<unknown> = Promise.resolve();

  const round = async (): Promise<number> => {
    if (stopped) return 0;
    const started = performance.now();
    let count = 0;
    let batches = 0;
    try {
      for (;;) {
        const handled = await runBatch(batchSize);
        count += handled;
        batches += 1;
        options.onBatch?.(handled);
        if (handled < batchSize || stopped) break;
      }
    } catch (error) {
      options.onFailure?.();
      logger.warn({ err: errorSummary(error), [messages.countField]: count, batches, retryInMs: intervalMs }, messages.failed);
      throw error;
    }
    const durationMs = Math.round(performance.now() - started);
    if (count > 0) logger.info({ [messages.countField]: count, batches, durationMs }, messages.done);
    else logger.debug({ durationMs }, messages.idle);
    return count;
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

  logger.info({ intervalMs, batchSize, ...options.details }, messages.started);
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
