import { renderEmailChanged } from '@bank/shared/mail/account-email.templates';
import { SEND_EMAIL_CHANGED_EMAIL, emailChangedPayloadSchema } from '@bank/shared/mail/email.schema';
import { defineEmailJob } from './email-job.ts';

/** Tells the old address that the account's email moved away from it (a security notice). */
export const sendEmailChangedJob = defineEmailJob({
  name: SEND_EMAIL_CHANGED_EMAIL,
  payloadSchema: emailChangedPayloadSchema,
  async process(payload, { mailer, messageId }) {
    await mailer.send(renderEmailChanged(payload), { messageId });
  },
});
