import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import cors from '@koa/cors';
import { Router } from '@koa/router';
import Koa, { type Context, type Next } from 'koa';
import type { Registry } from 'prom-client';
import { createContainer, type Container, type ContainerOverrides } from '@bank/shared/app/container';
import type { Config } from '@bank/shared/config/config';
import { DomainError, MethodNotAllowed } from '@bank/shared/errors/domain-error';
import { createLogger, type Logger } from '@bank/shared/logging/logger';
import { createRegistry } from '@bank/shared/observability/metrics';
import { loadOpenApiDocument, renderDocsPage } from './docs.ts';
import { registerGatewayRoutes } from './gateway.ts';
import { httpMetricsMiddleware } from './http-metrics.ts';
import { problemMiddleware } from './problem.ts';

export type ApiServer = {
  port: number;
  url: string;
  container: Container;
  registry: Registry;
  /** Stops accepting, lets in-flight requests finish (up to SHUTDOWN_TIMEOUT_MS), closes pools. */
  close(): Promise<void>;
};

export type ApiServerOverrides = ContainerOverrides & {
  /** Use an existing container (the caller closes it). */
  container?: Container;
  host?: string;
};

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

function requestIdMiddleware(logger: Logger) {
  return async (ctx: Context, next: Next): Promise<void> => {
    const incoming = ctx.get('x-request-id');
    const requestId = REQUEST_ID.test(incoming) ? incoming : randomUUID();
    ctx.state.requestId = requestId;
    ctx.set('X-Request-Id', requestId);
    const started = performance.now();
    try {
      await next();
    } finally {
      const ms = Math.round((performance.now() - started) * 10) / 10;
      const line = {
        requestId,
        user: ctx.state.user as string | undefined,
        method: ctx.method,
        route: ctx.state.route ?? ctx.path,
        status: ctx.status,
        ms,
        // Not `code`: the logger redacts that key everywhere (login codes must never be logged).
        errorCode: ctx.state.errorCode,
      };
      if (ctx.status >= 500) logger.error(line, 'request');
      else logger.info(line, 'request');
    }
  };
}

function securityHeaders(path: string) {
  return async (ctx: Context, next: Next): Promise<void> => {
    ctx.set('X-Content-Type-Options', 'nosniff');
    ctx.set('X-Frame-Options', 'DENY');
    ctx.set('Referrer-Policy', 'no-referrer');
    ctx.set('Strict-Transport-Security', 'max-age=63072000; includeSubDomains');
    ctx.set('Cross-Origin-Opener-Policy', 'same-origin');
    ctx.set('Cache-Control', 'no-store');
    ctx.set(
      'Content-Security-Policy',
      ctx.path === path ? "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'" : "default-src 'none'; frame-ancestors 'none'",
    );
    await next();
  };
}

/** CORS for the origins listed in CORS_ORIGINS (comma-separated; `*` allows any). */
function corsMiddleware(corsOrigins: string) {
  const allowed = corsOrigins.split(',').map((o) => o.trim()).filter(Boolean);
  return cors({
    origin: (ctx: Context) => {
      const origin = ctx.get('origin');
      if (allowed.includes('*')) return origin || '*';
      return allowed.includes(origin) ? origin : '';
    },
    allowHeaders: ['authorization', 'content-type', 'idempotency-key', 'x-request-id'],
    exposeHeaders: ['x-request-id', 'retry-after'],
    allowMethods: ['GET', 'POST', 'PATCH', 'PUT', 'DELETE'],
    maxAge: 600,
  });
}

/**
 * Requests no route answered (router.routes() leaves the status at 404 without a body): a path
 * the router knows but with another verb is 405 with Allow (OPTIONS answers 204 with Allow);
 * anything else is 404. Both as problem+json through problemMiddleware.
 */
function unmatchedMiddleware(router: Router) {
  return async (ctx: Context, next: Next): Promise<void> => {
    await next();
    if (ctx.body !== undefined || ctx.status !== 404) return;
    const allow = [...new Set(router.match(ctx.path, ctx.method).path.flatMap((layer) => layer.methods))];
    if (allow.length === 0) throw new DomainError('NOT_FOUND', `no operation ${ctx.method} ${ctx.path}`);
    if (!allow.includes('OPTIONS')) allow.push('OPTIONS');
    ctx.set('Allow', allow.join(', '));
    if (ctx.method === 'OPTIONS') {
      ctx.status = 204;
      return;
    }
    throw new MethodNotAllowed(ctx.method, ctx.path, allow);
  };
}

/** The Koa application: REST gateway, health, metrics, OpenAPI and docs. */
export function createApiApp(container: Container, registry: Registry, logger: Logger): Koa {
  const { config } = container;
  const app = new Koa();
  app.proxy = config.TRUST_PROXY;
  app.maxIpsCount = 1; // only the hop our own ingress appended; earlier entries are the client's word
  const router = new Router();

  router.get('/healthz', (ctx) => {
    ctx.body = { status: 'ok' };
  });
  router.get('/readyz', async (ctx) => {
    const readiness = await container.checkReadiness();
    ctx.status = readiness.ready ? 200 : 503;
    ctx.body = readiness;
  });
  router.get('/metrics', async (ctx) => {
    ctx.type = registry.contentType;
    ctx.body = await registry.metrics();
  });
  const openapi = loadOpenApiDocument();
  const docsPage = renderDocsPage(openapi);
  router.get('/openapi.json', (ctx) => {
    ctx.body = openapi;
  });
  router.get('/docs', (ctx) => {
    ctx.type = 'text/html; charset=utf-8';
    ctx.body = docsPage;
  });
  registerGatewayRoutes(router, container, { bodyLimitBytes: config.HTTP_BODY_LIMIT_BYTES });

  app.use(requestIdMiddleware(logger));
  app.use(httpMetricsMiddleware(registry));
  app.use(securityHeaders('/docs'));
  app.use(corsMiddleware(config.CORS_ORIGINS));
  app.use(problemMiddleware(logger));
  app.use(unmatchedMiddleware(router));
  app.use(router.routes());
  app.on('error', () => undefined); // errors are answered and logged by problemMiddleware
  return app;
}

/**
 * Starts the HTTP gateway on HTTP_PORT (0 picks a free port). Returns the bound port and a
 * graceful close.
 */
export async function startApiServer(config: Config, overrides: ApiServerOverrides = {}): Promise<ApiServer> {
  const logger = overrides.logger ?? createLogger({ name: 'api', level: config.LOG_LEVEL });
  const registry = overrides.registry ?? createRegistry('api');
  const ownsContainer = overrides.container === undefined;
  const container = overrides.container ?? (await createContainer(config, { ...overrides, logger, registry }));
  const app = createApiApp(container, registry, logger);
  const server = app.listen({ port: config.HTTP_PORT, host: overrides.host ?? '0.0.0.0' });
  server.keepAliveTimeout = 5_000;
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  const port = (server.address() as AddressInfo).port;
  logger.info({ port }, 'HTTP API listening');
  let closing: Promise<void> | undefined;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    container,
    registry,
    close() {
      closing ??= (async () => {
        const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
        // Keep-alive connections that finish their last request become idle: close them as they do.
        const sweep = setInterval(() => server.closeIdleConnections(), 50);
        server.closeIdleConnections();
        const timer = setTimeout(() => server.closeAllConnections(), config.SHUTDOWN_TIMEOUT_MS);
        await stopped;
        clearInterval(sweep);
        clearTimeout(timer);
        if (ownsContainer) await container.close();
        logger.info('HTTP API stopped');
      })();
      return closing;
    },
  };
}
