import { renderEmailChangeNotice } from '@bank/shared/mail/account-email.templates';
import { SEND_EMAIL_CHANGE_NOTICE_EMAIL, emailChangeNoticePayloadSchema } from '@bank/shared/mail/email.schema';
import { defineEmailJob } from './email-job.ts';

/** Tells the current address that a move to another one was asked for. */
export const sendEmailChangeNoticeJob = defineEmailJob({
  name: SEND_EMAIL_CHANGE_NOTICE_EMAIL,
  payloadSchema: emailChangeNoticePayloadSchema,
  async process(payload, { mailer, messageId }) {
    await mailer.send(renderEmailChangeNotice(payload), { messageId });
  },
});
