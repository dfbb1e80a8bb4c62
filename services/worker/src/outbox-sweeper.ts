import type { Logger } from '@bank/shared/logging/logger';
import { errorSummary, type OutboxPublisher } from '@bank/shared/outbox/outbox-publisher';

export type OutboxSweeper = {
  /** Runs one sweep now; resolves with how many rows it enqueued. Throws when the database or Redis fails. */
  sweep(pendingAfterMs?: number): Promise<number>;
  /** Runs one lost-job check now; resolves with how many jobs it re-added. Throws when the database or Redis fails. */
  recoverLostJobs(): Promise<number>;
  /** Stops the timers and waits for the rounds in progress. */
  stop(): Promise<void>;
};

/**
 * Two rounds over the outbox, each on its own timer:
 * - the sweep enqueues rows nobody enqueued (Redis was down at commit, or the writer died between
 *   commit and enqueue): once at start with every pending row fair game (nothing of ours is racing
 *   to enqueue it), then every `intervalMs`, leaving rows younger than `pendingAfterMs` to the use
 *   case that wrote them;
 * - the lost-job check re-adds the job of every enqueued row whose job Redis no longer holds, at
 *   start and then every `jobCheckIntervalMs`, so an email whose job vanished goes out within about
 *   that interval (a login code lives minutes).
 * A duplicate enqueue collapses into the same job anyway.
 */
export function startOutboxSweeper(options: {
  publisher: OutboxPublisher;
  intervalMs: number;
  pendingAfterMs: number;
  jobCheckIntervalMs: number;
  logger: Logger;
}): OutboxSweeper {
  const { publisher, logger } = options;
  const sweep = (pendingAfterMs = options.pendingAfterMs) => publisher.sweep({ pendingAfterMs });
  const recoverLostJobs = () => publisher.recoverLostJobs();
  // One round of each kind at a time: a tick that finds its round still running is skipped.
  const rounds = new Map<string, Promise<unknown>>();
  const run = (kind: string, round: () => Promise<unknown>) => {
    if (rounds.has(kind)) return;
    rounds.set(
      kind,
      round()
        .catch((error: unknown) => logger.warn({ err: errorSummary(error) }, `outbox ${kind} failed; will retry`))
        .finally(() => rounds.delete(kind)),
    );
  };
  run('sweep', () => sweep(0));
  run('lost-job check', recoverLostJobs);
  const timers = [setInterval(() => run('sweep', () => sweep()), options.intervalMs), setInterval(() => run('lost-job check', recoverLostJobs), options.jobCheckIntervalMs)];
  for (const timer of timers) timer.unref();
  return {
    sweep,
    recoverLostJobs,
    async stop() {
      for (const timer of timers) clearInterval(timer);
      await Promise.all(rounds.values());
    },
  };
}
