/**
 * Reads delivered emails for the smoke walkthrough from a development mail catcher: the
 * project's own inbox (`GET /api/messages?to=`) or Mailpit (`/api/v1/search`), whichever answers.
 */
export type Mail = { subject: string; text: string };

async function json<T>(url: string): Promise<T> {
  const response = await fetch(url, { signal: AbortSignal.timeout(5_000) });
  if (!response.ok) throw new Error(`GET ${url} answered ${response.status}`);
  return (await response.json()) as T;
}

export async function messagesFor(inboxUrl: string, to: string): Promise<Mail[]> {
  const base = inboxUrl.replace(/\/$/, '');
  try {
    return await json<Mail[]>(`${base}/api/messages?to=${encodeURIComponent(to)}`);
  } catch {
    const found = await json<{ messages: Array<{ ID: string }> }>(`${base}/api/v1/search?query=${encodeURIComponent(`to:"${to}"`)}`);
    const out: Mail[] = [];
    for (const m of found.messages) {
      const full = await json<{ Subject: string; Text: string }>(`${base}/api/v1/message/${m.ID}`);
      out.push({ subject: full.Subject, text: full.Text });
    }
    return out;
  }
}

/** Waits until `to` has a message whose subject matches, and returns it (the newest). */
export async function waitForMail(inboxUrl: string, to: string, subject: RegExp, options: { count?: number; timeoutMs?: number } = {}): Promise<Mail> {
  const deadline = Date.now() + (options.timeoutMs ?? 30_000);
  const want = options.count ?? 1;
  for (;;) {
    const matching = (await messagesFor(inboxUrl, to)).filter((m) => subject.test(m.subject));
    if (matching.length >= want) return matching[matching.length - 1]!;
    if (Date.now() > deadline) throw new Error(`no email matching ${subject} reached ${to} within ${(options.timeoutMs ?? 30_000) / 1_000} s`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** The path and query of the page the verification email links to (/app/verify-email?email_id=..&secret_code=..). */
export function verificationPath(mail: Mail): string {
  const match = /https?:\/\/[^\s"'<>]+(\/app\/verify-email\?[^\s"'<>]+)/.exec(mail.text);
  if (!match?.[1]) throw new Error(`the verification email has no /app/verify-email link: ${JSON.stringify(mail.text.slice(0, 300))}`);
  return match[1].replace(/&amp;/g, '&');
}

/** What the verification page posts to POST /v1/verify-email: the two values of its link. */
export function verificationValues(mail: Mail): { emailId: string; secretCode: string } {
  const link = new URL(verificationPath(mail), 'http://link.invalid');
  return { emailId: link.searchParams.get('email_id') ?? '', secretCode: link.searchParams.get('secret_code') ?? '' };
}

/** Subjects of the two emails the walkthrough follows (the login code is never in a subject). */
export const VERIFICATION_SUBJECT = /confirm your email/i;
export const LOGIN_SUBJECT = /confirm your login/i;

/** The login email's token, code and the path and query of its approval page (/app/approve-login?session_id=..&token=..). */
export function loginSecrets(mail: Mail): { token: string; code: string; approvePath: string } {
  const token = /or with this login token:\s+(v4\.public\.[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)?)/.exec(mail.text)?.[1];
  const code = /code:\s*(\d{6})\b/.exec(mail.text)?.[1];
  const approvePath = /https?:\/\/[^\s"'<>]+(\/app\/approve-login\?[^\s"'<>]+)/.exec(mail.text)?.[1];
  if (!token || !code || !approvePath) throw new Error('the login email lacks a PASETO login token, a 6-digit code or an approval link');
  return { token, code, approvePath: approvePath.replace(/&amp;/g, '&') };
}
