import { SEND_VERIFICATION_EMAIL, verificationEmailPayloadSchema } from '@bank/shared/mail/email.schema';
import { renderVerificationEmail } from '@bank/shared/mail/email.templates';
import { defineEmailJob } from './email-job.ts';

/** Sends the sign-up / email-change verification link. */
export const sendVerificationEmailJob = defineEmailJob({
  name: SEND_VERIFICATION_EMAIL,
  payloadSchema: verificationEmailPayloadSchema,
  async process(payload, { mailer, publicBaseUrl, messageId }) {
    await mailer.send(renderVerificationEmail(payload, { publicBaseUrl }), { messageId });
  },
});
