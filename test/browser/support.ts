// The browser tier's set-up: the system's Chromium (Debian's `chromium` package; .ci/run installs
// it, nothing is downloaded) driven by playwright-core over the real stack of test/e2e/harness.ts,
// with axe-core injected into pages, screenshots under test-results/, and the emails read from the
// stack's SMTP receiver.
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import type { CapturedEmail, TestSmtpServer } from '../smtp.ts';

const require = createRequire(import.meta.url);
/** axe-core's whole engine as one script (evaluated in the page by CDP, which the page's CSP does not govern). */
const AXE_SOURCE = (require('axe-core') as { source: string }).source;

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const SCREENSHOTS = path.join(import.meta.dirname, '../../test-results/browser');

export const PHONE = { width: 390, height: 844 } as const;
export const DESKTOP = { width: 1280, height: 860 } as const;

export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: apt-get install -y chromium (or set CHROMIUM_PATH)`);
  // As root (CI, containers) Chromium refuses to start with its sandbox.
  const asRoot = process.getuid?.() === 0;
  return chromium.launch({ executablePath: CHROMIUM, args: [...(asRoot ? ['--no-sandbox'] : []), '--disable-dev-shm-usage'] });
}

/** Every Content-Security-Policy violation and uncaught error a page reports, to assert there are none. */
export function watchPage(page: Page): string[] {
  const problems: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error' && /Content Security Policy|Refused to/i.test(message.text())) problems.push(message.text());
  });
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  return problems;
}

export type AxeViolation = { id: string; impact: string | null; help: string; nodes: { target: string[] }[] };

/** axe-core's violations of impact serious or critical on the page as it is now. */
export async function seriousA11yViolations(page: Page): Promise<AxeViolation[]> {
  await page.evaluate(AXE_SOURCE);
  // A string, run in the page (this file is type-checked without the DOM's types).
  const violations = await page.evaluate<AxeViolation[]>(`axe.run(document, { resultTypes: ['violations'] }).then((result) =>
    result.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => ({ target: n.target })) })))`);
  return violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
}

export async function screenshot(page: Page, name: string, options: { fullPage?: boolean } = {}): Promise<void> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`), fullPage: options.fullPage ?? true });
}

export async function newContext(browser: Browser, viewport: { width: number; height: number }): Promise<BrowserContext> {
  return browser.newContext({ viewport, acceptDownloads: true, locale: 'en-US', timezoneId: 'UTC' });
}

/** Waits for the first email to `address` after the first `seen` of them that `match` accepts. */
export async function nextEmail(smtp: TestSmtpServer, address: string, seen: number, match: (m: CapturedEmail) => boolean): Promise<CapturedEmail> {
  const later = () => smtp.messagesTo(address).slice(seen).filter(match);
  await smtp.waitFor(() => later().length > 0);
  return later()[0]!;
}

/** A link of an email, moved onto the stack's origin (the stack's PUBLIC_BASE_URL is a name no browser resolves). */
export function linkIn(email: CapturedEmail, pathname: string, origin: string): string {
  const found = new RegExp(`(https?://\\S+${pathname.replace(/\//g, '\\/')}\\?\\S+)`).exec(email.text)?.[1];
  if (!found) throw new Error(`no ${pathname} link in the email "${email.subject}"`);
  const url = new URL(found);
  return `${origin}${url.pathname}${url.search}`;
}

export const codeIn = (email: CapturedEmail): string => {
  const code = /confirm with this code: (\d{6})/i.exec(email.text)?.[1];
  if (!code) throw new Error(`no code in the email "${email.subject}"`);
  return code;
};
