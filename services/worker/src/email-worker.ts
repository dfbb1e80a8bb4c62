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
 * The BullMQ Worker that sends emails from the queue. A job held by a worker that died is taken
 * back when its lock expires (the stall check runs once per lock duration).
 */
export function startEmailWorker(options: {
  queueName: string;
  connection: Redis;
  concurrency: number;
  lockDurationMs: number;
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
      stalledInterval: options.lockDurationMs,
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
