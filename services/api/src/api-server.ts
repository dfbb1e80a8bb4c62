import type { AddressInfo } from 'node:net';
import cors from '@koa/cors';
import { Router } from '@koa/router';
import Koa, { type Context, type Next } from 'koa';
import type { Registry } from 'prom-client';
import { openBankEdge, type BankEdge, type EdgeServerConfig, type EdgeServerDeps } from '@bank/edge/bank-edge';
import { requestIdFrom } from '@bank/edge/call/request-id';
import type { Bank } from '@bank/shared/app/bank';
import type { Config } from '@bank/shared/config/config';
import { DomainError, MethodNotAllowed } from '@bank/shared/errors/domain-error';
import { createLogger, type Logger } from '@bank/shared/logging/logger';
import { createRegistry } from '@bank/shared/observability/metrics';
import { healthAnswer, startHealthServer } from '@bank/shared/process/health-server';
import { dialAddress } from '@bank/shared/process/listen-address';
import { shutdownSequence } from '@bank/shared/process/shutdown';
import { DOCS_CSP, DOCS_PATH, registerDocsRoutes } from './docs.ts';
import { registerGatewayRoutes } from './gateway.ts';
import { httpMetricsMiddleware } from './http-metrics.ts';
import { WEB_APP_CSP, registerWebApp } from './pages/web-app.ts';
import { problemMiddleware } from './problem.ts';

export type ApiServer = {
  port: number;
  /** The address it is bound to (HOST unless the caller chose one). */
  host: string;
  /** Where a client on this machine reaches it. */
  url: string;
  /** The /healthz /readyz /metrics server on METRICS_PORT: its port and address. */
  metricsPort: number;
  metricsHost: string;
  bank: Bank;
  registry: Registry;
  /** Stops accepting, lets in-flight requests finish (up to SHUTDOWN_TIMEOUT_MS), closes what it opened. */
  close(): Promise<void>;
};

/** The part of the configuration the API process reads besides the use cases' slice. */
export type ApiConfig = Pick<Config, 'LOG_LEVEL' | 'HOST' | 'HTTP_PORT' | 'METRICS_PORT' | 'TRUSTED_PROXIES' | 'CORS_ORIGINS' | 'HTTP_BODY_LIMIT_BYTES' | 'SHUTDOWN_TIMEOUT_MS'> & EdgeServerConfig;

/**
 * Request id (the edge's one rule) and one log line for what the edge's chain does not log
 * itself: health, docs, unknown paths and wrong verbs.
 */
function requestIdMiddleware(logger: Logger) {
  return async (ctx: Context, next: Next): Promise<void> => {
    const requestId = requestIdFrom(ctx.get('x-request-id') || undefined);
    ctx.state.requestId = requestId;
    ctx.set('X-Request-Id', requestId);
    const started = performance.now();
    try {
      await next();
    } finally {
      if (!ctx.state.loggedByEdge) {
        const line = {
          requestId,
          method: ctx.method,
          route: ctx.state.route ?? ctx.path,
          status: ctx.status,
          ms: Math.round((performance.now() - started) * 10) / 10,
          // Not `code`: the logger redacts that key everywhere (login codes must never be logged).
          errorCode: ctx.state.errorCode,
        };
        if (ctx.status >= 500) logger.error(line, 'request');
        else logger.info(line, 'request');
      }
    }
  };
}

/** The API explorer its own files (DOCS_CSP); the web app under /app its own files; everything else nothing. */
function contentSecurityPolicy(path: string, docsPath: string): string {
  if (path === docsPath) return DOCS_CSP;
  if (path === '/app' || path.startsWith('/app/')) return WEB_APP_CSP;
  return "default-src 'none'; frame-ancestors 'none'";
}

function securityHeaders(docsPath: string) {
  return async (ctx: Context, next: Next): Promise<void> => {
    ctx.set('X-Content-Type-Options', 'nosniff');
    ctx.set('X-Frame-Options', 'DENY');
    ctx.set('Referrer-Policy', 'no-referrer');
    ctx.set('Strict-Transport-Security', 'max-age=63072000; includeSubDomains');
    ctx.set('Cross-Origin-Opener-Policy', 'same-origin');
    ctx.set('Cache-Control', 'no-store');
    ctx.set('Content-Security-Policy', contentSecurityPolicy(ctx.path, docsPath));
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

/** The Koa application: REST gateway, health, metrics, OpenAPI and docs, the pages emailed links open. */
export function createApiApp(config: ApiConfig, deps: { edge: BankEdge; bank: Bank; registry: Registry; logger: Logger }): Koa {
  const app = new Koa();
  // ctx.ip: the X-Forwarded-For entry TRUSTED_PROXIES hops from the right (the one our outermost
  // proxy appended); earlier entries are the client's word. 0: the socket's peer.
  app.proxy = config.TRUSTED_PROXIES > 0;
  app.maxIpsCount = config.TRUSTED_PROXIES;
  const router = new Router();

  // Probes reach these on the HTTP port too; /metrics only on METRICS_PORT, never the public port.
  for (const path of ['/healthz', '/readyz']) {
    router.get(path, async (ctx) => {
      const answer = await healthAnswer(path, { readiness: deps.bank.readiness, registry: deps.registry });
      if (!answer) return;
      ctx.status = answer.status;
      ctx.type = answer.type;
      ctx.body = answer.body;
    });
  }
  registerDocsRoutes(router);
  registerWebApp(router, { logger: deps.logger });
  registerGatewayRoutes(router, deps.edge, { bodyLimitBytes: config.HTTP_BODY_LIMIT_BYTES });

  app.use(requestIdMiddleware(deps.logger));
  app.use(httpMetricsMiddleware(deps.registry));
  app.use(securityHeaders(DOCS_PATH));
  app.use(corsMiddleware(config.CORS_ORIGINS));
  app.use(problemMiddleware(deps.logger));
  app.use(unmatchedMiddleware(router));
  app.use(router.routes());
  app.on('error', () => undefined); // errors are answered and logged by problemMiddleware or the edge
  return app;
}

/**
 * The API process's composition root: pool, use cases, the edge's chain, the Koa app, the
 * listening server on HTTP_PORT (0 picks a free port), and the /healthz /readyz /metrics server on
 * METRICS_PORT. Returns the bound ports and a graceful close.
 */
export async function startApiServer(config: ApiConfig, deps: EdgeServerDeps = {}): Promise<ApiServer> {
  const logger = deps.logger ?? createLogger({ name: 'api', level: config.LOG_LEVEL });
  const registry = deps.registry ?? createRegistry('api');
  const { bank, edge, release } = await openBankEdge(config, deps, { logger, registry, process: 'api' });
  const app = createApiApp(config, { edge, bank, registry, logger });
  const server = app.listen({ port: config.HTTP_PORT, host: deps.host ?? config.HOST });
  server.keepAliveTimeout = 5_000;
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  const { port, address: host } = server.address() as AddressInfo;
  const healthServer = await startHealthServer({ port: config.METRICS_PORT, host: deps.host ?? config.HOST, readiness: bank.readiness, registry }).catch(
    async (error: unknown) => {
      await new Promise((resolve) => server.close(resolve));
      throw error;
    },
  );
  logger.info({ host, port, metricsPort: healthServer.port }, 'HTTP API listening');

  const stopServing = async () => {
    const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
    // Keep-alive connections that finish their last request become idle: close them as they do.
    const sweep = setInterval(() => server.closeIdleConnections(), 50);
    server.closeIdleConnections();
    const timer = setTimeout(() => server.closeAllConnections(), config.SHUTDOWN_TIMEOUT_MS);
    await stopped;
    clearInterval(sweep);
    clearTimeout(timer);
  };
  return {
    port,
    host,
    url: `http://${dialAddress(host, port)}`,
    metricsPort: healthServer.port,
    metricsHost: healthServer.host,
    bank,
    registry,
    close: shutdownSequence(
      [['http server', stopServing], ['health server', () => healthServer.close()], ...release],
      logger,
      'HTTP API stopped',
    ),
  };
}
