import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import type { ReadinessProbe } from './readiness.ts';

export type HealthAnswer = { status: number; type: string; body: string };

/**
 * The answers of /healthz (the process runs), /readyz (its stores answer) and /metrics
 * (Prometheus), or undefined for any other path. Every process serves exactly these; the API
 * also mounts them on its HTTP port.
 */
export async function healthAnswer(path: string, sources: { readiness: ReadinessProbe; registry: Registry }): Promise<HealthAnswer | undefined> {
  switch (path) {
    case '/healthz':
      return { status: 200, type: 'application/json', body: '{"status":"ok"}' };
    case '/readyz': {
      const readiness = await sources.readiness();
      return { status: readiness.ready ? 200 : 503, type: 'application/json', body: JSON.stringify(readiness) };
    }
    case '/metrics':
      return { status: 200, type: sources.registry.contentType, body: await sources.registry.metrics() };
    default:
      return undefined;
  }
}

export type HealthServer = {
  port: number;
  /** The address it is bound to (HOST). */
  host: string;
  close(): Promise<void>;
};

/** /healthz, /readyz and /metrics over plain HTTP on METRICS_PORT (0 picks a free port) at `host` (HOST). */
export async function startHealthServer(options: {
  port: number;
  host: string;
  readiness: ReadinessProbe;
  registry: Registry;
}): Promise<HealthServer> {
  const server = http.createServer((req, res) => {
    const send = ({ status, type, body }: HealthAnswer) => {
      res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
      res.end(body);
    };
    if (req.method !== 'GET') return send({ status: 405, type: 'text/plain', body: 'method not allowed\n' });
    healthAnswer((req.url ?? '/').split('?')[0] ?? '/', options).then(
      (answer) => send(answer ?? { status: 404, type: 'text/plain', body: 'not found\n' }),
      () => send({ status: 500, type: 'text/plain', body: 'health check failed\n' }),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const bound = server.address() as AddressInfo;
  return {
    port: bound.port,
    host: bound.address,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
