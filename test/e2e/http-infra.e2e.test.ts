// The HTTP gateway's own duties: routes from the proto, health, metrics, OpenAPI and docs,
// request ids, security headers, CORS, problem+json for unknown routes, graceful shutdown.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { AccountService } from '@bank/proto/bank/v1/account_service_pb';
import { BankRestClient } from '@bank/proto/bank/v1/rest_client';
import { API_ROUTES } from '@bank/api/gateway';
import { startApiServer } from '@bank/api/api-server';
import { BANK_SERVICES } from '@bank/edge/handlers/bank-handlers';
import { holdAccountLock, idemKey } from '../factories.ts';
import { signUpAndLogIn } from './flows.ts';
import { startStack, type Stack } from './harness.ts';
import { httpTransport } from './transports.ts';

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => {
  await stack?.stop();
});

const get = (path: string, headers: Record<string, string> = {}) => fetch(`${stack.api.url}${path}`, { headers });

describe('HTTP gateway', () => {
  it('serves one route per annotated RPC of the contract, with the REST paths of the issue', () => {
    const methods = BANK_SERVICES.flatMap((s) => s.methods);
    expect(API_ROUTES).toHaveLength(methods.length);
    expect(API_ROUTES.map((r) => `${r.verb.toUpperCase()} ${r.pathTemplate}`).sort()).toEqual(
      [
        'POST /v1/users',
        'POST /v1/verify-email',
        'GET /v1/users/{username}',
        'PATCH /v1/users/{username}',
        'POST /v1/sessions',
        'POST /v1/sessions/{session_id}/confirm',
        'POST /v1/sessions/{session_id}/approve',
        'POST /v1/tokens/refresh',
        'DELETE /v1/sessions/{session_id}',
        'POST /v1/users/{username}/password',
        'POST /v1/password-resets',
        'POST /v1/password-resets/{reset_id}/confirm',
        'POST /v1/accounts',
        'GET /v1/accounts',
        'GET /v1/accounts/{account_id}',
        'DELETE /v1/accounts/{account_id}',
        'POST /v1/accounts/{account_id}/deposits',
        'POST /v1/accounts/{account_id}/withdrawals',
        'GET /v1/accounts/{account_id}/entries',
        'GET /v1/accounts/{account_id}/balance',
        'GET /v1/accounts/{account_id}/statement',
        'POST /v1/accounts/{account_id}/freeze',
        'POST /v1/accounts/{account_id}/unfreeze',
        'POST /v1/transfers',
        'GET /v1/transfers/{transfer_id}',
        'GET /v1/transfers',
        'POST /v1/transfers/{transfer_id}/capture',
        'POST /v1/transfers/{transfer_id}/void',
        'POST /v1/transfers/{transfer_id}/reversal',
        'POST /v1/transfers/{transfer_id}/refunds',
        'GET /v1/audit-events',
        'POST /v1/webhooks',
        'GET /v1/webhooks',
        'DELETE /v1/webhooks/{webhook_id}',
        'GET /v1/webhooks/{webhook_id}/deliveries',
        'POST /v1/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver',
      ].sort(),
    );
    expect(API_ROUTES.find((r) => r.method.name === 'Login')?.successStatus).toBe(202);
    expect(API_ROUTES.find((r) => r.method.name === 'RequestPasswordReset')?.successStatus).toBe(202);
    expect(API_ROUTES.filter((r) => r.idempotencyField).map((r) => r.method.name).sort()).toEqual([
      'CaptureTransfer',
      'CreateTransfer',
      'Deposit',
      'RefundTransfer',
      'ReverseTransfer',
      'VoidTransfer',
      'Withdraw',
    ]);
    const status = (name: string) => API_ROUTES.find((r) => r.method.name === name)?.successStatus;
    expect(['CaptureTransfer', 'VoidTransfer', 'ReverseTransfer', 'RefundTransfer', 'Withdraw'].map(status)).toEqual([200, 200, 201, 201, 201]);
  });

  it('answers login step 1 with 202, the session id and the login secret only, in canonical proto3 JSON', async () => {
    const t = httpTransport(stack.api.url);
    const user = await signUpAndLogIn(t, stack.smtp);
    const response = await fetch(`${stack.api.url}/v1/sessions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: user.username, password: user.password }),
    });
    expect(response.status).toBe(202);
    expect(Object.keys((await response.json()) as object)).toEqual(['sessionId', 'loginSecret']);
    const account = await fetch(`${stack.api.url}/v1/accounts`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${user.accessToken}` },
      body: '{"currency":"JPY"}',
    });
    expect(account.status).toBe(201);
    const json = (await account.json()) as Record<string, unknown>;
    expect(json).toMatchObject({ currency: 'JPY', balance: '0', status: 'ACCOUNT_STATUS_OPEN', owner: user.username });
    expect(typeof json.id).toBe('string');
    expect(json.createdAt).toMatch(/^\d{4}-\d\d-\d\dT/);
  });

  it('sends the typed client\'s idempotency key as the Idempotency-Key header, so a retry replays', async () => {
    const t = httpTransport(stack.api.url);
    const user = await signUpAndLogIn(t, stack.smtp);
    const client = new BankRestClient({ baseUrl: stack.api.url }).withAccessToken(user.accessToken);
    const account = await client.account.openAccount({ currency: 'CAD' });
    const key = idemKey();
    const first = await client.account.deposit({ accountId: account.id, amount: 250n }, { idempotencyKey: key });
    const again = await client.account.deposit({ accountId: account.id, amount: 250n, idempotencyKey: key });
    expect(first.replayed).toBe(false);
    expect(again).toMatchObject({ replayed: true, balance: 250n });
    expect(again.transfer?.id).toBe(first.transfer?.id);
  });

  it('serves /healthz, /readyz (database and Redis) on the HTTP port and METRICS_PORT, and /metrics by route and outcome only on METRICS_PORT', async () => {
    const metricsBase = `http://127.0.0.1:${stack.api.metricsPort}`;
    expect(stack.api.metricsPort).not.toBe(stack.api.port);
    for (const base of [stack.api.url, metricsBase]) {
      expect(await (await fetch(`${base}/healthz`)).json()).toEqual({ status: 'ok' });
      const ready = await fetch(`${base}/readyz`);
      expect(ready.status).toBe(200);
      expect(await ready.json()).toEqual({ ready: true, checks: { database: 'ok', redis: 'ok' } });
    }
    await get('/v1/accounts'); // a 401 to count
    // Nothing about the process on the public port.
    const publicMetrics = await get('/metrics');
    expect(publicMetrics.status).toBe(404);
    expect(await publicMetrics.text()).not.toContain('http_requests_total');
    const metrics = await (await fetch(`${metricsBase}/metrics`)).text();
    expect(metrics).toMatch(/http_requests_total\{[^}]*method="GET"[^}]*route="\/v1\/accounts"[^}]*status="401"[^}]*\} \d+/);
    expect(metrics).toMatch(/http_request_duration_seconds_bucket\{[^}]*route="\/v1\/accounts"/);
    expect(metrics).toContain('bank_db_pool_connections');
  });

  it('/readyz answers 503 when Redis is unreachable', async () => {
    const server = await startApiServer({ ...stack.config, HTTP_PORT: 0, REDIS_URL: 'redis://127.0.0.1:1' }, { host: '127.0.0.1', logger: stack.logger });
    try {
      const response = await fetch(`${server.url}/readyz`);
      expect(response.status).toBe(503);
      expect(await response.json()).toEqual({ ready: false, checks: { database: 'ok', redis: 'unreachable' } });
    } finally {
      await server.close();
    }
  });

  it('serves the OpenAPI document generated from the proto', async () => {
    const doc = (await (await get('/openapi.json')).json()) as { openapi: string; paths: Record<string, Record<string, { operationId: string; parameters: { name: string; in: string }[] }>> };
    expect(doc.openapi).toBe('3.1.0');
    const operations = Object.values(doc.paths).flatMap((p) => Object.values(p));
    expect(operations).toHaveLength(API_ROUTES.length);
    expect(doc.paths['/v1/transfers']?.post?.parameters.map((p) => `${p.in}:${p.name}`)).toEqual(['header:Idempotency-Key']);
    expect(doc.paths['/v1/accounts/{account_id}/entries']?.get?.parameters.map((p) => p.name)).toEqual(['account_id', 'page_size', 'page_token', 'since', 'until']);
    expect(doc.paths['/v1/transfers/{transfer_id}/capture']?.post?.parameters.map((p) => `${p.in}:${p.name}`)).toEqual(['path:transfer_id', 'header:Idempotency-Key']);
    expect(doc.paths['/v1/transfers']?.get?.parameters.map((p) => p.name)).toContain('reference');
    const raw = doc as unknown as {
      paths: Record<string, Record<string, { requestBody?: { required: boolean } }>>;
      components: { schemas: Record<string, { properties: Record<string, { type?: string; additionalProperties?: unknown }> }> };
    };
    // Nothing is left for VoidTransfer's body (the id is in the path, the key a header).
    expect(raw.paths['/v1/transfers/{transfer_id}/void']?.post?.requestBody?.required).toBe(false);
    expect(raw.paths['/v1/transfers/{transfer_id}/capture']?.post?.requestBody?.required).toBe(true);
    expect(raw.components.schemas['bank.v1.Transfer']?.properties.metadata).toMatchObject({ type: 'object', additionalProperties: { type: 'string' } });
    expect(Object.keys(raw.components.schemas.Problem?.properties ?? {})).toEqual(expect.arrayContaining(['code', 'errors', 'limit', 'remaining']));
  });

  it('echoes a valid X-Request-Id, makes one otherwise, and puts it in problem bodies', async () => {
    const echoed = await get('/v1/accounts', { 'x-request-id': 'trace-abc.123' });
    expect(echoed.headers.get('x-request-id')).toBe('trace-abc.123');
    expect(((await echoed.json()) as { requestId: string }).requestId).toBe('trace-abc.123');
    const made = await get('/healthz', { 'x-request-id': 'bad id with spaces' });
    expect(made.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('sets security headers', async () => {
    const response = await get('/healthz');
    expect(response.headers.get('x-content-type-options')).toBe('nosniff');
    expect(response.headers.get('x-frame-options')).toBe('DENY');
    expect(response.headers.get('referrer-policy')).toBe('no-referrer');
    expect(response.headers.get('content-security-policy')).toContain("default-src 'none'");
    expect(response.headers.get('strict-transport-security')).toContain('max-age=');
    expect(response.headers.get('cache-control')).toBe('no-store');
  });

  it('allows CORS only for the configured origins', async () => {
    const preflight = await fetch(`${stack.api.url}/v1/transfers`, {
      method: 'OPTIONS',
      headers: { origin: 'https://app.bank.test', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,idempotency-key' },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-origin')).toBe('https://app.bank.test');
    expect(preflight.headers.get('access-control-allow-headers')).toContain('idempotency-key');
    const foreign = await get('/healthz', { origin: 'https://evil.example' });
    expect(foreign.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('answers unknown routes with a problem+json 404', async () => {
    const response = await get('/v1/nothing-here');
    expect(response.status).toBe(404);
    expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(await response.json()).toMatchObject({ code: 'NOT_FOUND', status: 404 });
  });

  it('answers a known path with the wrong verb 405 problem+json with Allow, and OPTIONS 204 with Allow', async () => {
    for (const [method, path, allow] of [
      ['PUT', '/v1/accounts/5', ['GET', 'HEAD', 'DELETE', 'OPTIONS']],
      ['POST', '/v1/accounts/5', ['GET', 'HEAD', 'DELETE', 'OPTIONS']],
      ['DELETE', '/v1/transfers', ['POST', 'GET', 'HEAD', 'OPTIONS']],
      ['GET', '/v1/sessions', ['POST', 'OPTIONS']],
    ] as const) {
      const response = await fetch(`${stack.api.url}${path}`, { method });
      expect({ method, path, status: response.status }).toEqual({ method, path, status: 405 });
      expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(response.headers.get('allow')?.split(', ').sort()).toEqual([...allow].sort());
      expect(await response.json()).toMatchObject({ code: 'METHOD_NOT_ALLOWED', status: 405, requestId: response.headers.get('x-request-id') });
    }
    const options = await fetch(`${stack.api.url}/v1/accounts/5/deposits`, { method: 'OPTIONS' });
    expect(options.status).toBe(204);
    expect(options.headers.get('allow')?.split(', ').sort()).toEqual(['OPTIONS', 'POST']);
    expect((await fetch(`${stack.api.url}/v1/nothing-here`, { method: 'PUT' })).status).toBe(404);
  });

  it('shuts down gracefully: an in-flight request finishes, then the port is closed', async () => {
    const server = await startApiServer({ ...stack.config, HTTP_PORT: 0 }, { bank: stack.grpc.bank, host: '127.0.0.1', logger: stack.logger });
    const t = httpTransport(server.url);
    const user = await signUpAndLogIn(t, stack.smtp);
    const account = await t.call(AccountService, 'openAccount', { currency: 'AUD' }, { token: user.accessToken });
    const lock = await holdAccountLock(stack.db.pool, account.id);
    const inFlight = t.call(AccountService, 'deposit', { accountId: account.id, amount: 900n, idempotencyKey: idemKey() }, { token: user.accessToken });
    await new Promise((resolve) => setTimeout(resolve, 100));
    const closing = server.close();
    await new Promise((resolve) => setTimeout(resolve, 100));
    await lock.release();
    expect((await inFlight).balance).toBe(900n);
    await closing;
    await expect(fetch(`${server.url}/healthz`)).rejects.toThrow();
    expect((await stack.grpc.bank.readiness()).ready).toBe(true);
  });
});
