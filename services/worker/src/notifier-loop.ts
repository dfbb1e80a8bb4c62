import type { DatabasePool } from '@bank/shared/db/pool';
import { eventsRepository } from '@bank/shared/events/events.repository';
import type { Logger } from '@bank/shared/logging/logger';
import { notificationRepository } from '@bank/shared/notifications/notification.repository';
import type { Notifier, NotifierOutcome } from '@bank/shared/notifications/notifier.service';
import { errorSummary } from '@bank/shared/outbox/outbox-publisher';
import { Counter, Gauge, type Registry } from 'prom-client';

export type NotifierMetrics = {
  /** Notification emails written to the outbox, by kind. */
  written: Counter<'kind'>;
  /** Informational emails not written because the user turned the kind off, by kind. */
  skipped: Counter<'kind'>;
  /** Notifier rounds that failed (the database was unreachable or refused). */
  failures: Counter;
};

/**
 * The notifier's metrics on the worker's registry: what it wrote and held back, its failures, and
 * at scrape time its backlog (events not yet handled) and the coalescing windows open.
 */
export function createNotifierMetrics(registry: Registry, pool: DatabasePool): NotifierMetrics {
  new Gauge({
    name: 'bank_notifier_backlog',
    help: 'Events (transfers, withdrawals, holds) the notifier has not handled yet; growing means notification emails fall behind.',
    registers: [registry],
    async collect() {
      try {
        this.set(await eventsRepository.backlog(pool, 'notifications'));
      } catch {
        // Database down: /readyz reports it.
      }
    },
  });
  new Gauge({
    name: 'bank_notification_windows_open',
    help: 'Recipients whose money-received window is open (their next payments go into one digest email).',
    registers: [registry],
    async collect() {
      try {
        this.set(await notificationRepository.countWindows(pool));
      } catch {
        // Database down: /readyz reports it.
      }
    },
  });
  return {
    written: new Counter({ name: 'bank_notifications_written_total', help: 'Notification emails written to the outbox, by kind.', labelNames: ['kind'], registers: [registry] }),
    skipped: new Counter({
      name: 'bank_notifications_skipped_total',
      help: 'Informational notification emails not written because the user turned that kind off, by kind.',
      labelNames: ['kind'],
      registers: [registry],
    }),
    failures: new Counter({ name: 'bank_notifier_failures_total', help: 'Notifier rounds that failed on a database error (the next interval retries).', registers: [registry] }),
  };
}

export type NotifierLoop = {
  /** Runs one round now (after the round in progress, if any). Throws when the database fails. */
  run(): Promise<NotifierOutcome>;
  /** Stops the timer and waits for the round in progress. */
  stop(): Promise<void>;
};

/**
 * Runs the notifier (shared/src/notifications) at start and every `intervalMs`: each round
 * handles events until a batch comes back short, then writes the digests of the windows closed
 * by then. A tick that finds a round running is skipped; a failed round is logged and the next
 * tick tries again (its transaction rolled back, so nothing was half done). Every worker replica
 * runs it: events and windows are claimed FOR UPDATE SKIP LOCKED.
 */
export function startNotifierLoop(options: { notifier: Notifier; intervalMs: number; logger: Logger; metrics?: NotifierMetrics }): NotifierLoop {
  const { notifier, intervalMs, logger, metrics } = options;
  let stopped = false;
  let running: Promise<unknown> | undefined;
  let tail: Promise<unknown> = Promise.resolve();

  const round = async (): Promise<NotifierOutcome> => {
    try {
      const outcome = await notifier.drain();
      for (const [kind, n] of Object.entries(outcome.written)) metrics?.written.inc({ kind }, n);
      for (const [kind, n] of Object.entries(outcome.skipped)) metrics?.skipped.inc({ kind }, n);
      return outcome;
    } catch (error) {
      metrics?.failures.inc();
      logger.warn({ err: errorSummary(error), retryInMs: intervalMs }, 'notifier round failed; will retry');
      throw error;
    }
  };
  const run = (): Promise<NotifierOutcome> => {
    const result = tail.then(round);
    tail = result.catch(() => undefined);
    return result;
  };
  const tick = () => {
    if (stopped || running) return;
    running = run()
      .catch(() => undefined)
      .finally(() => (running = undefined));
  };

  logger.info({ intervalMs }, 'notifier started');
  tick();
  const timer = setInterval(tick, intervalMs);
  timer.unref();
  return {
    run,
    async stop() {
      stopped = true;
      clearInterval(timer);
      await tail;
    },
  };
}
