// Emails about the account itself: a sign-up tried with a registered address, a password reset
// link, a password changed, an email change asked for. Each names no secret but the reset link's.
import type { EmailChangedPayload, EmailChangeNoticePayload, PasswordChangedEmailPayload, PasswordResetEmailPayload, SignUpAttemptEmailPayload } from './email.schema.ts';
import type { RenderedEmail } from './email.templates.ts';

const escapeHtml = (value: string) =>
  value.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');

const paragraphs = (lines: readonly string[]) => lines.map((line) => `<p>${escapeHtml(line)}</p>`).join('\n');

/** Subjects, so tests and people can tell the emails apart. */
export const ACCOUNT_EMAIL_SUBJECTS = {
  signUpAttempt: 'Someone tried to sign up with your email address',
  passwordReset: 'Reset your password',
  passwordChanged: 'Your password was changed',
  emailChangeNotice: 'Your email address is being changed',
  emailChanged: 'Your email address was changed',
} as const;

/**
 * The page the reset email links to: /app/reset-password, which asks for the new password and
 * posts it with the two values to POST /v1/password-resets/{reset_id}/confirm.
 */
export function passwordResetLink(publicBaseUrl: string, payload: Pick<PasswordResetEmailPayload, 'resetId' | 'resetSecret'>): string {
  const url = new URL('/app/reset-password', publicBaseUrl.endsWith('/') ? publicBaseUrl : `${publicBaseUrl}/`);
  url.searchParams.set('reset_id', payload.resetId);
  url.searchParams.set('secret', payload.resetSecret);
  return url.toString();
}

export function renderSignUpAttemptEmail(payload: SignUpAttemptEmailPayload): RenderedEmail {
  const lines = [
    `Hello ${payload.fullName},`,
    `Someone tried to sign up for a new bank account with this email address on ${new Date(payload.attemptedAt).toUTCString()}. It already belongs to your account "${payload.username}", so no account was made and nothing about yours changed.`,
    'If that was you: log in with your username instead, or reset your password if you forgot it.',
    'If it was not you, you need not do anything.',
  ];
  return { to: payload.to, subject: ACCOUNT_EMAIL_SUBJECTS.signUpAttempt, text: lines.join('\n\n'), html: paragraphs(lines) };
}

export function renderPasswordResetEmail(payload: PasswordResetEmailPayload, options: { publicBaseUrl: string }): RenderedEmail {
  const link = passwordResetLink(options.publicBaseUrl, payload);
  const expires = new Date(payload.expiresAt).toUTCString();
  const before = [`Hello ${payload.fullName},`, `Someone (hopefully you) asked to reset the password of your bank account "${payload.username}". Choose a new one here:`];
  const after = [
    `The link works once and expires on ${expires}. Resetting the password logs out every session of the account.`,
    'If you did not ask for this, ignore this email: your password stays as it is.',
  ];
  return {
    to: payload.to,
    subject: ACCOUNT_EMAIL_SUBJECTS.passwordReset,
    text: [...before, link, ...after].join('\n\n'),
    html: [paragraphs(before), `<p><a href="${escapeHtml(link)}">Choose a new password</a></p>`, paragraphs(after)].join('\n'),
  };
}

export function renderPasswordChangedEmail(payload: PasswordChangedEmailPayload): RenderedEmail {
  const lines = [
    `Hello ${payload.fullName},`,
    `The password of your bank account "${payload.username}" was ${payload.how === 'reset' ? 'reset through an emailed link' : 'changed'} on ${new Date(payload.changedAt).toUTCString()}, and ${payload.how === 'reset' ? 'every session' : 'every other session'} was logged out.`,
    'If that was not you, reset your password now and tell us.',
  ];
  return { to: payload.to, subject: ACCOUNT_EMAIL_SUBJECTS.passwordChanged, text: lines.join('\n\n'), html: paragraphs(lines) };
}

export function renderEmailChangeNotice(payload: EmailChangeNoticePayload): RenderedEmail {
  const lines = [
    `Hello ${payload.fullName},`,
    `On ${new Date(payload.requestedAt).toUTCString()} someone logged in to your bank account "${payload.username}" with its password asked to move its email address to ${payload.newEmailMasked}. The move happens once the link sent to that address is followed; until then this address stays the account's.`,
    'If that was not you, change your password now: whoever asked knows it.',
  ];
  return { to: payload.to, subject: ACCOUNT_EMAIL_SUBJECTS.emailChangeNotice, text: lines.join('\n\n'), html: paragraphs(lines) };
}

export function renderEmailChanged(payload: EmailChangedPayload): RenderedEmail {
  const lines = [
    `Hello ${payload.fullName},`,
    `On ${new Date(payload.changedAt).toUTCString()} the email address of your bank account "${payload.username}" moved from this address to ${payload.newEmailMasked}: login codes and notices go there from now on.`,
    'If that was not you, reset your password and tell us now.',
  ];
  return { to: payload.to, subject: ACCOUNT_EMAIL_SUBJECTS.emailChanged, text: lines.join('\n\n'), html: paragraphs(lines) };
}

/** `ada.lovelace@example.test` -> `a***@example.test`: enough for the owner to recognise, not to write to. */
export function maskEmail(address: string): string {
  const at = address.lastIndexOf('@');
  return `${address.slice(0, Math.min(1, at))}***${address.slice(at)}`;
}
