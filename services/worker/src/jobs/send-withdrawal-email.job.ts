import { withdrawalEmailPayloadSchema, SEND_WITHDRAWAL_EMAIL } from '@bank/shared/mail/notification-email.schema';
import { renderWithdrawalEmail } from '@bank/shared/mail/notification-email.templates';
import { defineEmailJob } from './email-job.ts';

/** A withdrawal from the user's account (informational). */
export const sendWithdrawalEmailJob = defineEmailJob({
  name: SEND_WITHDRAWAL_EMAIL,
  payloadSchema: withdrawalEmailPayloadSchema,
  async process(payload, { mailer, messageId }) {
    await mailer.send(renderWithdrawalEmail(payload), { messageId });
  },
});
