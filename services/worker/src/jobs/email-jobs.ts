import type { AnyEmailJobDefinition } from './email-job.ts';
import { sendEmailChangeNoticeJob } from './send-email-change-notice.job.ts';
import { sendEmailChangedJob } from './send-email-changed-email.job.ts';
import { sendHoldCapturedEmailJob } from './send-hold-captured-email.job.ts';
import { sendHoldExpiredEmailJob } from './send-hold-expired-email.job.ts';
import { sendLoginEmailJob } from './send-login-email.job.ts';
import { sendMoneyReceivedDigestEmailJob } from './send-money-received-digest-email.job.ts';
import { sendMoneyReceivedEmailJob } from './send-money-received-email.job.ts';
import { sendNewLoginAddressEmailJob } from './send-new-login-address-email.job.ts';
import { sendPasswordChangedEmailJob } from './send-password-changed-email.job.ts';
import { sendPasswordResetEmailJob } from './send-password-reset-email.job.ts';
import { sendSignUpAttemptEmailJob } from './send-sign-up-attempt-email.job.ts';
import { sendStatementEmailJob } from './send-statement-email.job.ts';
import { sendVerificationEmailJob } from './send-verification-email.job.ts';
import { sendWithdrawalEmailJob } from './send-withdrawal-email.job.ts';

/** Every job this worker runs; the job name is the outbox kind. */
export const EMAIL_JOBS: readonly AnyEmailJobDefinition[] = [
  sendVerificationEmailJob,
  sendLoginEmailJob,
  sendSignUpAttemptEmailJob,
  sendPasswordResetEmailJob,
  sendPasswordChangedEmailJob,
  sendEmailChangeNoticeJob,
  sendEmailChangedJob,
  sendStatementEmailJob,
  sendMoneyReceivedEmailJob,
  sendMoneyReceivedDigestEmailJob,
  sendWithdrawalEmailJob,
  sendHoldCapturedEmailJob,
  sendHoldExpiredEmailJob,
  sendNewLoginAddressEmailJob,
];
