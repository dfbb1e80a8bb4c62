import type { Logger } from '@bank/shared/logging/logger';
import { monthBefore, monthName, type StatementEmailService, type StatementPeriod, type StatementRunResult } from '@bank/shared/ledger/statement-email.service';
import { errorSummary } from '@bank/shared/outbox/outbox-publisher';
import { withTimeout } from '@bank/shared/process/with-timeout';
import type { Redis } from '@bank/shared/redis/redis';
import { Queue, UnrecoverableError, Worker, type Job } from 'bullmq';
import { z } from 'zod';

/** The job scheduler's id and its jobs' name. */
export const MONTHLY_STATEMENTS_JOB = 'monthly-statements';
/** 00:00 UTC on the 1st of every month. */
export const MONTHLY_STATEMENTS_CRON = '0 0 1 * *';
/**
 * How early the scheduled job may start by this process's clock and still run the month that just
 * ended: Redis times the job, so a clock a little behind would otherwise read "the 30th" and pick
 * the month before.
 */
export const SCHEDULE_TOLERANCE_MS = 5 * 60_000;

/** A catch-up job names its month (`2026-11`); the scheduler's own jobs carry none. */
const jobDataSchema = z.object({ month: z.string().regex(/^\d{4}-(0[1-9]|1[0-2])$/).optional() });
type JobData = z.infer<typeof jobDataSchema>;

/**
 * The month a job runs: the one a catch-up job names, else (the scheduler's job) the month that
 * ended at `now`, give or take SCHEDULE_TOLERANCE_MS.
 */
export function periodOfJob(data: JobData, now: Date): StatementPeriod {
  return data.month
    ? monthBefore(new Date(Date.UTC(Number(data.month.slice(0, 4)), Number(data.month.slice(5, 7)), 1)))
    : monthBefore(new Date(now.getTime() + SCHEDULE_TOLERANCE_MS));
}

/** The queue of the monthly run: beside the email queue, its name with `-statements`. */
export const statementQueueName = (emailQueueName: string) => `${emailQueueName}-statements`;

export type StatementScheduler = {
  /** Runs the month before the current one (by the clock) now, in this process, without the queue. */
  runNow(): Promise<StatementRunResult>;
  /** Resolves once start-up (scheduler upsert and catch-up check) is done; never rejects. */
  ready: Promise<void>;
  /** Stops taking runs and finishes the one in hand, forcing after `timeoutMs`. */
  close(timeoutMs: number): Promise<void>;
};

/**
 * The monthly statement emails on a BullMQ job scheduler: a job at 00:00 UTC on the 1st runs the
 * month that just ended (StatementEmailService.run). Every worker replica upserts the same
 * scheduler (one schedule in Redis however many there are) and consumes the queue, so one of them
 * takes each job; and at start each checks the clock's month before and, when no run of it
 * finished (no worker was up on the 1st, or the run died), adds a catch-up job whose id names the
 * month, so replicas starting together add one. Whatever runs twice anyway (a retried or stalled
 * job, a catch-up beside the scheduled job), the claims keep it to one email per account.
 * `clock` decides the month (tests set it to the 1st); the schedule itself follows Redis's time.
 */
export function startStatementScheduler(options: {
  queueName: string;
  /** For the BullMQ Worker (commands wait for a reconnect). */
  workerConnection: Redis;
  /** For the queue (fails fast). */
  clientConnection: Redis;
  service: StatementEmailService;
  clock: () => Date;
  lockDurationMs: number;
  stalledIntervalMs: number;
  logger: Logger;
}): StatementScheduler {
  const { service, clock, logger } = options;
  const log = logger.child({ component: 'statement-scheduler' });
  const queue = new Queue<JobData, StatementRunResult, string>(options.queueName, { connection: options.clientConnection });
  queue.on('error', () => undefined);

  const controller = new AbortController();

  const worker = new Worker<JobData, StatementRunResult, string>(
    options.queueName,
    async (job: Job<JobData>) => {
      const data = jobDataSchema.safeParse(job.data ?? {});
      if (!data.success) throw new UnrecoverableError('statement job data must be { month?: YYYY-MM-DD }');
      const period = periodOfJob(data.data, clock());
      log.info({ jobId: job.id, month: monthName(period), attempt: job.attemptsMade + 1 }, 'statement emails: run starts');
      const result = await service.run(period, { signal: controller.signal });
      // Stopped between pages by close(): fail the attempt, so a live replica runs the rest.
      if (controller.signal.aborted) throw new Error('the worker stopped during the run; the rest of the month runs on retry');
      return result;
    },
    {
      connection: options.workerConnection,
      concurrency: 1,
      lockDuration: options.lockDurationMs,
      stalledInterval: options.stalledIntervalMs,
      autorun: true,
    },
  );
  worker.on('error', (error) => log.warn({ err: errorSummary(error) }, 'statement worker connection error'));
  worker.on('failed', (job, error) => {
    if (job) log.error({ jobId: job.id, attemptsMade: job.attemptsMade, err: errorSummary(error) }, 'statement emails: run failed');
  });

  const jobOptions = {
    attempts: 8,
    backoff: { type: 'exponential', delay: 10_000, jitter: 0.2 },
    removeOnComplete: { age: 30 * 24 * 3_600 },
    // A failed catch-up must not block the next start's catch-up with its job id.
    removeOnFail: true,
  };

  const start = async () => {
    await queue.upsertJobScheduler(MONTHLY_STATEMENTS_JOB, { pattern: MONTHLY_STATEMENTS_CRON, tz: 'UTC' }, { name: MONTHLY_STATEMENTS_JOB, data: {}, opts: jobOptions });
    const period = monthBefore(clock());
    if (await service.isDone(period)) {
      log.debug({ month: monthName(period) }, 'statement emails: month already done');
      return;
    }
    await queue.add(MONTHLY_STATEMENTS_JOB, { month: monthName(period) }, { ...jobOptions, jobId: `${MONTHLY_STATEMENTS_JOB}-${monthName(period)}` });
    log.info({ month: monthName(period) }, 'statement emails: month not done yet; catch-up queued');
  };
  // Redis or the database being down at start is no start-up error: the next start, or the 1st, runs it.
  const ready = start().catch((error: unknown) => log.warn({ err: errorSummary(error) }, 'statement emails: schedule or catch-up failed at start'));

  return {
    runNow: () => service.run(monthBefore(clock()), { signal: controller.signal }),
    ready,
    async close(timeoutMs) {
      controller.abort();
      try {
        await withTimeout(worker.close(), timeoutMs, 'statement worker close');
      } catch {
        await worker.close(true).catch(() => undefined);
      }
      await queue.close().catch(() => undefined);
    },
  };
}
