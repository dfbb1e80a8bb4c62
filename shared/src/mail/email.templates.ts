import type { LoginEmailPayload, VerificationEmailPayload } from './email.schema.ts';

export type RenderedEmail = { to: string; subject: string; text: string; html: string };

const escapeHtml = (value: string) =>
  value.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');

/** The link the verification email carries; the API serves GET /v1/verify-email. */
export function verificationLink(publicBaseUrl: string, payload: Pick<VerificationEmailPayload, 'emailId' | 'secretCode'>): string {
  const url = new URL('/v1/verify-email', publicBaseUrl.endsWith('/') ? publicBaseUrl : `${publicBaseUrl}/`);
  url.searchParams.set('email_id', payload.emailId);
  url.searchParams.set('secret_code', payload.secretCode);
  return url.toString();
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

export function renderLoginEmail(payload: LoginEmailPayload): RenderedEmail {
  const expires = new Date(payload.expiresAt).toUTCString();
  return {
    to: payload.to,
    subject: `Your login code: ${payload.code}`,
    text: [
      `Hello ${payload.fullName},`,
      '',
      `Someone (hopefully you) is logging in to the bank account "${payload.username}".`,
      `Confirm with this code: ${payload.code}`,
      '',
      'or with this login token:',
      payload.loginToken,
      '',
      `Session: ${payload.sessionId}`,
      `Both work once and expire on ${expires}.`,
      'If this was not you, change your password.',
    ].join('\n'),
    html: [
      `<p>Hello ${escapeHtml(payload.fullName)},</p>`,
      `<p>Someone (hopefully you) is logging in to the bank account <b>${escapeHtml(payload.username)}</b>.</p>`,
      `<p>Confirm with this code: <b style="font-size:1.4em;letter-spacing:0.2em">${escapeHtml(payload.code)}</b></p>`,
      `<p>or with this login token:<br><code style="word-break:break-all">${escapeHtml(payload.loginToken)}</code></p>`,
      `<p>Session: <code>${escapeHtml(payload.sessionId)}</code><br>Both work once and expire on ${escapeHtml(expires)}.</p>`,
      '<p>If this was not you, change your password.</p>',
    ].join('\n'),
  };
}
