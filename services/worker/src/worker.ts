// The worker process's composition root: pool, Redis, the outbox and hold sweepers, the BullMQ email
// worker, and the /healthz /readyz /metrics server.
import type { Config } from '@bank/shared/config/config';
import { createDatabasePool, type DatabasePool } from '@bank/shared/db/pool';
import { createLogger, type Logger } from '@bank/shared/logging/logger';
import { Mailer } from '@bank/shared/mail/mailer';
import { Notifier, type NotifierOutcome } from '@bank/shared/notifications/notifier.service';
import { createRegistry } from '@bank/shared/observability/metrics';
import { OutboxPublisher } from '@bank/shared/outbox/outbox-publisher';
import { outboxRepository } from '@bank/shared/outbox/outbox.repository';
import { startHealthServer } from '@bank/shared/process/health-server';
import { storesReadiness } from '@bank/shared/process/readiness';
import { shutdownSequence } from '@bank/shared/process/shutdown';
import { createEmailQueue } from '@bank/shared/queue/email-queue';
import { StatementEmailService, type StatementRunResult } from '@bank/shared/ledger/statement-email.service';
import { createRedis } from '@bank/shared/redis/redis';
import { startEmailWorker } from './email-worker.ts';
import { startEventPruner } from './event-pruner.ts';
import { startHoldSweeper } from './hold-sweeper.ts';
import { createNotifierMetrics, startNotifierLoop } from './notifier-loop.ts';
import { startInvariantChecker } from './invariant-checker.ts';
import { startOutboxSweeper } from './outbox-sweeper.ts';
import { startStatementScheduler, statementQueueName } from './statement-scheduler.ts';
import { createWebhookMetrics, startWebhookDispatcher } from './webhook-dispatcher.ts';
import { createWorkerMetrics } from './worker-metrics.ts';

/** The part of the configuration the worker reads. */
export type WorkerConfig = Pick<
  Config,
  | 'LOG_LEVEL'
  | 'HOST'
  | 'DATABASE_URL'
  | 'DATABASE_POOL_SIZE'
  | 'DATABASE_PREPARED_STATEMENTS'
  | 'REDIS_URL'
  | 'SMTP_URL'
  | 'MAIL_FROM'
  | 'PUBLIC_BASE_URL'
  | 'METRICS_PORT'
  | 'EMAIL_QUEUE_NAME'
  | 'WORKER_CONCURRENCY'
  | 'WORKER_LOCK_DURATION_MS'
  | 'WORKER_STALLED_INTERVAL_MS'
  | 'OUTBOX_SWEEP_INTERVAL_MS'
  | 'OUTBOX_SWEEP_PENDING_AFTER_MS'
  | 'OUTBOX_JOB_CHECK_INTERVAL_MS'
  | 'OUTBOX_JOB_MAX_RECOVERIES'
  | 'EMAIL_JOB_ATTEMPTS'
  | 'EMAIL_JOB_BACKOFF_MS'
  | 'HOLD_SWEEP_INTERVAL_MS'
  | 'HOLD_SWEEP_BATCH_SIZE'
  | 'EVENTS_RETENTION_DAYS'
  | 'EVENTS_PRUNE_INTERVAL_MS'
  | 'EVENTS_PRUNE_BATCH_SIZE'
  | 'STATEMENT_EMAIL_PAGE_SIZE'
  | 'NOTIFIER_INTERVAL_MS'
  | 'NOTIFIER_BATCH_SIZE'
  | 'NOTIFICATION_DIGEST_WINDOW_MS'
  | 'LEDGER_CHECK_INTERVAL_MS'
  | 'SHUTDOWN_TIMEOUT_MS'
  | 'NODE_ENV'
  | 'WEBHOOK_ALLOW_PRIVATE_TARGETS'
  | 'WEBHOOK_TIMEOUT_MS'
  | 'WEBHOOK_RETRY_BASE_MS'
  | 'WEBHOOK_RETRY_MAX_DELAY_MS'
  | 'WEBHOOK_RETRY_WINDOW_MS'
  | 'WEBHOOK_POLL_INTERVAL_MS'
  | 'WEBHOOK_CONCURRENCY'
>;

/** What the caller may hand in instead of having the worker open it (tests). */
export type WorkerDeps = {
  /** A pool the caller owns (not closed by close()). */
  pool?: DatabasePool;
  logger?: Logger;
  /** The address the metrics server listens on instead of HOST. */
  host?: string;
  /** The clock that decides which month the statement emails cover (tests set it to the 1st). */
  clock?: () => Date;
};

export type RunningWorker = {
  /** Port of the /healthz, /readyz, /metrics server. */
  metricsPort: number;
  /** The address that server is bound to (HOST unless the caller chose one). */
  metricsHost: string;
  /** Runs one sweep now; returns how many rows it enqueued. */
  sweep: (pendingAfterMs?: number) => Promise<number>;
  /** Runs one hold-expiry round now; returns how many holds it expired. */
  sweepHolds: () => Promise<number>;
  /** Runs one notifier round now: events into notification emails, closed windows into digests. */
  notify: () => Promise<NotifierOutcome>;
  /** Runs the statement emails of the clock's month before now, in this process. */
  runStatements: () => Promise<StatementRunResult>;
  /** Resolves once the statement schedule is in Redis and the start-up catch-up is queued (or not needed). */
  statementsReady: Promise<void>;
  /** Runs one ledger invariant check now (undefined when LEDGER_CHECK_INTERVAL_MS is 0). */
  checkInvariants: (() => Promise<Record<string, number>>) | undefined;
  /** Stops taking jobs, finishes the ones in hand (up to SHUTDOWN_TIMEOUT_MS), closes everything. */
  close: () => Promise<void>;
};

/**
 * Starts the email worker. Throws when the database pool cannot be created or the metrics port
 * cannot be bound; Redis and SMTP being down are not start-up errors (the worker waits and retries).
 */
export async function startWorker(config: WorkerConfig, deps: WorkerDeps = {}): Promise<RunningWorker> {
  const logger = deps.logger ?? createLogger({ name: 'worker', level: config.LOG_LEVEL });
  const pool = deps.pool ?? (await createDatabasePool(config.DATABASE_URL, {
      maximumPoolSize: config.DATABASE_POOL_SIZE,
      applicationName: 'bank-worker',
      preparedStatements: config.DATABASE_PREPARED_STATEMENTS,
    }));
  // Blocking connection for the Worker; a separate fail-fast one for the producer side and pings.
  const workerRedis = createRedis(config.REDIS_URL, { purpose: 'worker' });
  const clientRedis = createRedis(config.REDIS_URL);
  // The worker enqueues too (the sweep, lost jobs, notifications): the same retries as the API's.
  const queue = createEmailQueue(clientRedis, { name: config.EMAIL_QUEUE_NAME, retries: { attempts: config.EMAIL_JOB_ATTEMPTS, backoffMs: config.EMAIL_JOB_BACKOFF_MS } });
  // One kept-open SMTP connection per email the worker may send at once.
  const mailer = new Mailer({ smtpUrl: config.SMTP_URL, from: config.MAIL_FROM, maxConnections: config.WORKER_CONCURRENCY });
  const registry = createRegistry('worker');
  const metrics = createWorkerMetrics(registry, {
    collectQueue: () => queue.getJobCounts('waiting', 'delayed', 'active', 'failed', 'prioritized'),
    collectOutbox: () => outboxRepository.countPending(pool),
    collectOutboxAge: () => outboxRepository.oldestUnsentAgeSeconds(pool),
  });

  const emails = startEmailWorker({
    queueName: config.EMAIL_QUEUE_NAME,
    connection: workerRedis,
    concurrency: config.WORKER_CONCURRENCY,
    lockDurationMs: config.WORKER_LOCK_DURATION_MS,
    stalledIntervalMs: config.WORKER_STALLED_INTERVAL_MS,
    pool,
    mailer,
    publicBaseUrl: config.PUBLIC_BASE_URL,
    metrics,
    logger,
  });
  const publisher = new OutboxPublisher({ pool, queue, logger, maxJobRecoveries: config.OUTBOX_JOB_MAX_RECOVERIES });
  const sweeper = startOutboxSweeper({
    publisher,
    intervalMs: config.OUTBOX_SWEEP_INTERVAL_MS,
    pendingAfterMs: config.OUTBOX_SWEEP_PENDING_AFTER_MS,
    jobCheckIntervalMs: config.OUTBOX_JOB_CHECK_INTERVAL_MS,
    logger,
  });
  // Each replica sweeps; the SQL skips rows another sweep holds (see startHoldSweeper).
  const holdSweeper = startHoldSweeper({
    pool,
    intervalMs: config.HOLD_SWEEP_INTERVAL_MS,
    batchSize: config.HOLD_SWEEP_BATCH_SIZE,
    logger,
    metrics,
  });
  // Each replica prunes; the SQL skips rows another pruner or a consumer holds (see startEventPruner).
  const eventPruner = startEventPruner({
    pool,
    retentionDays: config.EVENTS_RETENTION_DAYS,
    intervalMs: config.EVENTS_PRUNE_INTERVAL_MS,
    batchSize: config.EVENTS_PRUNE_BATCH_SIZE,
    logger,
    metrics,
  });
  // Each replica notifies; events and digest windows are claimed FOR UPDATE SKIP LOCKED (see Notifier).
  const notifier = startNotifierLoop({
    notifier: new Notifier({ pool, outbox: publisher, windowMs: config.NOTIFICATION_DIGEST_WINDOW_MS, batchSize: config.NOTIFIER_BATCH_SIZE, logger }),
    intervalMs: config.NOTIFIER_INTERVAL_MS,
    logger,
    metrics: createNotifierMetrics(registry, pool),
  });
  const statements = startStatementScheduler({
    queueName: statementQueueName(config.EMAIL_QUEUE_NAME),
    workerConnection: workerRedis,
    clientConnection: clientRedis,
    service: new StatementEmailService({ pool, outbox: publisher, pageSize: config.STATEMENT_EMAIL_PAGE_SIZE, logger }),
    clock: deps.clock ?? (() => new Date()),
    lockDurationMs: config.WORKER_LOCK_DURATION_MS,
    stalledIntervalMs: config.WORKER_STALLED_INTERVAL_MS,
    logger,
  });
  // Each replica fans out and delivers; SKIP LOCKED and leases keep them apart (see startWebhookDispatcher).
  const webhooks = startWebhookDispatcher({
    pool,
    logger,
    metrics: createWebhookMetrics(registry, pool),
    policy: { requireHttps: config.NODE_ENV === 'production', allowPrivateTargets: config.WEBHOOK_ALLOW_PRIVATE_TARGETS },
    retry: { baseMs: config.WEBHOOK_RETRY_BASE_MS, maxDelayMs: config.WEBHOOK_RETRY_MAX_DELAY_MS, windowMs: config.WEBHOOK_RETRY_WINDOW_MS },
    timeoutMs: config.WEBHOOK_TIMEOUT_MS,
    pollIntervalMs: config.WEBHOOK_POLL_INTERVAL_MS,
    concurrency: config.WEBHOOK_CONCURRENCY,
  });
  const invariantChecker =
    config.LEDGER_CHECK_INTERVAL_MS > 0 ? startInvariantChecker({ pool, intervalMs: config.LEDGER_CHECK_INTERVAL_MS, logger, metrics }) : undefined;
  const healthServer = await startHealthServer({
    port: config.METRICS_PORT,
    host: deps.host ?? config.HOST,
    readiness: storesReadiness({ database: pool, redis: clientRedis }, logger),
    registry,
  });
  logger.info({ queue: config.EMAIL_QUEUE_NAME, metricsPort: healthServer.port }, 'worker started');

  return {
    metricsPort: healthServer.port,
    metricsHost: healthServer.host,
    sweep: sweeper.sweep,
    sweepHolds: holdSweeper.sweep,
    notify: notifier.run,
    runStatements: statements.runNow,
    statementsReady: statements.ready,
    checkInvariants: invariantChecker?.check,
    close: shutdownSequence(
      [
        ['outbox sweeper', () => sweeper.stop()],
        ['hold sweeper', () => holdSweeper.stop()],
        ['event pruner', () => eventPruner?.stop()],
        ['notifier', () => notifier.stop()],
        ['invariant checker', () => invariantChecker?.stop()],
        ['webhook dispatcher', () => webhooks.stop()],
        ['statement scheduler', () => statements.close(config.SHUTDOWN_TIMEOUT_MS)],
        ['email worker', () => emails.close(config.SHUTDOWN_TIMEOUT_MS)],
        ['email queue', () => queue.close().catch(() => undefined)],
        ['redis', () => (workerRedis.disconnect(), clientRedis.disconnect())],
        ['mailer', () => mailer.close()],
        ['health server', () => healthServer.close()],
        ['database pool', () => (deps.pool ? undefined : pool.end())],
      ],
      logger,
      'worker stopped',
    ),
  };
}
