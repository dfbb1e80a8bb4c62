import { newLoginAddressEmailPayloadSchema, SEND_NEW_LOGIN_ADDRESS_EMAIL } from '@bank/shared/mail/notification-email.schema';
import { renderNewLoginAddressEmail } from '@bank/shared/mail/notification-email.templates';
import { defineEmailJob } from './email-job.ts';

/** Security: a login confirmed from an address the user had not used before (always sent). */
export const sendNewLoginAddressEmailJob = defineEmailJob({
  name: SEND_NEW_LOGIN_ADDRESS_EMAIL,
  payloadSchema: newLoginAddressEmailPayloadSchema,
  async process(payload, { mailer, messageId }) {
    await mailer.send(renderNewLoginAddressEmail(payload), { messageId });
  },
});
