import { readFileSync } from 'node:fs';
import net from 'node:net';

/**
 * A TCP port nobody listens on right now (below the ephemeral range), never one of `avoid`: the ports the
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

/**
 * The lowest port of the kernel's ephemeral range, where outgoing connections take their local
 * ports (Linux: /proc/sys/net/ipv4/ip_local_port_range; 32768 when it cannot be read).
 */
export function ephemeralRangeStart(): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    if (Number.isInteger(low) && low > 1024) return low;
  } catch {
    // Not Linux: the usual start of the range.
  }
  return 32_768;
}

/** Where the stack's ports come from: below the ephemeral range (see anyFreePort). */
export const PORT_RANGE_START = 10_000;

/**
 * A port nobody listens on, chosen below the kernel's ephemeral range. A port the OS hands out
 * for listen(0) comes from that range, which outgoing connections share: once the process
 * listening on it died (a worker SIGKILLed and restarted), any new connection (a database pool's)
 * could take it as its local port and hold it, and the restarted process could never listen
 * again (EADDRINUSE; seen in the chaos run). Below the range no connection takes it.
 */
async function anyFreePort(): Promise<number> {
  const end = ephemeralRangeStart();
  if (end - PORT_RANGE_START < 1_000) return kernelPort();
  for (let tries = 0; tries < 200; tries++) {
    // A few below the range's start: npm start gives METRICS_PORT + 1 and + 2 to the worker and the API.
    const port = PORT_RANGE_START + Math.floor(Math.random() * (end - 10 - PORT_RANGE_START));
    if (await canListen(port)) return port;
  }
  throw new Error(`no free port from ${PORT_RANGE_START} to ${end - 1} after 200 tries`);
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

function kernelPort(): Promise<number> {
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
