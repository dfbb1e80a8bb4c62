import { renderSignUpAttemptEmail } from '@bank/shared/mail/account-email.templates';
import { SEND_SIGN_UP_ATTEMPT_EMAIL, signUpAttemptEmailPayloadSchema } from '@bank/shared/mail/email.schema';
import { defineEmailJob } from './email-job.ts';

/** Tells the owner of a registered address that someone signed up with it again (sign-up answers as if it were new). */
export const sendSignUpAttemptEmailJob = defineEmailJob({
  name: SEND_SIGN_UP_ATTEMPT_EMAIL,
  payloadSchema: signUpAttemptEmailPayloadSchema,
  async process(payload, { mailer, messageId }) {
    await mailer.send(renderSignUpAttemptEmail(payload), { messageId });
  },
});
