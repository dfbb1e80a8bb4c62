import type { Logger } from '@bank/shared/logging/logger';
import type { Mailer } from '@bank/shared/mail/mailer';
import { errorSummary } from '@bank/shared/outbox/outbox-publisher';
import { contextFromCarrier, inSpan } from '@bank/shared/observability/tracing';
import { emailJobDataSchema, type EmailJobData } from '@bank/shared/queue/email-queue';
import type { Redis } from '@bank/shared/redis/redis';
import { withTimeout } from '@bank/shared/process/with-timeout';
import { SpanKind } from '@opentelemetry/api';
import { Worker, type Job } from 'bullmq';
import type { DatabasePool } from 'slonik';
import { createEmailProcessor, type EmailOutcome } from './email-processor.ts';
import { EMAIL_JOBS } from './jobs/email-jobs.ts';
import type { WorkerMetrics } from './worker-metrics.ts';

export type EmailWorker = {
  /** Stops taking jobs and finishes the ones in hand, forcing after `timeoutMs`. */
  close(timeoutMs: number): Promise<void>;
};

/**
 * The longest a job held by a worker that died waits before a live worker takes it again. The dead
 * worker's lock was renewed at most lockDuration / 2 before it died, so it expires within
 * `lockDurationMs`; the stall check (queue-wide, every `stalledIntervalMs`) first marks the job
 * and moves it back to wait at the first check after the lock is gone, no earlier than one
 * interval after marking it: the later of lock + one interval and two intervals. Assumes some
 * worker of the queue is alive to run the checks.
 */
export function worstCaseRedeliveryMs(settings: { lockDurationMs: number; stalledIntervalMs: number }): number {
  return Math.max(settings.lockDurationMs + settings.stalledIntervalMs, 2 * settings.stalledIntervalMs);
}

/**
 * The BullMQ Worker that sends emails from the queue. A job held by a worker that died is taken
 * back within worstCaseRedeliveryMs (a message handed to SMTP just before the death may then go
 * out twice, with the same Message-ID: at least once, never lost).
 */
export function startEmailWorker(options: {
  queueName: string;
  connection: Redis;
  concurrency: number;
  /** How long a job's lock lasts without renewal (renewed every half of it while the job runs). */
  lockDurationMs: number;
  /** How often the queue checks for jobs whose lock expired (held by a worker that died). */
  stalledIntervalMs: number;
  pool: DatabasePool;
  mailer: Mailer;
  publicBaseUrl: string;
  metrics: WorkerMetrics;
  logger: Logger;
}): EmailWorker {
  const { logger } = options;
  const processEmailJob = createEmailProcessor({ pool: options.pool, mailer: options.mailer, jobs: EMAIL_JOBS, publicBaseUrl: options.publicBaseUrl, metrics: options.metrics, logger });
  const worker = new Worker<EmailJobData, EmailOutcome, string>(
    options.queueName,
    // Each job in a consumer span that continues the trace of the request that enqueued it.
    (job: Job<EmailJobData>) =>
      inSpan(
        `process ${options.queueName}`,
        {
          kind: SpanKind.CONSUMER,
          parent: contextFromCarrier(emailJobDataSchema.shape.trace.safeParse(job.data?.trace).data),
          attributes: {
            'messaging.system': 'bullmq',
            'messaging.operation.type': 'process',
            'messaging.destination.name': options.queueName,
            'messaging.message.id': job.id ?? '',
            'bank.email.kind': job.name,
            'bank.job.attempt': job.attemptsMade + 1,
          },
        },
        () => processEmailJob(job),
      ),
    {
      connection: options.connection,
      concurrency: options.concurrency,
      lockDuration: options.lockDurationMs,
      stalledInterval: options.stalledIntervalMs,
      maxStalledCount: 2,
      autorun: true,
    },
  );
  worker.on('error', (error) => logger.warn({ err: errorSummary(error) }, 'worker connection error'));
  worker.on('failed', (job, error) => {
    if (job) logger.warn({ jobId: job.id, kind: job.name, attemptsMade: job.attemptsMade, err: errorSummary(error) }, 'email job failed');
  });
  return {
    async close(timeoutMs) {
      logger.info('worker stopping: finishing jobs in hand');
      try {
        await withTimeout(worker.close(), timeoutMs, 'graceful worker close');
      } catch (error) {
        logger.warn({ err: errorSummary(error) }, 'jobs did not finish in time; forcing close');
        await worker.close(true).catch(() => undefined);
      }
    },
  };
}
