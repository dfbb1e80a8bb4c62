// The pages that emailed links open, served by the API until the web app exists (the web app
// takes over the same /app paths): a static page and one static script, with no value of the
// link written into the page, so nothing in a query string can inject anything. The page does
// nothing until the person presses its button, which posts the link's values to the API.
import { readFileSync } from 'node:fs';
import type { Router } from '@koa/router';

/** The script every page loads (never inline: the Content-Security-Policy allows 'self' scripts only). */
export const APP_SCRIPT_PATH = '/app/app-pages.js';

/** The Content-Security-Policy of the /app pages: their own script, calls to their own origin, nothing else. */
export const APP_PAGES_CSP = "default-src 'none'; script-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const escape = (text: string) => text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c);

type Page = {
  path: string;
  name: string;
  title: string;
  intro: string;
  button: string;
  /** A new-password field the person fills in before pressing the button (its label). */
  newPassword?: string;
};

const PAGES: readonly Page[] = [
  {
    path: '/app/approve-login',
    name: 'approve-login',
    title: 'Approve this login',
    intro:
      'Someone is logging in to your bank account with your password. Approve only if it is you, now. ' +
      'The device that gave the password then finishes the login by itself; this page opens no session.',
    button: 'Yes, it is me: approve this login',
  },
  {
    path: '/app/verify-email',
    name: 'verify-email',
    title: 'Verify your email address',
    intro: 'Confirm that this email address belongs to your new bank account.',
    button: 'Verify my email address',
  },
  {
    path: '/app/reset-password',
    name: 'reset-password',
    title: 'Choose a new password',
    intro:
      'Choose a new password for your bank account: 8 to 128 characters, any you like, but not a common one. ' +
      'Every session of the account is logged out once it is set.',
    button: 'Set my new password',
    newPassword: 'New password',
  },
];

function render(page: Page): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escape(page.title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<script src="${APP_SCRIPT_PATH}" defer></script>
</head><body>
<main data-page="${escape(page.name)}">
<h1>${escape(page.title)}</h1>
<p>${escape(page.intro)}</p>
${page.newPassword ? `<p><label for="new-password">${escape(page.newPassword)}</label><br><input type="password" id="new-password" autocomplete="new-password" minlength="8" maxlength="128" required></p>\n` : ''}<p><button type="button" id="go">${escape(page.button)}</button></p>
<p id="status" role="status" aria-live="polite"></p>
<noscript><p>This page needs JavaScript to send the link's values to the bank.</p></noscript>
</main>
</body></html>
`;
}

/**
 * GET /app/approve-login, GET /app/verify-email, GET /app/reset-password, their script, and GET /v1/verify-email: an old
 * verification link (or a scanner) that GETs the API path changes nothing and is sent to the page
 * (303 with the same query), whose button posts to POST /v1/verify-email.
 */
export function registerMinimalPages(router: Router): void {
  const script = readFileSync(new URL('./app-pages.js', import.meta.url), 'utf8');
  router.get(APP_SCRIPT_PATH, (ctx) => {
    ctx.type = 'text/javascript; charset=utf-8';
    ctx.body = script;
  });
  for (const page of PAGES) {
    const html = render(page);
    router.get(page.path, (ctx) => {
      ctx.type = 'text/html; charset=utf-8';
      ctx.body = html;
    });
  }
  router.get('/v1/verify-email', (ctx) => {
    ctx.status = 303;
    ctx.set('Location', `/app/verify-email${ctx.querystring ? `?${ctx.querystring}` : ''}`);
    ctx.type = 'text/plain; charset=utf-8';
    ctx.body = 'Email verification is a POST /v1/verify-email now; the link opens the page /app/verify-email.\n';
  });
}
