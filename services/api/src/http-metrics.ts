import type { Context, Next } from 'koa';
import { Counter, Histogram, type Registry } from 'prom-client';

/** Request count and latency by method, route template and outcome (status code). */
export function httpMetricsMiddleware(registry: Registry) {
  const requests = new Counter({
    name: 'http_requests_total',
    help: 'HTTP requests by method, route and status.',
    labelNames: ['method', 'route', 'status'],
    registers: [registry],
  });
  const latency = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP request latency by method, route and status.',
    labelNames: ['method', 'route', 'status'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  return async (ctx: Context, next: Next): Promise<void> => {
    const end = latency.startTimer();
    try {
      await next();
    } finally {
      const labels = { method: ctx.method, route: (ctx.state.route as string | undefined) ?? 'unmatched', status: String(ctx.status) };
      requests.inc(labels);
      end(labels);
    }
  };
}
