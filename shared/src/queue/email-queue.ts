import { SpanKind } from '@opentelemetry/api';
import { Queue, type BulkJobOptions, type ConnectionOptions, type Job, type JobsOptions } from 'bullmq';
import { z } from 'zod';
import { SEND_STATEMENT_EMAIL } from '../mail/email.schema.ts';
import {
  SEND_HOLD_CAPTURED_EMAIL,
  SEND_HOLD_EXPIRED_EMAIL,
  SEND_MONEY_RECEIVED_DIGEST_EMAIL,
  SEND_MONEY_RECEIVED_EMAIL,
  SEND_WITHDRAWAL_EMAIL,
} from '../mail/notification-email.schema.ts';
import { inSpan, traceCarrier } from '../observability/tracing.ts';

/** Default BullMQ queue name for emails; tests use a unique name per run (Redis is shared). */
export const EMAIL_QUEUE_NAME = 'bank-email';

/**
 * Job data is the outbox id, the payload (with its secrets) stays in PostgreSQL; and, when tracing
 * is on, the W3C trace context of whoever enqueued it (`traceparent`), which the worker continues.
 */
export const emailJobDataSchema = z.object({
  outboxId: z.string().uuid(),
  trace: z.record(z.string(), z.string()).optional(),
  /** How many times the job was re-added after it failed without settling its row (recoverLostJobs). */
  recoveries: z.number().int().min(0).optional(),
});
export type EmailJobData = z.infer<typeof emailJobDataSchema>;

/** An email job's attempts and its first retry's delay (EMAIL_JOB_ATTEMPTS, EMAIL_JOB_BACKOFF_MS). */
export type EmailJobRetries = { attempts: number; backoffMs: number };

/** The production retries: 12 attempts, the first retry after about 5 s (the config's defaults). */
export const EMAIL_JOB_RETRIES: EmailJobRetries = { attempts: 12, backoffMs: 5_000 };

/**
 * Every email job's options. Retries with exponential backoff and 20% jitter: by default about
 * 5 s, 10 s, 20 s, ... 85 min, so 12 attempts span roughly 2.3 to 2.8 hours. After the last one
 * the outbox row is `failed` and nothing sends it again, so the span must outlast an ordinary SMTP
 * outage (the verification link lives 24 h); jitter keeps a backlog from retrying in lockstep when
 * SMTP comes back. Tests shorten them (the config's EMAIL_JOB_* settings) to never wait that long.
 */
export function emailJobDefaults(retries: EmailJobRetries = EMAIL_JOB_RETRIES): JobsOptions {
  return {
    attempts: retries.attempts,
    backoff: { type: 'exponential', delay: retries.backoffMs, jitter: 0.2 },
    removeOnComplete: { age: 24 * 3_600, count: 10_000 },
    // Failed jobs stay visible to operators for a week.
    removeOnFail: { age: 7 * 24 * 3_600 },
  };
}

/** The options of production's defaults. */
export const EMAIL_JOB_OPTIONS: JobsOptions = emailJobDefaults();

export type EmailQueue = Queue<EmailJobData, unknown, string>;

/**
 * The emails that may wait: what happened to a user's money and the monthly statements. They can
 * come by the thousand (a storm of captured holds, every account's statement on the 1st), and a
 * login code or a verification link must not queue behind them: a login code lives 10 minutes.
 * Their jobs get BULK_EMAIL_PRIORITY; every other email (sign-up, login, password, email change,
 * a login from a new address) gets none, and BullMQ hands out jobs without a priority before any
 * prioritized one. Among themselves both kinds keep their order.
 */
export const BULK_EMAIL_KINDS: ReadonlySet<string> = new Set([
  SEND_MONEY_RECEIVED_EMAIL,
  SEND_MONEY_RECEIVED_DIGEST_EMAIL,
  SEND_WITHDRAWAL_EMAIL,
  SEND_HOLD_CAPTURED_EMAIL,
  SEND_HOLD_EXPIRED_EMAIL,
  SEND_STATEMENT_EMAIL,
]);
export const BULK_EMAIL_PRIORITY = 10;

/** The BullMQ options of an outbox row's job: its id, and BULK_EMAIL_PRIORITY for a bulk kind. */
export function emailJobOptions(row: { id: string; kind: string }): BulkJobOptions {
  return BULK_EMAIL_KINDS.has(row.kind) ? { jobId: row.id, priority: BULK_EMAIL_PRIORITY } : { jobId: row.id };
}

/**
 * The email queue, with every enqueue in a producer span whose trace context rides in the job data,
 * so the worker's span for the job joins the trace of the request that asked for the email.
 * Without tracing, add and addBulk are BullMQ's own.
 */
class TracedEmailQueue extends Queue<EmailJobData, unknown, string> {
  override add(name: string, data: EmailJobData, opts?: JobsOptions): Promise<Job<EmailJobData, unknown, string>> {
    return inSpan(`send ${this.name}`, producerSpan(this.name, 1), () => super.add(name, withTrace(data), opts));
  }

  override addBulk(jobs: { name: string; data: EmailJobData; opts?: BulkJobOptions }[]): Promise<Job<EmailJobData, unknown, string>[]> {
    return inSpan(`send ${this.name}`, producerSpan(this.name, jobs.length), () => super.addBulk(jobs.map((job) => ({ ...job, data: withTrace(job.data) }))));
  }
}

const producerSpan = (queue: string, count: number) => ({
  kind: SpanKind.PRODUCER,
  attributes: { 'messaging.system': 'bullmq', 'messaging.operation.type': 'send', 'messaging.destination.name': queue, 'messaging.batch.message_count': count },
});

function withTrace(data: EmailJobData): EmailJobData {
  const trace = traceCarrier();
  return trace ? { ...data, trace } : data;
}

/** The producer side of the email queue. Never throws; `add`/`addBulk` reject while Redis is unreachable. */
export function createEmailQueue(connection: ConnectionOptions, options: { name?: string; prefix?: string; retries?: EmailJobRetries } = {}): EmailQueue {
  const queue: EmailQueue = new TracedEmailQueue(options.name ?? EMAIL_QUEUE_NAME, {
    connection,
    prefix: options.prefix,
    defaultJobOptions: emailJobDefaults(options.retries),
  });
  // Connection problems surface on the calls that need Redis; an unhandled 'error' must not crash.
  queue.on('error', () => undefined);
  return queue;
}
