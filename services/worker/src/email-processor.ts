import { groupWhileInFlight } from '@bank/shared/db/group-while-in-flight';
import { SECRET_PAYLOAD_FIELDS } from '@bank/shared/mail/email.schema';
import type { Mailer } from '@bank/shared/mail/mailer';
import type { Logger } from '@bank/shared/logging/logger';
import { errorSummary } from '@bank/shared/outbox/outbox-publisher';
import { outboxRepository } from '@bank/shared/outbox/outbox.repository';
import { emailJobDataSchema, type EmailJobData } from '@bank/shared/queue/email-queue';
import { UnrecoverableError, type Job } from 'bullmq';
import type { DatabasePool } from 'slonik';
import type { AnyEmailJobDefinition } from './jobs/email-job.ts';
import type { WorkerMetrics } from './worker-metrics.ts';

export type EmailOutcome = 'sent' | 'skipped';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * How long a sent email's job keeps trying to mark its row sent (a database restart or crash
 * recovery takes seconds; 5 tries over about 6 s ended inside the chaos run's 7-9 s crashes).
 */
const MARK_SENT_RETRY_MS = 60_000;

/**
 * The BullMQ processor for every email job. The job carries only the outbox id; the row is the
 * source of truth: a row already `sent` is skipped (a duplicate or replayed job sends nothing),
 * a bad payload marks the row `failed` and throws UnrecoverableError (no retry, stays visible),
 * an email whose secret expired meanwhile is marked `failed` and not sent (retries last hours),
 * an SMTP failure throws so BullMQ retries with backoff, and the last failed attempt marks the row
 * `failed`. Once SMTP accepted a message the job never throws a retryable error again, so the
 * normal retry path cannot send a row twice.
 */
export function createEmailProcessor(options: {
  pool: DatabasePool;
  mailer: Mailer;
  jobs: readonly AnyEmailJobDefinition[];
  publicBaseUrl: string;
  metrics: WorkerMetrics;
  logger: Logger;
}) {
  const { pool, mailer, metrics, logger } = options;
  const jobs = new Map(options.jobs.map((job) => [job.name, job]));
  // The jobs running at once (WORKER_CONCURRENCY) read their rows and mark them sent together: one
  // statement (and one commit) for those that get there while another is in flight.
  const findRow = groupWhileInFlight(async (ids: readonly string[]) => {
    const rows = new Map((await outboxRepository.findByIds(pool, ids)).map((row) => [row.id, row]));
    return ids.map((id) => rows.get(id) ?? null);
  });
  const markSent = groupWhileInFlight((ids: readonly string[]) => outboxRepository.markSentMany(pool, ids, SECRET_PAYLOAD_FIELDS));

  return async function processEmailJob(job: Job<EmailJobData>): Promise<EmailOutcome> {
    const data = emailJobDataSchema.safeParse(job.data);
    if (!data.success) {
      metrics.failed.inc({ kind: job.name, reason: 'bad_job_data' });
      throw new UnrecoverableError('job data must be { outboxId: uuid }');
    }
    const outboxId = data.data.outboxId;
    const log = logger.child({ jobId: job.id, kind: job.name, outboxId, attempt: job.attemptsMade + 1 });
    const definition = jobs.get(job.name);
    if (!definition) {
      await outboxRepository.markFailed(pool, outboxId, `no email job named ${job.name}`, SECRET_PAYLOAD_FIELDS);
      metrics.failed.inc({ kind: job.name, reason: 'unknown_job' });
      throw new UnrecoverableError(`no email job named ${job.name}`);
    }
    const row = await findRow(outboxId);
    if (!row) {
      metrics.failed.inc({ kind: job.name, reason: 'missing_row' });
      throw new UnrecoverableError('outbox row not found');
    }
    if (row.status === 'sent' || row.status === 'failed') {
      log.info({ status: row.status }, 'outbox row already settled; nothing sent');
      return 'skipped';
    }
    const payload = definition.payloadSchema.safeParse(row.payload);
    if (!payload.success) {
      const reason = `invalid payload: ${payload.error.issues.map((issue) => `${issue.path.join('.') || '(root)'} ${issue.message}`).join('; ')}`;
      await outboxRepository.markFailed(pool, outboxId, reason, SECRET_PAYLOAD_FIELDS);
      metrics.failed.inc({ kind: job.name, reason: 'bad_payload' });
      log.error({ reason }, 'email payload invalid; not retrying');
      throw new UnrecoverableError(reason);
    }

    // A retry that comes after the link, token or code expired would only mail a dead secret.
    const expiresAt = (payload.data as { expiresAt?: unknown }).expiresAt;
    if (typeof expiresAt === 'string' && Date.parse(expiresAt) <= Date.now()) {
      await outboxRepository.markFailed(pool, outboxId, `expired at ${expiresAt} before it could be sent`, SECRET_PAYLOAD_FIELDS);
      metrics.failed.inc({ kind: job.name, reason: 'expired' });
      log.warn({ expiresAt }, 'email expired before it could be sent; not sending');
      return 'skipped';
    }

    try {
      await definition.process(payload.data, { mailer, publicBaseUrl: options.publicBaseUrl, messageId: `<${outboxId}@bank.outbox>`, pool });
    } catch (error) {
      const summary = errorSummary(error);
      // A job may say a retry cannot help (UnrecoverableError: the statement's account is gone): settle the row now.
      const last = error instanceof UnrecoverableError || job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
      await outboxRepository.recordAttempt(pool, outboxId, `${summary.name}: ${summary.message}`).catch(() => undefined);
      if (last) await outboxRepository.markFailed(pool, outboxId, `gave up after ${job.attemptsMade + 1} attempts: ${summary.message}`, SECRET_PAYLOAD_FIELDS).catch(() => undefined);
      metrics.failed.inc({ kind: job.name, reason: last ? 'exhausted' : 'transient' });
      log.warn({ err: summary, last }, 'email send failed');
      throw error;
    }

    // SMTP accepted the message: from here on, failures must not lead to a resend. A database
    // outage is waited out (the job's lock is renewed meanwhile): given up, the row would stay
    // unsettled and the lost-job check would send the email again.
    const giveUpAt = Date.now() + MARK_SENT_RETRY_MS;
    for (let attempt = 1; ; attempt += 1) {
      try {
        await markSent(outboxId);
        break;
      } catch (error) {
        if (Date.now() >= giveUpAt) {
          log.error({ err: errorSummary(error), attempts: attempt }, 'email sent but the outbox row could not be marked sent');
          throw new UnrecoverableError('email sent, but marking the outbox row sent failed; not retrying to avoid a duplicate');
        }
        if (attempt === 1) log.warn({ err: errorSummary(error) }, 'email sent; marking its outbox row sent failed, retrying until the database answers');
        await sleep(Math.min(200 * 2 ** attempt, 2_000));
      }
    }
    metrics.sent.inc({ kind: job.name });
    log.info('email sent');
    return 'sent';
  };
}
