import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Config } from '@bank/shared/config/config';
import { createDatabasePool } from '@bank/shared/db/pool';
import { createLogger, type Logger } from '@bank/shared/logging/logger';
import { Mailer } from '@bank/shared/mail/mailer';
import { errorSummary, OutboxPublisher } from '@bank/shared/outbox/outbox-publisher';
import { outboxRepository } from '@bank/shared/outbox/outbox.repository';
import { createEmailQueue, type EmailJobData } from '@bank/shared/queue/email-queue';
import { createRedis } from '@bank/shared/redis/redis';
import { Worker } from 'bullmq';
import { sql, type DatabasePool } from 'slonik';
import { createEmailProcessor, type EmailOutcome } from './email-processor.ts';
import type { AnyEmailJobDefinition } from './jobs/email-job.ts';
import { sendLoginEmailJob } from './jobs/send-login-email.job.ts';
import { sendVerificationEmailJob } from './jobs/send-verification-email.job.ts';
import { createWorkerMetrics } from './worker-metrics.ts';

/** Every job this worker runs; the job name is the outbox kind. */
export const EMAIL_JOBS: readonly AnyEmailJobDefinition[] = [sendVerificationEmailJob, sendLoginEmailJob];

export type WorkerOverrides = {
  /** An existing pool (not closed by close()); otherwise one is opened from DATABASE_URL. */
  pool?: DatabasePool;
  logger?: Logger;
  queueName?: string;
  concurrency?: number;
  lockDurationMs?: number;
  sweepIntervalMs?: number;
  /** How old a pending row must be before the sweep takes it (the use case enqueues it itself first). */
  sweepPendingAfterMs?: number;
  metricsPort?: number;
  metricsHost?: string;
};

export type RunningWorker = {
  /** Port of the /healthz, /readyz, /metrics server. */
  metricsPort: number;
  /** Runs one sweep now; returns how many rows it enqueued. */
  sweep: (pendingAfterMs?: number) => Promise<number>;
  /** Stops taking jobs, finishes the ones in hand (up to SHUTDOWN_TIMEOUT_MS), closes everything. */
  close: () => Promise<void>;
};

const withTimeout = <T>(promise: Promise<T>, ms: number, what: string): Promise<T> => {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
};

/**
 * The email worker: a BullMQ Worker on the email queue, the periodic outbox sweep, and a small
 * HTTP server with /healthz, /readyz (database and Redis) and /metrics. Throws when the database
 * pool cannot be created or the metrics port cannot be bound; Redis and SMTP being down are not
 * start-up errors (the worker waits and retries).
 */
export async function startWorker(config: Config, overrides: WorkerOverrides = {}): Promise<RunningWorker> {
  const logger = overrides.logger ?? createLogger({ name: 'worker', level: config.LOG_LEVEL });
  const ownsPool = overrides.pool === undefined;
  const pool = overrides.pool ?? (await createDatabasePool(config.DATABASE_URL, { maximumPoolSize: config.DATABASE_POOL_SIZE }));
  const queueName = overrides.queueName ?? config.EMAIL_QUEUE_NAME;
  const lockDuration = overrides.lockDurationMs ?? config.WORKER_LOCK_DURATION_MS;

  // Blocking connection for the Worker; a separate fail-fast one for the producer side and pings.
  const workerRedis = createRedis(config.REDIS_URL, { purpose: 'worker' });
  const clientRedis = createRedis(config.REDIS_URL);
  const queue = createEmailQueue(clientRedis, { name: queueName });
  const publisher = new OutboxPublisher({ pool, queue, logger });
  const mailer = new Mailer({ smtpUrl: config.SMTP_URL, from: config.MAIL_FROM });

  const metrics = createWorkerMetrics({
    collectQueue: () => queue.getJobCounts('waiting', 'delayed', 'active', 'failed', 'prioritized'),
    collectOutbox: () => outboxRepository.countPending(pool),
  });

  const worker = new Worker<EmailJobData, EmailOutcome, string>(
    queueName,
    createEmailProcessor({ pool, mailer, jobs: EMAIL_JOBS, publicBaseUrl: config.PUBLIC_BASE_URL, metrics, logger }),
    {
      connection: workerRedis,
      concurrency: overrides.concurrency ?? config.WORKER_CONCURRENCY,
      lockDuration,
      // A job whose worker died is taken back after its lock expires.
      stalledInterval: lockDuration,
      maxStalledCount: 2,
      autorun: true,
    },
  );
  worker.on('error', (error) => logger.warn({ err: errorSummary(error) }, 'worker connection error'));
  worker.on('failed', (job, error) => {
    if (job) logger.warn({ jobId: job.id, kind: job.name, attemptsMade: job.attemptsMade, err: errorSummary(error) }, 'email job failed');
  });

  const sweepIntervalMs = overrides.sweepIntervalMs ?? config.OUTBOX_SWEEP_INTERVAL_MS;
  const sweep = (pendingAfterMs = overrides.sweepPendingAfterMs ?? 5_000) => publisher.sweep({ pendingAfterMs });
  let sweeping: Promise<unknown> = Promise.resolve();
  const runSweep = (pendingAfterMs?: number) => {
    sweeping = sweep(pendingAfterMs).catch((error: unknown) => logger.warn({ err: errorSummary(error) }, 'outbox sweep failed; will retry'));
  };
  // At start-up every pending row is fair game (nothing of ours is racing to enqueue it); later
  // sweeps leave fresh rows to the use case that wrote them. A duplicate enqueue would collapse anyway.
  runSweep(0);
  const sweepTimer = setInterval(() => runSweep(), sweepIntervalMs);
  sweepTimer.unref();

  const ready = async (): Promise<{ database: boolean; redis: boolean }> => {
    const [database, redis] = await Promise.all([
      withTimeout(pool.query(sql.unsafe`SELECT 1`), 2_000, 'database ping').then(() => true, () => false),
      withTimeout(clientRedis.ping(), 2_000, 'redis ping').then(() => true, () => false),
    ]);
    return { database, redis };
  };

  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const reply = (status: number, body: string, type = 'application/json') => {
      res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
      res.end(body);
    };
    if (req.method !== 'GET') return reply(405, JSON.stringify({ error: 'method not allowed' }));
    if (path === '/healthz') return reply(200, JSON.stringify({ status: 'ok' }));
    if (path === '/readyz') {
      ready().then(
        (checks) => reply(checks.database && checks.redis ? 200 : 503, JSON.stringify({ status: checks.database && checks.redis ? 'ok' : 'unavailable', checks })),
        () => reply(503, JSON.stringify({ status: 'unavailable' })),
      );
      return;
    }
    if (path === '/metrics') {
      metrics.registry.metrics().then(
        (text) => reply(200, text, metrics.registry.contentType),
        () => reply(500, 'metrics unavailable', 'text/plain'),
      );
      return;
    }
    return reply(404, JSON.stringify({ error: 'not found' }));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(overrides.metricsPort ?? config.METRICS_PORT, overrides.metricsHost ?? '0.0.0.0', () => resolve());
  });
  const metricsPort = (server.address() as AddressInfo).port;
  logger.info({ queue: queueName, metricsPort }, 'worker started');

  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      clearInterval(sweepTimer);
      logger.info('worker stopping: finishing jobs in hand');
      try {
        await withTimeout(worker.close(), config.SHUTDOWN_TIMEOUT_MS, 'graceful worker close');
      } catch (error) {
        logger.warn({ err: errorSummary(error) }, 'jobs did not finish in time; forcing close');
        await worker.close(true).catch(() => undefined);
      }
      await sweeping;
      await queue.close().catch(() => undefined);
      workerRedis.disconnect();
      clientRedis.disconnect();
      mailer.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      if (ownsPool) await pool.end();
      logger.info('worker stopped');
    })();
    return closing;
  };

  return { metricsPort, sweep, close };
}
