// The web app (web/, built by Vite into web/dist) served under /app: its index.html for /app and
// every /app/* path that is not a file (the app routes on the client), its hashed assets under
// /app/assets, and `/` sent to /app/. The pages the emailed links open (/app/verify-email,
// /app/approve-login, /app/reset-password) are pages of the app: each does nothing until the
// person presses its button, so a link scanner that fetches the page changes nothing.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Router } from '@koa/router';
import { DomainError } from '@bank/shared/errors/domain-error';
import type { Logger } from '@bank/shared/logging/logger';

/** Where `npm run build -w web` writes the app (the repository's web/dist; /app/web/dist in the API image). */
export const WEB_APP_DIR = fileURLToPath(new URL('../../../../web/dist/', import.meta.url));

/**
 * The Content-Security-Policy of the app: its own scripts and styles as files (no inline script or
 * style), calls to its own origin only, no frames, no plugins, no base or form tricks.
 */
export const WEB_APP_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; font-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

const TYPES: Readonly<Record<string, string>> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.woff2': 'font/woff2',
  '.json': 'application/json',
};

type Asset = { type: string; body: Buffer };

/** The built app, read once: index.html and every file of assets/ (a few hundred kB). Undefined when not built. */
export function loadWebApp(dir = WEB_APP_DIR): { index: string; assets: ReadonlyMap<string, Asset> } | undefined {
  const indexPath = join(dir, 'index.html');
  if (!existsSync(indexPath)) return undefined;
  const assets = new Map<string, Asset>();
  const assetsDir = join(dir, 'assets');
  if (existsSync(assetsDir)) {
    for (const name of readdirSync(assetsDir)) {
      assets.set(name, { type: TYPES[extname(name)] ?? 'application/octet-stream', body: readFileSync(join(assetsDir, name)) });
    }
  }
  return { index: readFileSync(indexPath, 'utf8'), assets };
}

/**
 * GET / (to /app/), GET /app and /app/* (the app; its assets under /app/assets), and
 * GET /v1/verify-email: an old verification link (or a scanner) that GETs the API path changes
 * nothing and is sent to the app's page (303 with the same query), whose button posts to
 * POST /v1/verify-email. When the app is not built, /app answers 503 saying how to build it.
 */
export function registerWebApp(router: Router, options: { logger: Logger; dir?: string }): void {
  const app = loadWebApp(options.dir);
  if (!app) options.logger.warn({ dir: options.dir ?? WEB_APP_DIR }, 'the web app is not built (npm run build -w web): /app answers 503');

  router.get('/', (ctx) => {
    ctx.status = 302;
    ctx.set('Location', '/app/');
    ctx.type = 'text/plain; charset=utf-8';
    ctx.body = 'The bank is at /app/\n';
  });
  router.get('/app/assets/:name', (ctx) => {
    const asset = app?.assets.get(ctx.params.name ?? '');
    if (!asset) throw new DomainError('NOT_FOUND', `no file ${ctx.path}`);
    ctx.type = asset.type;
    // Names carry a hash of their content: cached for good, and a new build has new names.
    ctx.set('Cache-Control', 'public, max-age=31536000, immutable');
    ctx.body = asset.body;
  });
  const page = (ctx: Parameters<Parameters<Router['get']>[1]>[0]) => {
    if (!app) {
      ctx.status = 503;
      ctx.type = 'text/plain; charset=utf-8';
      ctx.body = 'The web app is not built: run `npm run build -w web` (npm start and npm test build it by themselves).\n';
      return;
    }
    ctx.type = 'text/html; charset=utf-8';
    ctx.body = app.index;
  };
  router.get('/app', page);
  router.get('/app/{*rest}', page);
  router.get('/v1/verify-email', (ctx) => {
    ctx.status = 303;
    ctx.set('Location', `/app/verify-email${ctx.querystring ? `?${ctx.querystring}` : ''}`);
    ctx.type = 'text/plain; charset=utf-8';
    ctx.body = 'Email verification is a POST /v1/verify-email; the link opens the page /app/verify-email.\n';
  });
}
