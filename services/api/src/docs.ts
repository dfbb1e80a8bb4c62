// The API explorer at /docs: Swagger UI (the swagger-ui-dist package, served from this origin, so it
// works offline and with no CDN) over /openapi.json, with "try it" against this same origin. The
// page runs under DOCS_CSP: Swagger UI's bundle and our start-up script are files served here
// (docs/docs-init.js), never inline script.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { Router } from '@koa/router';
import { DomainError } from '@bank/shared/errors/domain-error';

const require = createRequire(import.meta.url);

/** The OpenAPI document generated from the proto by protoc-gen-bank-rest (proto/gen/openapi.json). */
export function loadOpenApiDocument(): Record<string, unknown> {
  return JSON.parse(readFileSync(require.resolve('@bank/proto/openapi.json'), 'utf8')) as Record<string, unknown>;
}

export const DOCS_PATH = '/docs';
export const DOCS_ASSETS_PATH = '/docs/assets';

/**
 * The /docs page's Content-Security-Policy: scripts, styles, images and fonts from this origin
 * only (no inline script; Swagger UI's icons are data: images), calls ("try it", the document)
 * to this origin only, no forms posted anywhere, never framed.
 */
export const DOCS_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

type Asset = { type: string; body: Buffer };

/** The files the page loads, read once at start-up: what is not listed here is not served. */
function loadAssets(): Map<string, Asset> {
  const dist = (require('swagger-ui-dist') as { getAbsoluteFSPath(): string }).getAbsoluteFSPath();
  const own = join(import.meta.dirname, 'docs');
  const files: [name: string, dir: string, type: string][] = [
    ['swagger-ui.css', dist, 'text/css; charset=utf-8'],
    ['index.css', dist, 'text/css; charset=utf-8'],
    ['swagger-ui-bundle.js', dist, 'text/javascript; charset=utf-8'],
    ['favicon-32x32.png', dist, 'image/png'],
    ['favicon-16x16.png', dist, 'image/png'],
    ['docs-init.js', own, 'text/javascript; charset=utf-8'],
  ];
  return new Map(
    files.map(([name, dir, type]) => {
      // The bundle's source-map comment would send browsers' developer tools after a file we do not serve.
      const raw = readFileSync(join(dir, name));
      const body = type.startsWith('text/javascript') ? Buffer.from(raw.toString('utf8').replace(/\n\/\/# sourceMappingURL=\S+\s*$/, '\n')) : raw;
      return [name, { type, body }];
    }),
  );
}

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Bank API explorer</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" type="image/png" sizes="32x32" href="${DOCS_ASSETS_PATH}/favicon-32x32.png">
<link rel="icon" type="image/png" sizes="16x16" href="${DOCS_ASSETS_PATH}/favicon-16x16.png">
<link rel="stylesheet" href="${DOCS_ASSETS_PATH}/swagger-ui.css">
<link rel="stylesheet" href="${DOCS_ASSETS_PATH}/index.css">
</head>
<body>
<noscript><p>The API explorer needs JavaScript. The OpenAPI document is at <a href="/openapi.json">/openapi.json</a>.</p></noscript>
<main id="swagger-ui"></main>
<script src="${DOCS_ASSETS_PATH}/swagger-ui-bundle.js"></script>
<script src="${DOCS_ASSETS_PATH}/docs-init.js"></script>
</body>
</html>
`;

/** GET /openapi.json, GET /docs (the explorer) and GET /docs/assets/<file>. */
export function registerDocsRoutes(router: Router): void {
  const document = JSON.stringify(loadOpenApiDocument());
  const assets = loadAssets();
  router.get('/openapi.json', (ctx) => {
    ctx.type = 'application/json';
    ctx.body = document;
  });
  router.get(DOCS_PATH, (ctx) => {
    ctx.type = 'text/html; charset=utf-8';
    ctx.body = PAGE;
  });
  router.get(`${DOCS_ASSETS_PATH}/:name`, (ctx) => {
    const asset = assets.get(ctx.params.name ?? '');
    if (!asset) throw new DomainError('NOT_FOUND', `no file ${ctx.path.slice(0, 200)}`);
    ctx.type = asset.type;
    // The files change only with the package (or this server's code): a day in caches is fine.
    ctx.set('Cache-Control', 'public, max-age=86400');
    ctx.body = asset.body;
  });
}
