import { z } from 'zod';
import { isPlainEmailAddress } from './email-address.ts';

/** Outbox kinds that are emails; each is also the BullMQ job name the worker registers. */
export const SEND_VERIFICATION_EMAIL = 'send-verification-email';
export const SEND_LOGIN_EMAIL = 'send-login-email';
/** To the owner of an address someone tried to sign up with again. */
export const SEND_SIGN_UP_ATTEMPT_EMAIL = 'send-sign-up-attempt-email';
export const SEND_PASSWORD_RESET_EMAIL = 'send-password-reset-email';
/** To the user after their password was changed or reset. */
export const SEND_PASSWORD_CHANGED_EMAIL = 'send-password-changed-email';
/** To the current address when a change to another one was asked for. */
export const SEND_EMAIL_CHANGE_NOTICE_EMAIL = 'send-email-change-notice-email';
/** To the old address when an email change took effect (its link was followed). */
export const SEND_EMAIL_CHANGED_EMAIL = 'send-email-changed-email';
/** To an account's holder on the 1st: the month before's statement as a PDF attachment. */
export const SEND_STATEMENT_EMAIL = 'send-statement-email';
export const EMAIL_KINDS = [
  SEND_VERIFICATION_EMAIL,
  SEND_LOGIN_EMAIL,
  SEND_SIGN_UP_ATTEMPT_EMAIL,
  SEND_PASSWORD_RESET_EMAIL,
  SEND_PASSWORD_CHANGED_EMAIL,
  SEND_EMAIL_CHANGE_NOTICE_EMAIL,
  SEND_EMAIL_CHANGED_EMAIL,
  SEND_STATEMENT_EMAIL,
] as const;
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

export const signUpAttemptEmailPayloadSchema = z.object({
  to: email,
  username: z.string().min(1),
  fullName: z.string().min(1),
  attemptedAt: z.iso.datetime(),
});
export type SignUpAttemptEmailPayload = z.infer<typeof signUpAttemptEmailPayloadSchema>;

export const passwordResetEmailPayloadSchema = z.object({
  to: email,
  username: z.string().min(1),
  fullName: z.string().min(1),
  resetId: z.string().uuid(),
  /** The single-use secret of the link (only its sha256 is stored in password_resets). */
  resetSecret: z.string().min(16),
  expiresAt: z.iso.datetime(),
});
export type PasswordResetEmailPayload = z.infer<typeof passwordResetEmailPayloadSchema>;

export const passwordChangedEmailPayloadSchema = z.object({
  to: email,
  username: z.string().min(1),
  fullName: z.string().min(1),
  how: z.enum(['changed', 'reset']),
  changedAt: z.iso.datetime(),
});
export type PasswordChangedEmailPayload = z.infer<typeof passwordChangedEmailPayloadSchema>;

export const emailChangeNoticePayloadSchema = z.object({
  to: email,
  username: z.string().min(1),
  fullName: z.string().min(1),
  /** The new address, masked (`a***@example.test`): the notice must not hand it to whoever reads the old mailbox. */
  newEmailMasked: z.string().min(1),
  requestedAt: z.iso.datetime(),
});
export type EmailChangeNoticePayload = z.infer<typeof emailChangeNoticePayloadSchema>;

/** The old address, told that the account moved away from it; the new address only masked. */
export const emailChangedPayloadSchema = z.object({
  to: email,
  username: z.string().min(1),
  fullName: z.string().min(1),
  newEmailMasked: z.string().min(1),
  changedAt: z.iso.datetime(),
});
export type EmailChangedPayload = z.infer<typeof emailChangedPayloadSchema>;

/**
 * A monthly statement: only who and which period. The worker renders the PDF when it sends
 * (statementPdf over LedgerService.getStatement, as GetStatement does), so the outbox row stays
 * small; a past period's entries never change, so a retry renders the same bytes.
 */
export const statementEmailPayloadSchema = z.object({
  to: email,
  username: z.string().min(1),
  fullName: z.string().min(1),
  /** accounts.id as a decimal string (JSON has no bigint). */
  accountId: z.string().regex(/^\d+$/),
  /** The period [since, until): a calendar month, UTC. */
  since: z.iso.datetime(),
  until: z.iso.datetime(),
});
export type StatementEmailPayload = z.infer<typeof statementEmailPayloadSchema>;

/** Payload fields that are secrets: removed from the outbox row once the email is sent. */
export const SECRET_PAYLOAD_FIELDS = ['secretCode', 'loginToken', 'code', 'resetSecret'] as const;
