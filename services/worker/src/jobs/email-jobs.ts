import type { AnyEmailJobDefinition } from './email-job.ts';
import { sendLoginEmailJob } from './send-login-email.job.ts';
import { sendVerificationEmailJob } from './send-verification-email.job.ts';

/** Every job this worker runs; the job name is the outbox kind. */
export const EMAIL_JOBS: readonly AnyEmailJobDefinition[] = [sendVerificationEmailJob, sendLoginEmailJob];
