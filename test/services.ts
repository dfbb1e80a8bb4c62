import net from 'node:net';

export const TEST_DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
export const TEST_REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

function reachable(url: string, defaultPort: number): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = net.connect({ host: hostname || '127.0.0.1', port: Number(port || defaultPort) });
    socket.setTimeout(2_000);
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => (socket.destroy(), resolve(false)));
  });
}

/** Fails fast, in one line, when the real PostgreSQL or Redis the tests need is not there. */
export async function checkTestServices(): Promise<void> {
  const missing: string[] = [];
  if (!(await reachable(TEST_DATABASE_URL, 5432))) missing.push(`PostgreSQL at ${new URL(TEST_DATABASE_URL).host}`);
  if (!(await reachable(TEST_REDIS_URL, 6379))) missing.push(`Redis at ${new URL(TEST_REDIS_URL).host}`);
  if (missing.length > 0) throw new Error(`tests need ${missing.join(' and ')} (set DATABASE_URL / REDIS_URL)`);
}
