import { holdCapturedEmailPayloadSchema, SEND_HOLD_CAPTURED_EMAIL } from '@bank/shared/mail/notification-email.schema';
import { renderHoldCapturedEmail } from '@bank/shared/mail/notification-email.templates';
import { defineEmailJob } from './email-job.ts';

/** A hold captured, to each side (informational). */
export const sendHoldCapturedEmailJob = defineEmailJob({
  name: SEND_HOLD_CAPTURED_EMAIL,
  payloadSchema: holdCapturedEmailPayloadSchema,
  async process(payload, { mailer, messageId }) {
    await mailer.send(renderHoldCapturedEmail(payload), { messageId });
  },
});
