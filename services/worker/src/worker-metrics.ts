import { Counter, Gauge, type Registry } from 'prom-client';

export type WorkerMetrics = {
  registry: Registry;
  sent: Counter<'kind'>;
  failed: Counter<'kind' | 'reason'>;
  /** Pending holds the hold sweep marked expired. */
  holdsExpired: Counter;
  /** Hold sweep rounds that failed (the database was unreachable or refused). */
  holdSweepFailures: Counter;
  /** Events pruned past their retention, and pruning rounds that failed. */
  eventsPruned: Counter;
  eventPruneFailures: Counter;
  /** Rows breaking each ledger invariant, as the last check found. */
  invariantViolations: Gauge<'invariant'>;
  /** When the last ledger invariant check finished (Unix seconds), and how long it took. */
  invariantCheckedAt: Gauge;
  invariantCheckSeconds: Gauge<'scope'>;
  /** Ledger invariant checks that failed on a database error. */
  invariantCheckFailures: Counter;
};

/**
 * The worker's email and hold-sweep metrics on its registry (one per startWorker, so in-process tests do not
 * clash). `collectQueue` and `collectOutbox` are read at scrape time.
 */
export function createWorkerMetrics(
  registry: Registry,
  options: {
    collectQueue: () => Promise<Record<string, number>>;
    collectOutbox: () => Promise<number>;
    /** Seconds the oldest unsent email has waited (0 when none waits). */
    collectOutboxAge?: () => Promise<number>;
  },
): WorkerMetrics {
  const sent = new Counter({
    name: 'bank_emails_sent_total',
    help: 'Emails accepted by the SMTP server, by kind.',
    labelNames: ['kind'],
    registers: [registry],
  });
  const failed = new Counter({
    name: 'bank_emails_failed_total',
    help: 'Email attempts that failed, by kind and reason (transient, exhausted, bad_payload, ...).',
    labelNames: ['kind', 'reason'],
    registers: [registry],
  });
  new Gauge({
    name: 'bank_email_queue_depth',
    help: 'Email jobs in the queue by state.',
    labelNames: ['state'],
    registers: [registry],
    async collect() {
      try {
        const counts = await options.collectQueue();
        for (const [state, count] of Object.entries(counts)) this.set({ state }, count);
      } catch {
        // Redis down: leave the last values; /readyz reports the outage.
      }
    },
  });
  new Gauge({
    name: 'bank_outbox_unsent',
    help: 'Outbox rows not yet sent (pending or enqueued).',
    registers: [registry],
    async collect() {
      try {
        this.set(await options.collectOutbox());
      } catch {
        // Database down: /readyz reports it.
      }
    },
  });
  new Gauge({
    name: 'bank_outbox_oldest_unsent_age_seconds',
    help: 'How long the oldest email not yet sent (an outbox row pending or enqueued) has waited, in seconds; 0 when none waits.',
    registers: [registry],
    async collect() {
      try {
        if (options.collectOutboxAge) this.set(await options.collectOutboxAge());
      } catch {
        // Database down: /readyz reports it.
      }
    },
  });
  const holdsExpired = new Counter({
    name: 'bank_holds_expired_total',
    help: 'Pending holds past their deadline that the hold sweep marked expired.',
    registers: [registry],
  });
  const holdSweepFailures = new Counter({
    name: 'bank_hold_sweep_failures_total',
    help: 'Hold sweep rounds that failed on a database error (the next interval retries).',
    registers: [registry],
  });
  const eventsPruned = new Counter({
    name: 'bank_events_pruned_total',
    help: 'Events past EVENTS_RETENTION_DAYS deleted (with their finished webhook deliveries).',
    registers: [registry],
  });
  const eventPruneFailures = new Counter({
    name: 'bank_event_prune_failures_total',
    help: 'Event pruning rounds that failed on a database error (the next interval retries).',
    registers: [registry],
  });
  const invariantViolations = new Gauge({
    name: 'bank_ledger_invariant_violations',
    help: 'Rows breaking each ledger invariant (DESIGN.md) in the last check; anything but 0 is a bug to page on.',
    labelNames: ['invariant'],
    registers: [registry],
  });
  const invariantCheckedAt = new Gauge({
    name: 'bank_ledger_invariant_check_timestamp_seconds',
    help: 'When the last ledger invariant check finished (Unix time).',
    registers: [registry],
  });
  const invariantCheckSeconds = new Gauge({
    name: 'bank_ledger_invariant_check_duration_seconds',
    help: 'How long the last ledger invariant check took, by scope (whole ledger or what was written since the round before last).',
    labelNames: ['scope'],
    registers: [registry],
  });
  const invariantCheckFailures = new Counter({
    name: 'bank_ledger_invariant_check_failures_total',
    help: 'Ledger invariant checks that failed on a database error (the next interval retries).',
    registers: [registry],
  });
  return { registry, sent, failed, holdsExpired, holdSweepFailures, eventsPruned, eventPruneFailures, invariantViolations, invariantCheckedAt, invariantCheckSeconds, invariantCheckFailures };
}
