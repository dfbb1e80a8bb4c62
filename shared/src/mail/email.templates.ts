import type { LoginEmailPayload, VerificationEmailPayload } from './email.schema.ts';

/** A file sent with an email (a statement PDF). */
export type EmailAttachment = { filename: string; contentType: string; content: Uint8Array };

export type RenderedEmail = { to: string; subject: string; text: string; html: string; attachments?: readonly EmailAttachment[] };

const escapeHtml = (value: string) =>
  value.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');

const pageUrl = (publicBaseUrl: string, path: string, query: Record<string, string>): string => {
  const url = new URL(path, publicBaseUrl.endsWith('/') ? publicBaseUrl : `${publicBaseUrl}/`);
  for (const [name, value] of Object.entries(query)) url.searchParams.set(name, value);
  return url.toString();
};

/**
 * The link the verification email carries: the page /app/verify-email, which posts the two values
 * to POST /v1/verify-email when the person asks it to (a link scanner that only fetches changes nothing).
 */
export function verificationLink(publicBaseUrl: string, payload: Pick<VerificationEmailPayload, 'emailId' | 'secretCode'>): string {
  return pageUrl(publicBaseUrl, '/app/verify-email', { email_id: payload.emailId, secret_code: payload.secretCode });
}

/**
 * The link the login email carries: the page /app/approve-login, which approves the pending login
 * (POST /v1/sessions/{session_id}/approve with the token) and hands out no tokens.
 */
export function approveLoginLink(publicBaseUrl: string, payload: Pick<LoginEmailPayload, 'sessionId' | 'loginToken'>): string {
  return pageUrl(publicBaseUrl, '/app/approve-login', { session_id: payload.sessionId, token: payload.loginToken });
}

export function renderVerificationEmail(payload: VerificationEmailPayload, options: { publicBaseUrl: string }): RenderedEmail {
  const link = verificationLink(options.publicBaseUrl, payload);
  const expires = new Date(payload.expiresAt).toUTCString();
  return {
    to: payload.to,
    subject: 'Confirm your email address',
    text: [
      `Hello ${payload.fullName},`,
      '',
      `Please confirm the email address of your bank account "${payload.username}" by opening this link:`,
      '',
      link,
      '',
      `The link works once and expires on ${expires}.`,
      'If you did not sign up, ignore this email.',
    ].join('\n'),
    html: [
      `<p>Hello ${escapeHtml(payload.fullName)},</p>`,
      `<p>Please confirm the email address of your bank account <b>${escapeHtml(payload.username)}</b>:</p>`,
      `<p><a href="${escapeHtml(link)}">Confirm my email address</a></p>`,
      `<p>The link works once and expires on ${escapeHtml(expires)}.<br>If you did not sign up, ignore this email.</p>`,
    ].join('\n'),
  };
}

/** The subject of every login email: the code stays out of it, so a lock screen's preview shows none. */
export const LOGIN_EMAIL_SUBJECT = 'Confirm your login';

/**
 * The login email: a link that approves the login, and the code and token for a device that
 * types or pastes them. Each confirms only together with the login secret that the device which
 * gave the password holds, so reading this email alone opens no session.
 */
export function renderLoginEmail(payload: LoginEmailPayload, options: { publicBaseUrl: string }): RenderedEmail {
  const expires = new Date(payload.expiresAt).toUTCString();
  const link = approveLoginLink(options.publicBaseUrl, payload);
  return {
    to: payload.to,
    subject: LOGIN_EMAIL_SUBJECT,
    text: [
      `Hello ${payload.fullName},`,
      '',
      `Someone (hopefully you) is logging in to the bank account "${payload.username}".`,
      'If it is you, approve the login by opening this link:',
      '',
      link,
      '',
      `Or, on the device you are logging in on, confirm with this code: ${payload.code}`,
      '',
      'or with this login token:',
      payload.loginToken,
      '',
      `Session: ${payload.sessionId}`,
      `They work once, only for the device that gave the password, and expire on ${expires}.`,
      'If this was not you, do not open the link, and change your password.',
    ].join('\n'),
    html: [
      `<p>Hello ${escapeHtml(payload.fullName)},</p>`,
      `<p>Someone (hopefully you) is logging in to the bank account <b>${escapeHtml(payload.username)}</b>.</p>`,
      `<p>If it is you: <a href="${escapeHtml(link)}">Approve this login</a></p>`,
      `<p>Or, on the device you are logging in on, confirm with this code: <b style="font-size:1.4em;letter-spacing:0.2em">${escapeHtml(payload.code)}</b></p>`,
      `<p>or with this login token:<br><code style="word-break:break-all">${escapeHtml(payload.loginToken)}</code></p>`,
      `<p>Session: <code>${escapeHtml(payload.sessionId)}</code><br>They work once, only for the device that gave the password, and expire on ${escapeHtml(expires)}.</p>`,
      '<p>If this was not you, do not open the link, and change your password.</p>',
    ].join('\n'),
  };
}
