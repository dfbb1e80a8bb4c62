// Issue 15, item 4: two people through the web app in Chromium, over the real stack (API, gRPC,
// worker, PostgreSQL, Redis, the SMTP receiver the emails are read from): sign-up and the emailed
// verification link, login with the emailed code (desktop) and with the emailed link approved on
// another device (a phone-sized screen, 390x844), a deposit over the limit refused in words, an
// overdraft refused, a double-clicked send and a retry after a lost answer that each move money
// once, a hold captured, the history scrolled, a statement downloaded (CSV and PDF), a withdrawal,
// a hold voided, a reload that keeps the session, a used verification link explained, a password
// change and logout; a forgotten password; the keyboard alone; the cookie against cross-origin
// forms; the refresh before expiry under Playwright's clock.
// axe-core finds no serious or critical violation on the main pages; each is photographed to
// test-results/browser/.
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { sql } from 'slonik';
import { z } from 'zod';
import { AccountService } from '@bank/proto/bank/v1/account_service_pb';
import { AuthService } from '@bank/proto/bank/v1/auth_service_pb';
import { idemKey } from '../factories.ts';
import { logIn, loginEmailFor, signUp } from '../e2e/flows.ts';
import { startStack, uniqueName, type Stack } from '../e2e/harness.ts';
import { httpTransport } from '../e2e/transports.ts';
import { DESKTOP, PHONE, codeIn, launchChromium, linkIn, newContext, nextEmail, screenshot, seriousA11yViolations, watchPage } from './support.ts';

let stack: Stack;
let browser: Browser;
const contexts: BrowserContext[] = [];

beforeAll(async () => {
  [stack, browser] = await Promise.all([startStack({ env: { DEPOSIT_MAX_AMOUNT: '500000' } }), launchChromium()]);
});
afterAll(async () => {
  for (const context of contexts) await context.close();
  await browser?.close();
  await stack?.stop();
});

async function openPage(viewport: { width: number; height: number }): Promise<{ page: Page; problems: string[]; context: BrowserContext }> {
  const context = await newContext(browser, viewport);
  contexts.push(context);
  const page = await context.newPage();
  return { page, problems: watchPage(page), context };
}

type Person = { username: string; fullName: string; email: string; password: string };
const person = (name: string): Person => {
  const username = uniqueName(name);
  return { username, fullName: `${name[0]!.toUpperCase()}${name.slice(1)} Example`, email: `${username}@example.test`, password: `pw-${username}-long-secret` };
};

/** Signs up through the app and follows the emailed verification link, pressing the page's button. */
async function signUpInApp(page: Page, who: Person, shots?: string): Promise<void> {
  const origin = stack.api.url;
  await page.goto(`${origin}/`);
  await page.waitForURL('**/app/login');
  await page.getByRole('link', { name: 'Sign up' }).click();
  await page.getByLabel('Username').fill(who.username);
  await page.getByLabel('Full name').fill(who.fullName);
  await page.getByLabel('Email address').fill(who.email);
  await page.getByLabel('Password').fill(who.password);
  if (shots) expect(await seriousA11yViolations(page)).toEqual([]);
  if (shots) await screenshot(page, `${shots}-sign-up`);
  await page.getByRole('button', { name: 'Sign up' }).click();
  await expect(page.getByRole('status').filter({ hasText: 'We sent an email' }).textContent()).resolves.toContain(who.email);
  const email = await nextEmail(stack.smtp, who.email, 0, (m) => m.text.includes('/app/verify-email?'));
  await page.goto(linkIn(email, '/app/verify-email', origin));
  // The link's secrets leave the address bar once read.
  await page.waitForURL((url) => url.search === '');
  if (shots) expect(await seriousA11yViolations(page)).toEqual([]);
  await page.getByRole('button', { name: 'Verify my email address' }).click();
  await page.getByText('Your email address is verified').waitFor();
  if (shots) await screenshot(page, `${shots}-verify-email`);
  // The same link again: used, and the page says so in words.
  await page.goto(linkIn(email, '/app/verify-email', origin));
  await page.getByRole('button', { name: 'Verify my email address' }).click();
  await page.getByRole('alert').filter({ hasText: /^This link has expired, was already used, or was replaced by a newer one\./ }).waitFor();
}

const heading = (page: Page) => page.getByRole('heading', { level: 1 });

describe('the web app in Chromium', () => {
  it('two people: sign-up, login by code and by emailed link, refusals in words, a double-clicked send and a retry after a lost answer each moving money once, a hold captured and one voided, a withdrawal, history, statements, reload, password change and logout', async () => {
    const origin = stack.api.url;
    const alice = person('alice');
    const bob = person('bob');
    const a = await openPage(DESKTOP);
    const b = await openPage(PHONE);

    // Sign-up and verification, both people (bob on a phone-sized screen).
    await signUpInApp(a.page, alice, 'desktop');
    await signUpInApp(b.page, bob, 'phone');

    // Alice logs in with the emailed code.
    await a.page.goto(`${origin}/app/login`);
    expect(await seriousA11yViolations(a.page)).toEqual([]);
    await screenshot(a.page, 'desktop-login');
    await a.page.getByLabel('Username').fill(alice.username);
    await a.page.getByLabel('Password').fill(alice.password);
    const seenA = stack.smtp.messagesTo(alice.email).length;
    await a.page.getByRole('button', { name: 'Continue' }).click();
    await heading(a.page).filter({ hasText: 'Check your email' }).waitFor();
    const loginMail = await nextEmail(stack.smtp, alice.email, seenA, (m) => /confirm with this code/i.test(m.text));
    await a.page.getByLabel('6-digit code').fill(codeIn(loginMail));
    expect(await seriousA11yViolations(a.page)).toEqual([]);
    await a.page.getByRole('button', { name: 'Confirm' }).click();
    await heading(a.page).filter({ hasText: 'Your accounts' }).waitFor();
    // The refresh token is a cookie no script can read, sent to /v1/tokens only.
    const cookies = await a.context.cookies();
    expect(cookies.find((c) => c.name === 'bank_refresh')).toMatchObject({ httpOnly: true, secure: true, sameSite: 'Strict', path: '/v1/tokens' });
    expect(await a.page.evaluate('document.cookie')).toBe('');

    // Bob logs in on his phone; the emailed link, opened on another device, approves it, and the
    // phone carries on by itself.
    await b.page.goto(`${origin}/app/login`);
    await b.page.getByLabel('Username').fill(bob.username);
    await b.page.getByLabel('Password').fill(bob.password);
    const seenB = stack.smtp.messagesTo(bob.email).length;
    await b.page.getByRole('button', { name: 'Continue' }).click();
    await heading(b.page).filter({ hasText: 'Check your email' }).waitFor();
    const bobMail = await nextEmail(stack.smtp, bob.email, seenB, (m) => m.text.includes('/app/approve-login?'));
    const elsewhere = await openPage(DESKTOP);
    await elsewhere.page.goto(linkIn(bobMail, '/app/approve-login', origin));
    expect(await seriousA11yViolations(elsewhere.page)).toEqual([]);
    await elsewhere.page.getByRole('button', { name: 'Yes, it is me: approve this login' }).click();
    await elsewhere.page.getByText('Login approved').waitFor();
    await screenshot(elsewhere.page, 'desktop-approve-login');
    await heading(b.page).filter({ hasText: 'Your accounts' }).waitFor({ timeout: 15_000 });
    expect(await elsewhere.context.cookies()).toEqual([]);

    // Accounts: each opens a USD account.
    for (const page of [a.page, b.page]) {
      await page.getByLabel('Currency').selectOption('USD');
      await page.getByRole('button', { name: 'Open account' }).click();
      await page.getByText(/Your USD account No\. \d+ is open/).waitFor();
    }
    const bobAccount = /No\. (\d+)/.exec((await b.page.getByText(/Your USD account No\. \d+ is open/).textContent()) ?? '')?.[1];
    expect(bobAccount).toMatch(/^\d+$/);
    expect(await seriousA11yViolations(b.page)).toEqual([]);
    await screenshot(b.page, 'phone-accounts');

    // Alice adds funds: over the per-deposit limit is refused in words; $100.00 goes in.
    await a.page.getByRole('link', { name: /USD account No\. \d+/ }).click();
    await heading(a.page).filter({ hasText: /USD account No\. \d+/ }).waitFor();
    const aliceAccount = /No\. (\d+)/.exec((await heading(a.page).textContent()) ?? '')?.[1];
    const addFunds = a.page.getByRole('form', { name: 'Add funds' });
    await addFunds.getByLabel('Amount to add (USD)').fill('5,000.01');
    await addFunds.getByRole('button', { name: 'Add funds' }).click();
    await a.page.getByRole('region', { name: 'Add funds' }).getByRole('alert').filter({ hasText: /^That is over the limit: at most \$5,000\.00 more is allowed now\.$/ }).waitFor();
    await addFunds.getByLabel('Amount to add (USD)').fill('100');
    await addFunds.getByRole('button', { name: 'Add funds' }).click();
    await a.page.getByText('The money was added.').waitFor();
    await expect(a.page.locator('.balances dd').first().textContent()).resolves.toBe('$100.00');

    // An overdraft is refused in words and moves nothing.
    const send = a.page.getByRole('form', { name: 'Send money' });
    await send.getByLabel('To account number').fill(bobAccount!);
    await send.getByLabel('Amount (USD)').fill('250');
    await send.getByRole('button', { name: 'Send money' }).click();
    await a.page.getByText('Not enough money: the available balance of this account is lower than the amount.').waitFor();

    // A double click sends once.
    await send.getByLabel('Amount (USD)').fill('30.25');
    await send.getByLabel('Memo (optional)').fill('Concert tickets');
    await send.getByLabel('Reference (optional)').fill('INV-7');
    await send.getByRole('button', { name: 'Send money' }).dblclick();
    await a.page.getByText('The money was sent.').waitFor();
    await expect(a.page.locator('.balances dd').first().textContent()).resolves.toBe('$69.75');
    const sent = await stack.db.pool.oneFirst(
      sql.type(z.object({ n: z.number() }))`SELECT count(*)::int AS n FROM transfers WHERE from_account_id = ${aliceAccount!} AND to_account_id = ${bobAccount!}`,
    );
    expect(sent).toBe(1);

    // A retry after a lost answer sends once too: the bank moves the money, the answer never
    // reaches the page, the person presses again, and the same idempotency key gets the first result.
    let lost = 0;
    await a.page.route('**/v1/transfers', async (route) => {
      if (route.request().method() !== 'POST' || lost > 0) return route.continue();
      lost++;
      await route.fetch(); // the bank does the work...
      await route.abort('connectionreset'); // ...and the page never hears back
    });
    await send.getByLabel('Amount (USD)').fill('1');
    await send.getByLabel('Memo (optional)').fill('Coffee');
    await send.getByLabel('Reference (optional)').fill('');
    await send.getByRole('button', { name: 'Send money' }).click();
    await a.page.getByText('The bank could not be reached').waitFor();
    await send.getByRole('button', { name: 'Send money' }).click();
    await a.page.getByText('The money was sent.').waitFor();
    await a.page.unroute('**/v1/transfers');
    await expect(a.page.locator('.balances dd').first().textContent()).resolves.toBe('$68.75');
    expect(
      await stack.db.pool.oneFirst(
        sql.type(z.object({ n: z.number() }))`SELECT count(*)::int AS n FROM transfers WHERE from_account_id = ${aliceAccount!} AND to_account_id = ${bobAccount!}`,
      ),
    ).toBe(2);

    // A hold, then captured from its page.
    await send.getByLabel('Amount (USD)').fill('20');
    await send.getByLabel('Memo (optional)').fill('Deposit for the flat');
    await send.getByLabel('Reference (optional)').fill('');
    await send.getByLabel(/Only hold the money/).check();
    await send.getByRole('button', { name: 'Hold money' }).click();
    await a.page.getByText('The money is on hold.').waitFor();
    await expect(a.page.locator('.balances dd').nth(1).textContent()).resolves.toBe('$48.75');
    await a.page.getByRole('link', { name: /See transfer No\. \d+/ }).click();
    await heading(a.page).filter({ hasText: /Transfer No\. \d+/ }).waitFor();
    await a.page.getByText('On hold').waitFor();
    expect(await seriousA11yViolations(a.page)).toEqual([]);
    await screenshot(a.page, 'desktop-transfer-hold');
    await a.page.getByRole('button', { name: 'Capture' }).click();
    await a.page.getByText('The hold is captured').waitFor();
    await a.page.getByRole('definition').filter({ hasText: 'Done' }).waitFor();
    await a.page.getByRole('link', { name: /Account No\. \d+/ }).click();
    await expect(a.page.locator('.balances dd').first().textContent()).resolves.toBe('$48.75');

    // History: memo, reference, counterparty and balance after; older pages load on scrolling.
    const history = a.page.getByRole('list', { name: 'Movements, newest first' });
    await history.getByText('Concert tickets').waitFor();
    await expect(history.locator('li').filter({ hasText: 'Concert tickets' }).textContent()).resolves.toMatch(new RegExp(`To account No\\. ${bobAccount}.*-\\$30\\.25.*Ref\\. INV-7.*Balance after \\$69\\.75`));
    // 22 more deposits, made over the API in a session of its own, fill more than one page.
    const api = httpTransport(origin);
    const viaApi = await logIn(api, stack.smtp, alice, 'code');
    await Promise.all(
      Array.from({ length: 22 }, () =>
        api.call(AccountService, 'deposit', { accountId: BigInt(aliceAccount!), amount: 100n, idempotencyKey: idemKey() }, { token: viaApi.accessToken }),
      ),
    );
    api.close();
    await a.page.reload();
    await history.locator('li').first().waitFor();
    expect(await history.locator('li').count()).toBe(20);
    await a.page.getByRole('button', { name: 'Show older movements' }).scrollIntoViewIfNeeded();
    await a.page.getByText('That is the whole history.').waitFor();
    expect(await history.locator('li').count()).toBe(26); // deposit, two sends, captured hold, 22 deposits
    // The reload kept the session (the refresh cookie), and the balance is read anew.
    await expect(a.page.locator('.balances dd').first().textContent()).resolves.toBe('$70.75');
    expect(await seriousA11yViolations(a.page)).toEqual([]);
    await a.page.evaluate('window.scrollTo(0, 0)');
    await screenshot(a.page, 'desktop-account', { fullPage: false });

    // Statements: CSV and PDF, downloaded through the typed client.
    const [csv] = await Promise.all([a.page.waitForEvent('download'), a.page.getByRole('button', { name: 'Download CSV' }).click()]);
    expect(csv.suggestedFilename()).toBe(`statement-${aliceAccount}.csv`);
    const csvText = await readFile((await csv.path())!, 'utf8');
    expect(csvText).toContain('Concert tickets');
    expect(csvText).toContain('INV-7');
    const [pdf] = await Promise.all([a.page.waitForEvent('download'), a.page.getByRole('button', { name: 'Download PDF' }).click()]);
    expect((await readFile((await pdf.path())!)).subarray(0, 5).toString()).toBe('%PDF-');

    // Bob sees the money on his phone.
    await b.page.getByRole('link', { name: /USD account No\. \d+/ }).click();
    await expect(b.page.locator('.balances dd').first().textContent()).resolves.toBe('$51.25');
    await b.page.getByRole('list', { name: 'Movements, newest first' }).getByText(`From account No. ${aliceAccount}`).first().waitFor();
    expect(await seriousA11yViolations(b.page)).toEqual([]);
    await screenshot(b.page, 'phone-account');
    // Nothing overflows the phone's width.
    expect(await b.page.evaluate<number>('document.documentElement.scrollWidth')).toBeLessThanOrEqual(PHONE.width);

    // A withdrawal, and a hold voided: the available balance comes back.
    const withdraw = a.page.getByRole('form', { name: 'Withdraw' });
    await withdraw.getByLabel('Amount (USD)').fill('1.75');
    await withdraw.getByLabel(/Destination/).fill('DE89 3704 0044 0532 0130 00');
    await withdraw.getByRole('button', { name: 'Withdraw' }).click();
    await a.page.getByText('The withdrawal is on its way.').waitFor();
    await expect(a.page.locator('.balances dd').first().textContent()).resolves.toBe('$69.00');
    await send.getByLabel('To account number').fill(bobAccount!);
    await send.getByLabel('Amount (USD)').fill('10');
    await send.getByLabel(/Only hold the money/).check();
    await send.getByRole('button', { name: 'Hold money' }).click();
    await a.page.getByText('The money is on hold.').waitFor();
    await expect(a.page.locator('.balances dd').nth(1).textContent()).resolves.toBe('$59.00');
    await a.page.getByRole('link', { name: /See transfer No\. \d+/ }).click();
    await a.page.getByRole('button', { name: 'Void the hold' }).click();
    await a.page.getByText('The hold is voided').waitFor();
    await a.page.getByRole('definition').filter({ hasText: 'Hold voided' }).waitFor();
    await a.page.getByRole('link', { name: /Account No\. \d+/ }).click();
    await expect(a.page.locator('.balances dd').nth(1).textContent()).resolves.toBe('$69.00');

    // Settings: a password change; then logout: the cookie is gone and a reload finds no session.
    await a.page.getByRole('link', { name: 'Settings' }).click();
    await heading(a.page).filter({ hasText: 'Your settings' }).waitFor();
    expect(await seriousA11yViolations(a.page)).toEqual([]);
    await screenshot(a.page, 'desktop-settings');
    await a.page.getByLabel('Current password').fill(alice.password);
    await a.page.getByLabel('New password', { exact: true }).fill(`${alice.password}-2`);
    await a.page.getByRole('button', { name: 'Change password' }).click();
    await a.page.getByText('Your password is changed.').waitFor();
    await a.page.getByRole('button', { name: 'Log out' }).click();
    await heading(a.page).filter({ hasText: 'Log in' }).waitFor();
    expect((await a.context.cookies()).find((c) => c.name === 'bank_refresh')).toBeUndefined();
    await a.page.reload();
    await heading(a.page).filter({ hasText: 'Log in' }).waitFor();

    expect([...a.problems, ...b.problems, ...elsewhere.problems]).toEqual([]);
  });
});

describe('password fields (ASVS 2.1.11, 2.1.12)', () => {
  it('show the password while the toggle is pressed, and block neither paste nor a password manager', async () => {
    const origin = stack.api.url;
    const { page, problems } = await openPage(DESKTOP);
    // A paste event as the browser sends it; a field that refused pastes would cancel it. (This
    // file compiles without the DOM's types: the browser's own classes are reached by name.)
    const pasteAllowed = (label: string) =>
      page.getByLabel(label, { exact: true }).evaluate((input) => {
        const dom = globalThis as unknown as {
          DataTransfer: new () => { setData(type: string, value: string): void };
          ClipboardEvent: new (type: string, init: object) => { readonly defaultPrevented: boolean };
        };
        const data = new dom.DataTransfer();
        data.setData('text/plain', 'pasted-long-secret');
        const event = new dom.ClipboardEvent('paste', { clipboardData: data, bubbles: true, cancelable: true });
        (input as unknown as { dispatchEvent(event: unknown): boolean }).dispatchEvent(event);
        return !event.defaultPrevented;
      });
    const attributes = (label: string) =>
      page.getByLabel(label, { exact: true }).evaluate((input) => ({ type: input.getAttribute('type'), autocomplete: input.getAttribute('autocomplete') }));

    await page.goto(`${origin}/app/login`);
    await heading(page).filter({ hasText: 'Log in' }).waitFor();
    expect(await attributes('Username')).toEqual({ type: null, autocomplete: 'username' });
    expect(await attributes('Password')).toEqual({ type: 'password', autocomplete: 'current-password' });
    expect(await pasteAllowed('Password')).toBe(true);
    await page.getByLabel('Password', { exact: true }).fill('typed-long-secret');
    const toggle = page.getByRole('button', { name: 'Show password' });
    expect(await toggle.getAttribute('aria-pressed')).toBe('false');
    await toggle.click();
    expect(await toggle.getAttribute('aria-pressed')).toBe('true');
    expect(await attributes('Password')).toEqual({ type: 'text', autocomplete: 'current-password' });
    expect(await page.getByLabel('Password', { exact: true }).inputValue()).toBe('typed-long-secret');
    await toggle.click();
    expect(await attributes('Password')).toEqual({ type: 'password', autocomplete: 'current-password' });

    await page.goto(`${origin}/app/signup`);
    await heading(page).waitFor();
    expect(await attributes('Password')).toEqual({ type: 'password', autocomplete: 'new-password' });
    expect(await pasteAllowed('Password')).toBe(true);
    expect(problems).toEqual([]);
  });
});

describe('the keyboard alone', () => {
  it('reaches the skip link, the login form\'s fields and its button in order, each with a visible focus ring, and Enter submits', async () => {
    const origin = stack.api.url;
    const api = httpTransport(origin);
    const user = await signUp(api, stack.smtp);
    api.close();
    const { page, problems } = await openPage(DESKTOP);
    await page.goto(`${origin}/app/login`);
    await heading(page).filter({ hasText: 'Log in' }).waitFor();
    const focused = () => page.evaluate<string>(`(() => { const e = document.activeElement; return e.labels?.[0]?.textContent || e.textContent || e.tagName; })()`);
    const ring = () => page.evaluate<string>('getComputedStyle(document.activeElement).outlineStyle + " " + getComputedStyle(document.activeElement).outlineWidth');
    // The page's heading has the focus (a screen reader reads the new page); back to the skip
    // link, then forward through the form.
    const order: string[] = [];
    for (const key of ['Shift+Tab', 'Shift+Tab', 'Tab', 'Tab', 'Tab', 'Tab', 'Tab']) {
      await page.keyboard.press(key);
      order.push(await focused());
      expect(await ring()).toBe('solid 3px');
    }
    expect(order).toEqual(['Bank', 'Skip to content', 'Bank', 'Username', 'Password', 'Show password', 'Continue']);
    await page.keyboard.press('Shift+Tab');
    await page.keyboard.press('Shift+Tab');
    await page.keyboard.press('Shift+Tab');
    await page.keyboard.type(user.username);
    await page.keyboard.press('Tab');
    await page.keyboard.type(user.password);
    await page.keyboard.press('Enter');
    await heading(page).filter({ hasText: 'Check your email' }).waitFor();
    expect(problems).toEqual([]);
  });
});

describe('a forgotten password in the web app', () => {
  it('asks for a link, sets a new password on /app/reset-password, and logs in with it (phone-sized screen)', async () => {
    const origin = stack.api.url;
    const api = httpTransport(origin);
    const user = await signUp(api, stack.smtp);
    api.close();
    const { page, problems } = await openPage(PHONE);
    await page.goto(`${origin}/app/login`);
    await page.getByRole('link', { name: 'Forgot your password?' }).click();
    await page.getByLabel('Email address').fill(user.email);
    const seen = stack.smtp.messagesTo(user.email).length;
    await page.getByRole('button', { name: 'Email me a link' }).click();
    await page.getByText(`If ${user.email} is the verified address of an account`).waitFor();
    const mail = await nextEmail(stack.smtp, user.email, seen, (m) => m.text.includes('/app/reset-password?'));
    await page.goto(linkIn(mail, '/app/reset-password', origin));
    expect(await seriousA11yViolations(page)).toEqual([]);
    await screenshot(page, 'phone-reset-password');
    // A password the bank refuses may be replaced by another.
    await page.getByLabel('New password', { exact: true }).fill('short');
    await page.getByRole('button', { name: 'Set my new password' }).click();
    await page.getByRole('alert').filter({ hasText: /^Please check: new password/ }).waitFor();
    await page.getByLabel('New password', { exact: true }).fill('a brand new long secret');
    await page.getByRole('button', { name: 'Set my new password' }).click();
    await page.getByText('Your new password is set').waitFor();
    await page.getByRole('link', { name: 'Log in' }).click();
    await page.getByLabel('Username').fill(user.username);
    await page.getByLabel('Password').fill('a brand new long secret');
    const seenLogin = stack.smtp.messagesTo(user.email).length;
    await page.getByRole('button', { name: 'Continue' }).click();
    const login = await nextEmail(stack.smtp, user.email, seenLogin, (m) => /confirm with this code/i.test(m.text));
    await page.getByLabel('6-digit code').fill(codeIn(login));
    await page.getByRole('button', { name: 'Confirm' }).click();
    await heading(page).filter({ hasText: 'Your accounts' }).waitFor();
    expect(problems).toEqual([]);
  });
});

/**
 * A verified user logged in over the API with the refresh token delivered as a cookie, which is
 * then put into the browser context as the browser itself would have stored it.
 */
async function cookieSession(context: BrowserContext): Promise<string> {
  const origin = stack.api.url;
  const api = httpTransport(origin);
  const user = await signUp(api, stack.smtp);
  const { sessionId, loginSecret } = await api.call(AuthService, 'login', { username: user.username, password: user.password });
  api.close();
  const { code } = await loginEmailFor(stack.smtp, sessionId);
  const confirmed = await fetch(`${origin}/v1/sessions/${sessionId}/confirm`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'token-delivery': 'cookie' },
    body: JSON.stringify({ loginSecret, code }),
  });
  const cookie = /^bank_refresh=([^;]+)/.exec(confirmed.headers.getSetCookie().find((c) => c.startsWith('bank_refresh=')) ?? '')?.[1];
  if (!cookie) throw new Error('no bank_refresh cookie');
  await context.addCookies([
    { name: 'bank_refresh', value: cookie, url: `${origin}/v1/tokens`, httpOnly: true, secure: true, sameSite: 'Strict', expires: Math.floor(Date.now() / 1000) + 3600 },
  ]);
  return user.username;
}

describe('tokens in the browser', () => {
  it('a form POSTed to the refresh route from another origin gets no tokens, whether the browser sends the cookie (same site) or not (cross-site)', async () => {
    const origin = stack.api.url;
    const { page, context } = await openPage(DESKTOP);
    await cookieSession(context);
    // The attacker's page: a form that submits itself to the refresh route.
    const evil = createServer((req, res) => {
      const kind = new URL(req.url ?? '/', 'http://x').searchParams.get('kind');
      const form =
        kind === 'json-as-text'
          ? `<form method="POST" action="${origin}/v1/tokens/refresh" enctype="text/plain"><input type="hidden" name='{"a":"' value='"}'></form>`
          : `<form method="POST" action="${origin}/v1/tokens/refresh"></form>`;
      res.setHeader('content-type', 'text/html');
      res.end(`<!doctype html><html><body>${form}<script>document.forms[0].submit()</script></body></html>`);
    });
    await new Promise<void>((resolve) => evil.listen(0, '127.0.0.1', resolve));
    const port = (evil.address() as AddressInfo).port;
    try {
      // localhost is another site than 127.0.0.1: the SameSite=Strict cookie stays home. 127.0.0.1
      // on another port is the same site, so the cookie rides along, and the content type stops it.
      for (const [host, kind, status] of [
        ['localhost', 'empty', 401],
        ['localhost', 'json-as-text', 415],
        ['127.0.0.1', 'empty', 415],
        ['127.0.0.1', 'json-as-text', 415],
      ] as const) {
        const answered = page.waitForResponse((r) => r.url() === `${origin}/v1/tokens/refresh`);
        await page.goto(`http://${host}:${port}/?kind=${kind}`);
        const response = await answered;
        const body = await response.text();
        expect({ host, kind, status: response.status(), tokens: /v4\.public|accessToken/.test(body), setCookie: response.headers()['set-cookie'] }).toEqual({
          host,
          kind,
          status,
          tokens: false,
          setCookie: undefined,
        });
      }
    } finally {
      await new Promise((resolve) => evil.close(resolve));
    }
    // None of that used the cookie: the app still restores the session with it.
    await page.goto(`${origin}/app/`);
    await heading(page).filter({ hasText: 'Your accounts' }).waitFor();
  });

  it('two tabs opened at once both restore the session from the one cookie, and the session lives on', async () => {
    const origin = stack.api.url;
    const { page, context, problems } = await openPage(DESKTOP);
    await cookieSession(context);
    const other = await context.newPage();
    const statuses: number[] = [];
    for (const p of [page, other]) {
      p.on('response', (r) => {
        if (r.url() === `${origin}/v1/tokens/refresh`) statuses.push(r.status());
      });
    }
    await Promise.all([page.goto(`${origin}/app/`), other.goto(`${origin}/app/`)]);
    await Promise.all([heading(page).filter({ hasText: 'Your accounts' }).waitFor(), heading(other).filter({ hasText: 'Your accounts' }).waitFor()]);
    await page.reload();
    await heading(page).filter({ hasText: 'Your accounts' }).waitFor();
    expect(statuses).toEqual([200, 200, 200]);
    expect(problems).toEqual([]);
  });

  it('with Playwright\'s clock: the app refreshes the access token a minute before it expires, and carries on with the new one', async () => {
    const origin = stack.api.url;
    const { page, context, problems } = await openPage(DESKTOP);
    await context.clock.install();
    await cookieSession(context);
    const refreshes: number[] = [];
    page.on('response', (r) => {
      if (r.url() === `${origin}/v1/tokens/refresh`) refreshes.push(r.status());
    });
    // A reload (here the first load) restores the session from the cookie.
    await page.goto(`${origin}/app/`);
    await heading(page).filter({ hasText: 'Your accounts' }).waitFor();
    expect(refreshes).toEqual([200]);
    // The access token lives ACCESS_TOKEN_TTL_SECONDS (900 s). 13m50s later nothing has happened...
    await page.clock.fastForward('13:50');
    expect(refreshes).toEqual([200]);
    // ...and by 14m05s (under 15 minutes) the app has traded it for a new one.
    const refreshed = page.waitForResponse((r) => r.url() === `${origin}/v1/tokens/refresh`);
    await page.clock.fastForward('00:15');
    expect((await refreshed).status()).toBe(200);
    expect(refreshes).toEqual([200, 200]);
    // The new token works.
    await page.getByLabel('Currency').selectOption('EUR');
    await page.getByRole('button', { name: 'Open account' }).click();
    await page.getByText(/Your EUR account No\. \d+ is open/).waitFor();
    expect(problems).toEqual([]);
  });
});
