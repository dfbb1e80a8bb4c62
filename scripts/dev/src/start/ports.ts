import net from 'node:net';

/**
 * A TCP port nobody listens on right now (the OS picks it), never one of `avoid`: the ports the
 * stack is about to take, which nobody may hold yet (a caller can have just released them).
 */
export async function freePort(avoid: Iterable<number> = []): Promise<number> {
  const taken = new Set(avoid);
  for (let tries = 0; tries < 100; tries++) {
    const port = await anyFreePort();
    if (!taken.has(port)) return port;
  }
  throw new Error('no free port outside the reserved ones after 100 tries');
}

/**
 * The ports `npm start` gives its services from the environment: HTTP_PORT, GRPC_PORT,
 * METRICS_PORT and the worker's and the API's METRICS_PORT + 1 and + 2, the inbox's.
 */
export function reservedPorts(env: NodeJS.ProcessEnv): number[] {
  const given = (name: string) => (env[name] ? Number(env[name]) : NaN);
  const metrics = given('METRICS_PORT');
  return [given('HTTP_PORT'), given('GRPC_PORT'), metrics, metrics + 1, metrics + 2, given('INBOX_SMTP_PORT'), given('INBOX_HTTP_PORT')]
    .filter((port) => Number.isInteger(port) && port > 0);
}

function anyFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/** True when something accepts TCP connections on host:port within the timeout. */
export function isListening(host: string, port: number, timeoutMs = 1_000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

export async function waitFor(check: () => Promise<boolean>, timeoutMs: number, intervalMs = 200): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  return false;
}
