import { z } from 'zod';
import { isPlainEmailAddress } from './email-address.ts';

/** Outbox kinds that are emails; each is also the BullMQ job name the worker registers. */
export const SEND_VERIFICATION_EMAIL = 'send-verification-email';
export const SEND_LOGIN_EMAIL = 'send-login-email';
export const EMAIL_KINDS = [SEND_VERIFICATION_EMAIL, SEND_LOGIN_EMAIL] as const;
export type EmailKind = (typeof EMAIL_KINDS)[number];

// The worker's own check: a row written before addresses were validated strictly, or by hand,
// fails as a bad payload rather than mail a list or a display name.
const email = z.string().refine(isPlainEmailAddress, 'must be one plain email address');

export const verificationEmailPayloadSchema = z.object({
  to: email,
  username: z.string().min(1),
  fullName: z.string().min(1),
  /** email_verifications.id as a decimal string (JSON has no bigint). */
  emailId: z.string().regex(/^\d+$/),
  secretCode: z.string().min(16),
  expiresAt: z.iso.datetime(),
});
export type VerificationEmailPayload = z.infer<typeof verificationEmailPayloadSchema>;

export const loginEmailPayloadSchema = z.object({
  to: email,
  username: z.string().min(1),
  fullName: z.string().min(1),
  sessionId: z.string().uuid(),
  loginToken: z.string().startsWith('v4.public.'),
  code: z.string().regex(/^\d{6}$/),
  expiresAt: z.iso.datetime(),
});
export type LoginEmailPayload = z.infer<typeof loginEmailPayloadSchema>;

/** Payload fields that are secrets: removed from the outbox row once the email is sent. */
export const SECRET_PAYLOAD_FIELDS = ['secretCode', 'loginToken', 'code'] as const;
