import { loginEmailPayloadSchema, SEND_LOGIN_EMAIL } from '@bank/shared/mail/email.schema';
import { renderLoginEmail } from '@bank/shared/mail/email.templates';
import { defineEmailJob } from './email-job.ts';

/** Sends login step 1's approval link, single-use PASETO login token and 6-digit code. */
export const sendLoginEmailJob = defineEmailJob({
  name: SEND_LOGIN_EMAIL,
  payloadSchema: loginEmailPayloadSchema,
  async process(payload, { mailer, publicBaseUrl, messageId }) {
    await mailer.send(renderLoginEmail(payload, { publicBaseUrl }), { messageId });
  },
});
