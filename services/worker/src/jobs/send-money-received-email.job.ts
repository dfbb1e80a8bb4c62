import { moneyReceivedEmailPayloadSchema, SEND_MONEY_RECEIVED_EMAIL } from '@bank/shared/mail/notification-email.schema';
import { renderMoneyReceivedEmail } from '@bank/shared/mail/notification-email.templates';
import { defineEmailJob } from './email-job.ts';

/** Money received: the first in the recipient's coalescing window, sent at once (informational). */
export const sendMoneyReceivedEmailJob = defineEmailJob({
  name: SEND_MONEY_RECEIVED_EMAIL,
  payloadSchema: moneyReceivedEmailPayloadSchema,
  async process(payload, { mailer, messageId }) {
    await mailer.send(renderMoneyReceivedEmail(payload), { messageId });
  },
});
