import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Router } from '@koa/router';
import Koa from 'koa';
import { createLogger } from '@bank/shared/logging/logger';
import { problemMiddleware } from '../problem.ts';
import { registerWebApp } from './web-app.ts';

const INDEX = '<!doctype html><html><head><script type="module" crossorigin src="/app/assets/index-abc123.js"></script></head><body><div id="root"></div></body></html>';
const servers: ReturnType<Koa['listen']>[] = [];
const dirs: string[] = [];

async function serve(built: boolean): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'web-app-'));
  dirs.push(dir);
  if (built) {
    mkdirSync(join(dir, 'assets'));
    writeFileSync(join(dir, 'index.html'), INDEX);
    writeFileSync(join(dir, 'assets', 'index-abc123.js'), 'console.log("app")');
    writeFileSync(join(dir, 'assets', 'index-def456.css'), 'body{}');
  }
  const app = new Koa();
  const router = new Router();
  const logger = createLogger({ name: 'test', level: 'silent' });
  registerWebApp(router, { logger, dir });
  app.use(problemMiddleware(logger));
  app.use(router.routes());
  const server = app.listen(0, '127.0.0.1');
  servers.push(server);
  await new Promise((resolve) => server.once('listening', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

let base: string;
beforeAll(async () => {
  base = await serve(true);
});
afterAll(async () => {
  await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe('the web app under /app', () => {
  it('/ sends the browser to /app/', async () => {
    const answer = await fetch(`${base}/`, { redirect: 'manual' });
    expect(answer.status).toBe(302);
    expect(answer.headers.get('location')).toBe('/app/');
  });

  it.each(['/app', '/app/', '/app/login', '/app/verify-email', '/app/accounts/12', '/app/transfers/7/anything'])('%s answers the app (the client routes)', async (path) => {
    const answer = await fetch(`${base}${path}?email_id=1&secret_code=x`);
    expect(answer.status).toBe(200);
    expect(answer.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(await answer.text()).toBe(INDEX);
  });

  it('serves the hashed assets with their types, cached for good', async () => {
    const script = await fetch(`${base}/app/assets/index-abc123.js`);
    expect(script.status).toBe(200);
    expect(script.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(script.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    const style = await fetch(`${base}/app/assets/index-def456.css`);
    expect(style.headers.get('content-type')).toBe('text/css; charset=utf-8');
  });

  it('an asset that does not exist is a 404 problem, not the app', async () => {
    const answer = await fetch(`${base}/app/assets/index-old999.js`);
    expect(answer.status).toBe(404);
    expect(answer.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  });

  it('GET /v1/verify-email changes nothing: it answers 303 to the page, with the same query', async () => {
    const answer = await fetch(`${base}/v1/verify-email?email_id=5&secret_code=abc`, { redirect: 'manual' });
    expect(answer.status).toBe(303);
    expect(answer.headers.get('location')).toBe('/app/verify-email?email_id=5&secret_code=abc');
  });

  it('when the app is not built, /app says how to build it (503)', async () => {
    const unbuilt = await serve(false);
    const answer = await fetch(`${unbuilt}/app/login`);
    expect(answer.status).toBe(503);
    expect(await answer.text()).toContain('npm run build -w web');
  });
});
