import { moneyReceivedDigestEmailPayloadSchema, SEND_MONEY_RECEIVED_DIGEST_EMAIL } from '@bank/shared/mail/notification-email.schema';
import { renderMoneyReceivedDigestEmail } from '@bank/shared/mail/notification-email.templates';
import { defineEmailJob } from './email-job.ts';

/** The money received while a recipient's window was open, in one email when it closed (informational). */
export const sendMoneyReceivedDigestEmailJob = defineEmailJob({
  name: SEND_MONEY_RECEIVED_DIGEST_EMAIL,
  payloadSchema: moneyReceivedDigestEmailPayloadSchema,
  async process(payload, { mailer, messageId }) {
    await mailer.send(renderMoneyReceivedDigestEmail(payload), { messageId });
  },
});
