import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Router } from '@koa/router';
import Koa from 'koa';
import { APP_SCRIPT_PATH, registerMinimalPages } from './minimal-pages.ts';

let server: ReturnType<Koa['listen']>;
let base: string;

beforeAll(async () => {
  const app = new Koa();
  const router = new Router();
  registerMinimalPages(router);
  app.use(router.routes());
  server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

type Posted = { url: string; init: { method: string; headers: Record<string, string>; body: string } };

/**
 * Runs the pages' script as a browser would run it on `page` opened at `search`, against a DOM
 * of the three elements it uses and a fetch that records what it is asked and answers `status`.
 */
async function openPage(page: string, search: string, status = 200, newPassword = '') {
  const script = readFileSync(new URL('./app-pages.js', import.meta.url), 'utf8');
  const posted: Posted[] = [];
  const replaced: string[] = [];
  let onClick: (() => Promise<void>) | undefined;
  const button = { disabled: false, addEventListener: (_event: string, listener: () => Promise<void>) => (onClick = listener) };
  const statusLine = { textContent: '' };
  const main = { getAttribute: (name: string) => (name === 'data-page' ? page : null) };
  const window = {
    location: { search, pathname: `/app/${page}` },
    history: { replaceState: (_state: unknown, _title: string, url: string) => replaced.push(url) },
    fetch: async (url: string, init: Posted['init']) => {
      posted.push({ url, init });
      return { ok: status < 300, status, json: async () => (status < 300 ? {} : { detail: 'this login has expired' }) };
    },
  };
  const document = {
    querySelector: (selector: string) => (selector === 'main[data-page]' ? main : null),
    getElementById: (id: string) => ({ go: button, status: statusLine, 'new-password': { value: newPassword } })[id] ?? null,
  };
  runInNewContext(script, { window, document, URLSearchParams });
  return {
    posted,
    replaced,
    button,
    status: statusLine,
    click: async () => {
      if (!onClick) throw new Error('the script set no click handler');
      await onClick();
    },
  };
}

describe('the minimal pages that emailed links open', () => {
  it.each(['/app/approve-login', '/app/verify-email', '/app/reset-password'])('%s is static HTML whose only script is the pages\' file, never inline', async (path) => {
    const response = await fetch(`${base}${path}?session_id=%3Cscript%3Ealert(1)%3C%2Fscript%3E&token=x`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/html; charset=utf-8');
    const html = await response.text();
    const scripts = [...html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/g)];
    expect(scripts.map((m) => ({ attributes: m[1]?.trim(), body: m[2] }))).toEqual([{ attributes: `src="${APP_SCRIPT_PATH}" defer`, body: '' }]);
    expect(html).not.toMatch(/\son[a-z]+=/i); // no inline event handlers either
    expect(html).not.toContain('alert(1)'); // nothing of the link is written into the page
    const script = await fetch(`${base}${APP_SCRIPT_PATH}`);
    expect(script.status).toBe(200);
    expect(script.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
  });

  it('the approve-login page posts the emailed token to ApproveLogin when the button is pressed, not before', async () => {
    const page = await openPage('approve-login', '?session_id=2f1d8a52-6f0c-4a53-9a39-2a8d8d0b6a11&token=v4.public.abc.def');
    expect(page.replaced).toEqual(['/app/approve-login']); // the secrets leave the address bar
    expect(page.posted).toEqual([]);
    await page.click();
    expect(page.posted).toEqual([
      {
        url: '/v1/sessions/2f1d8a52-6f0c-4a53-9a39-2a8d8d0b6a11/approve',
        init: expect.objectContaining({ method: 'POST', headers: expect.objectContaining({ 'content-type': 'application/json' }), body: '{"token":"v4.public.abc.def"}' }),
      },
    ]);
    expect(page.status.textContent).toMatch(/^Login approved/);
  });

  it('the verify-email page posts the link\'s two values to VerifyEmail when the button is pressed', async () => {
    const page = await openPage('verify-email', '?email_id=42&secret_code=s3cr%2Bt');
    expect(page.posted).toEqual([]);
    await page.click();
    expect(page.posted).toEqual([{ url: '/v1/verify-email', init: expect.objectContaining({ method: 'POST', body: '{"emailId":"42","secretCode":"s3cr+t"}' }) }]);
    expect(page.status.textContent).toMatch(/verified/);
  });

  it('the reset-password page posts the link\'s id and secret with the typed password to ConfirmPasswordReset when pressed', async () => {
    const page = await openPage('reset-password', '?reset_id=2f1d8a52-6f0c-4a53-9a39-2a8d8d0b6a11&secret=s3cr%2Bt', 200, 'a new passphrase');
    expect(page.replaced).toEqual(['/app/reset-password']);
    expect(page.posted).toEqual([]);
    await page.click();
    expect(page.posted).toEqual([
      {
        url: '/v1/password-resets/2f1d8a52-6f0c-4a53-9a39-2a8d8d0b6a11/confirm',
        init: expect.objectContaining({ method: 'POST', body: '{"secret":"s3cr+t","newPassword":"a new passphrase"}' }),
      },
    ]);
    expect(page.status.textContent).toMatch(/new password is set/);
  });

  it('the reset-password page lets the person try another password after a refusal of the password', async () => {
    const page = await openPage('reset-password', '?reset_id=abc&secret=s', 400, 'password');
    await page.click();
    expect(page.button.disabled).toBe(false);
  });

  it('the reset-password page has a new-password field', async () => {
    const html = await (await fetch(`${base}/app/reset-password`)).text();
    expect(html).toContain('<input type="password" id="new-password" autocomplete="new-password"');
  });

  it('says why when the bank refuses, and keeps the button off for a refusal', async () => {
    const page = await openPage('approve-login', '?session_id=abc&token=t', 401);
    await page.click();
    expect(page.status.textContent).toBe('That did not work: this login has expired.');
    expect(page.button.disabled).toBe(true);
  });

  it('an incomplete link posts nothing and says so', async () => {
    const page = await openPage('verify-email', '?email_id=42');
    expect(page.button.disabled).toBe(true);
    expect(page.status.textContent).toMatch(/incomplete/);
    expect(page.posted).toEqual([]);
  });

  it('GET /v1/verify-email changes nothing: it answers 303 to the page, with the same query', async () => {
    const response = await fetch(`${base}/v1/verify-email?email_id=7&secret_code=abc`, { redirect: 'manual' });
    expect(response.status).toBe(303);
    expect(response.headers.get('location')).toBe('/app/verify-email?email_id=7&secret_code=abc');
  });
});
