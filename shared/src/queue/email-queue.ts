import { Queue, type ConnectionOptions, type JobsOptions } from 'bullmq';
import { z } from 'zod';

/** Default BullMQ queue name for emails; tests use a unique name per run (Redis is shared). */
export const EMAIL_QUEUE_NAME = 'bank-email';

/** Job data is only the outbox id: the payload (with its secrets) stays in PostgreSQL. */
export const emailJobDataSchema = z.object({ outboxId: z.string().uuid() });
export type EmailJobData = z.infer<typeof emailJobDataSchema>;

/** Retries with exponential backoff: 2 s, 4 s, 8 s, ... about 8.5 minutes over 8 attempts. */
export const EMAIL_JOB_OPTIONS: JobsOptions = {
  attempts: 8,
  backoff: { type: 'exponential', delay: 2_000 },
  removeOnComplete: { age: 24 * 3_600, count: 10_000 },
  // Failed jobs stay visible to operators for a week.
  removeOnFail: { age: 7 * 24 * 3_600 },
};

export type EmailQueue = Queue<EmailJobData, unknown, string>;

export function createEmailQueue(connection: ConnectionOptions, options: { name?: string; prefix?: string } = {}): EmailQueue {
  const queue: EmailQueue = new Queue(options.name ?? EMAIL_QUEUE_NAME, {
    connection,
    prefix: options.prefix,
    defaultJobOptions: EMAIL_JOB_OPTIONS,
  });
  // Connection problems surface on the calls that need Redis; an unhandled 'error' must not crash.
  queue.on('error', () => undefined);
  return queue;
}
