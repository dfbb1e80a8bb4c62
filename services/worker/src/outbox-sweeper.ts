import type { Logger } from '@bank/shared/logging/logger';
import { errorSummary, type OutboxPublisher } from '@bank/shared/outbox/outbox-publisher';

export type OutboxSweeper = {
  /** Runs one sweep now; resolves with how many rows it enqueued. Throws when the database or Redis fails. */
  sweep(pendingAfterMs?: number): Promise<number>;
  /** Stops the timer and waits for a sweep in progress. */
  stop(): Promise<void>;
};

/**
 * Enqueues outbox rows nobody enqueued (Redis was down at commit, or the writer died between commit
 * and enqueue): once at start with every pending row fair game (nothing of ours is racing to
 * enqueue it), then every `intervalMs`, leaving rows younger than `pendingAfterMs` to the use case
 * that wrote them. A duplicate enqueue collapses into the same job anyway.
 */
export function startOutboxSweeper(options: { publisher: OutboxPublisher; intervalMs: number; pendingAfterMs: number; logger: Logger }): OutboxSweeper {
  const { publisher, logger } = options;
  const sweep = (pendingAfterMs = options.pendingAfterMs) => publisher.sweep({ pendingAfterMs });
  let sweeping: Promise<unknown> = Promise.resolve();
  const runSweep = (pendingAfterMs?: number) => {
    sweeping = sweep(pendingAfterMs).catch((error: unknown) => logger.warn({ err: errorSummary(error) }, 'outbox sweep failed; will retry'));
  };
  runSweep(0);
  const timer = setInterval(() => runSweep(), options.intervalMs);
  timer.unref();
  return {
    sweep,
    async stop() {
      clearInterval(timer);
      await sweeping;
    },
  };
}
