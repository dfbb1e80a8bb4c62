// The API explorer at /docs: Swagger UI from the swagger-ui-dist package, served by the API itself
// (offline, no CDN) over /openapi.json, under a Content-Security-Policy without inline script.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { DOCS_CSP } from '@bank/api/docs';
import { startStack, type Stack } from './harness.ts';

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => {
  await stack?.stop();
});

const get = (path: string) => fetch(`${stack.api.url}${path}`);

/** `script-src 'self'` -> { 'script-src': ["'self'"] } */
function directives(policy: string): Record<string, string[]> {
  return Object.fromEntries(
    policy
      .split(';')
      .map((d) => d.trim().split(/\s+/))
      .filter(([name]) => name)
      .map(([name, ...sources]) => [name, sources]),
  );
}

/** The src and href of the page's scripts, stylesheets and icons, and the bodies of its scripts. */
function loads(html: string): { urls: string[]; scriptBodies: string[] } {
  const urls = [...html.matchAll(/<(?:script|link)\b[^>]*\b(?:src|href)="([^"]+)"/g)].map((m) => m[1] ?? '');
  const scriptBodies = [...html.matchAll(/<script\b[^>]*>([\s\S]*?)<\/script>/g)].map((m) => m[1] ?? '');
  return { urls, scriptBodies };
}

describe('API explorer', () => {
  it('GET /docs answers Swagger UI over /openapi.json with no inline script, under a policy that allows no inline or foreign script', async () => {
    const response = await get('/docs');
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/html; charset=utf-8');
    const html = await response.text();
    expect(html).toContain('<main id="swagger-ui"></main>');
    const { urls, scriptBodies } = loads(html);
    expect(urls).toEqual(expect.arrayContaining(['/docs/assets/swagger-ui-bundle.js', '/docs/assets/docs-init.js', '/docs/assets/swagger-ui.css']));
    expect(scriptBodies.every((body) => body.trim() === '')).toBe(true);
    expect(html).not.toMatch(/\son[a-z]+=/i); // no inline event handlers either
    // Everything the page loads comes from this origin.
    expect(urls.every((url) => url.startsWith('/'))).toBe(true);

    const policy = response.headers.get('content-security-policy') ?? '';
    expect(policy).toBe(DOCS_CSP);
    const csp = directives(policy);
    expect(csp['default-src']).toEqual(["'none'"]);
    expect(csp['script-src']).toEqual(["'self'"]);
    expect(csp['connect-src']).toEqual(["'self'"]);
    expect(csp['frame-ancestors']).toEqual(["'none'"]);
    expect(policy).not.toContain('unsafe-inline');
    expect(policy).not.toContain('unsafe-eval');
    expect(response.headers.get('x-frame-options')).toBe('DENY');
    expect(response.headers.get('x-content-type-options')).toBe('nosniff');
  });

  it('serves every file the page loads from this origin, with its content type', async () => {
    const { urls } = loads(await (await get('/docs')).text());
    const expected: Record<string, string> = { '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8', '.png': 'image/png' };
    expect(urls.length).toBeGreaterThanOrEqual(5);
    for (const url of urls) {
      const response = await get(url);
      expect({ url, status: response.status }).toEqual({ url, status: 200 });
      expect({ url, type: response.headers.get('content-type') }).toEqual({ url, type: expected[/\.[a-z]+$/.exec(url)?.[0] ?? ''] });
      expect(response.headers.get('x-content-type-options')).toBe('nosniff');
      const body = Buffer.from(await response.arrayBuffer());
      expect(body.length).toBeGreaterThan(0);
      // No source-map comment pointing browsers' tools at a file this server does not serve.
      if (url.endsWith('.js')) expect(body.toString('utf8')).not.toContain('sourceMappingURL');
    }
  });

  it('starts Swagger UI from a served script over this origin, with no call to the public validator', async () => {
    const init = await (await get('/docs/assets/docs-init.js')).text();
    expect(init).toContain("url: '/openapi.json'");
    expect(init).toContain('validatorUrl: null');
    const bundle = await (await get('/docs/assets/swagger-ui-bundle.js')).text();
    expect(bundle).toContain('SwaggerUIBundle');
  });

  it('"try it" goes to this origin, with the bearer scheme and the Idempotency-Key header the document declares', async () => {
    const doc = (await (await get('/openapi.json')).json()) as {
      servers: { url: string }[];
      components: { securitySchemes: Record<string, { type: string; scheme: string }> };
      security: Record<string, unknown>[];
      paths: Record<string, Record<string, { parameters: { name: string; in: string; required: boolean }[] }>>;
    };
    expect(doc.servers).toEqual([expect.objectContaining({ url: '/' })]);
    expect(doc.components.securitySchemes.bearerAuth).toMatchObject({ type: 'http', scheme: 'bearer' });
    expect(doc.security).toEqual([{ bearerAuth: [] }]);
    const key = doc.paths['/v1/accounts/{account_id}/deposits']?.post?.parameters.find((p) => p.name === 'Idempotency-Key');
    expect(key).toMatchObject({ in: 'header', required: true });
  });

  it('answers an asset it does not serve with a problem+json 404', async () => {
    for (const path of ['/docs/assets/nothing.js', '/docs/assets/package.json', '/docs/assets/swagger-ui-bundle.js.map', '/docs/assets/%2e%2e%2fpackage.json']) {
      const response = await get(path);
      expect({ path, status: response.status }).toEqual({ path, status: 404 });
      expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    }
  });
});
