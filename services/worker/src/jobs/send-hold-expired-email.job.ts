import { holdExpiredEmailPayloadSchema, SEND_HOLD_EXPIRED_EMAIL } from '@bank/shared/mail/notification-email.schema';
import { renderHoldExpiredEmail } from '@bank/shared/mail/notification-email.templates';
import { defineEmailJob } from './email-job.ts';

/** A hold expired uncaptured, to the sender (informational). */
export const sendHoldExpiredEmailJob = defineEmailJob({
  name: SEND_HOLD_EXPIRED_EMAIL,
  payloadSchema: holdExpiredEmailPayloadSchema,
  async process(payload, { mailer, messageId }) {
    await mailer.send(renderHoldExpiredEmail(payload), { messageId });
  },
});
