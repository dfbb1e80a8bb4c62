// Issue 15, item 2: the API explorer at /docs in Chromium over the real stack. Swagger UI renders
// every operation of /openapi.json under the page's Content-Security-Policy (no violation, no
// error), and "try it" calls this origin with the bearer token given under Authorize and the
// Idempotency-Key header: the same key sent twice moves the money once.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Browser } from 'playwright-core';
import { AccountService } from '@bank/proto/bank/v1/account_service_pb';
import { openAccount, signUpAndLogIn } from '../e2e/flows.ts';
import { startStack, type Stack } from '../e2e/harness.ts';
import { httpTransport } from '../e2e/transports.ts';
import { DESKTOP, launchChromium, newContext, screenshot, watchPage } from './support.ts';

let stack: Stack;
let browser: Browser;
beforeAll(async () => {
  [stack, browser] = await Promise.all([startStack(), launchChromium()]);
});
afterAll(async () => {
  await browser?.close();
  await stack?.stop();
});

describe('API explorer', () => {
  it('renders every operation under its policy, and "try it" deposits with the bearer token and Idempotency-Key, once per key', async () => {
    const transport = httpTransport(stack.api.url);
    const user = await signUpAndLogIn(transport, stack.smtp);
    const accountId = await openAccount(transport, user, 'USD');
    const doc = (await (await fetch(`${stack.api.url}/openapi.json`)).json()) as { paths: Record<string, Record<string, unknown>> };
    const operations = Object.values(doc.paths).reduce((n, p) => n + Object.keys(p).length, 0);

    const context = await newContext(browser, DESKTOP);
    try {
      const page = await context.newPage();
      const problems = watchPage(page);
      const sent: { url: string; headers: Record<string, string> }[] = [];
      page.on('request', (request) => {
        if (new URL(request.url()).pathname.startsWith('/v1/')) sent.push({ url: request.url(), headers: request.headers() });
      });
      await page.goto(`${stack.api.url}/docs`);
      await page.locator('.opblock').first().waitFor();
      expect(await page.locator('.opblock').count()).toBe(operations);

      await page.click('.btn.authorize');
      await page.fill('.modal-ux input', user.accessToken);
      await page.click('.modal-ux .btn.modal-btn.auth.authorize');
      await page.click('.modal-ux .btn-done');

      const deposit = page.locator('#operations-AccountService-AccountService_Deposit');
      await deposit.locator('.opblock-summary').click();
      await deposit.locator('input[placeholder="account_id"]').fill(String(accountId));
      await deposit.locator('input[placeholder="Idempotency-Key"]').fill('explorer-key-1');
      await deposit.locator('textarea.body-param__text').fill(JSON.stringify({ amount: '1234' }));
      for (let i = 0; i < 2; i++) {
        const [answer] = await Promise.all([
          page.waitForResponse((response) => response.url().endsWith(`/v1/accounts/${accountId}/deposits`)),
          deposit.locator('.btn.execute').click(),
        ]);
        expect(answer.status()).toBe(201);
        expect(((await answer.json()) as { replayed: boolean }).replayed).toBe(i === 1);
        // The page shows the answer's status.
        await deposit.locator('.live-responses-table tbody .response-col_status', { hasText: '201' }).first().waitFor();
      }
      expect(sent).toHaveLength(2);
      await screenshot(page, 'api-explorer-deposit', { fullPage: false });

      // Same origin, bearer token and key on both calls; the second replayed the first.
      for (const request of sent) {
        expect(new URL(request.url).origin).toBe(stack.api.url);
        expect(request.headers.authorization).toBe(`Bearer ${user.accessToken}`);
        expect(request.headers['idempotency-key']).toBe('explorer-key-1');
      }
      const account = await transport.call(AccountService, 'getAccount', { accountId }, { token: user.accessToken });
      expect(account.balance).toBe(1234n);
      expect(problems).toEqual([]);
    } finally {
      await context.close();
    }
  });
});
