import { renderPasswordChangedEmail } from '@bank/shared/mail/account-email.templates';
import { SEND_PASSWORD_CHANGED_EMAIL, passwordChangedEmailPayloadSchema } from '@bank/shared/mail/email.schema';
import { defineEmailJob } from './email-job.ts';

/** Tells the user their password was changed or reset. */
export const sendPasswordChangedEmailJob = defineEmailJob({
  name: SEND_PASSWORD_CHANGED_EMAIL,
  payloadSchema: passwordChangedEmailPayloadSchema,
  async process(payload, { mailer, messageId }) {
    await mailer.send(renderPasswordChangedEmail(payload), { messageId });
  },
});
