import { renderPasswordResetEmail } from '@bank/shared/mail/account-email.templates';
import { SEND_PASSWORD_RESET_EMAIL, passwordResetEmailPayloadSchema } from '@bank/shared/mail/email.schema';
import { defineEmailJob } from './email-job.ts';

/** Sends the single-use password-reset link. */
export const sendPasswordResetEmailJob = defineEmailJob({
  name: SEND_PASSWORD_RESET_EMAIL,
  payloadSchema: passwordResetEmailPayloadSchema,
  async process(payload, { mailer, publicBaseUrl, messageId }) {
    await mailer.send(renderPasswordResetEmail(payload, { publicBaseUrl }), { messageId });
  },
});
