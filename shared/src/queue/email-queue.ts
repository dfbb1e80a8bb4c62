import { Queue, type ConnectionOptions, type JobsOptions } from 'bullmq';
import { z } from 'zod';

/** Default BullMQ queue name for emails; tests use a unique name per run (Redis is shared). */
export const EMAIL_QUEUE_NAME = 'bank-email';

/** Job data is only the outbox id: the payload (with its secrets) stays in PostgreSQL. */
export const emailJobDataSchema = z.object({ outboxId: z.string().uuid() });
export type EmailJobData = z.infer<typeof emailJobDataSchema>;

/**
 * Retries with exponential backoff and 20% jitter: about 5 s, 10 s, 20 s, ... 85 min, so 12
 * attempts span roughly 2.3 to 2.8 hours. After the last one the outbox row is `failed` and
 * nothing sends it again, so the span must outlast an ordinary SMTP outage (the verification link
 * lives 24 h); jitter keeps a backlog from retrying in lockstep when SMTP comes back.
 */
export const EMAIL_JOB_OPTIONS: JobsOptions = {
  attempts: 12,
  backoff: { type: 'exponential', delay: 5_000, jitter: 0.2 },
  removeOnComplete: { age: 24 * 3_600, count: 10_000 },
  // Failed jobs stay visible to operators for a week.
  removeOnFail: { age: 7 * 24 * 3_600 },
};

export type EmailQueue = Queue<EmailJobData, unknown, string>;

/** The producer side of the email queue. Never throws; `add`/`addBulk` reject while Redis is unreachable. */
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
