// `npm start` as a child process, the way the stack tests run it: a fresh data folder, free
// ports, its own queue, its own process group (so a signal to the group is what Ctrl-C does).
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { waitFor } from '@bank/dev-tools/start/ports';
import { TEST_REDIS_URL } from '../services.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
export const SHUTDOWN_TIMEOUT_MS = 8_000;

export type StackPorts = { http: number; grpc: number; metrics: number; inboxSmtp: number; inboxHttp: number };

export type NpmStart = {
  readonly child: ChildProcess;
  readonly ports: StackPorts;
  readonly dataDir: string;
  /** Everything the supervisor and its children printed so far. */
  output(): string;
  /** Pids of every process the supervisor reported started (`name` narrows to one kind). */
  startedPids(name?: string): number[];
  /** SIGKILLs whatever is left (group and children) and removes the data folder. */
  cleanUp(): Promise<void>;
};

export const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/**
 * Starts `npm start` on free ports with `env` over the test defaults (a key set to undefined is
 * removed) and waits for its ready block (`[start] ready` to `Ctrl-C stops everything`). The worker
 * takes METRICS_PORT + 1, the API + 2.
 * @throws with the last output when it does not become ready within `readyTimeoutMs`
 */
export async function startNpmStart(options: { name: string; env: NodeJS.ProcessEnv; readyTimeoutMs: number }): Promise<NpmStart> {
  const dataDir = await mkdtemp(path.join(tmpdir(), `bank-${options.name}-`));
  // Every port stays bound here until just before the spawn, so a stack test running beside this
  // one cannot be handed the same port meanwhile; the worker's METRICS_PORT + 1 is held too (the
  // OS hands out neighbouring ports, so an unheld +1 went to the other stack test now and then).
  const held = await holdPorts(5, { pairAt: 2 });
  const [http, grpc, metrics, inboxSmtp, inboxHttp] = held.ports as [number, number, number, number, number];
  const ports: StackPorts = { http, grpc, metrics, inboxSmtp, inboxHttp };
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    NODE_ENV: 'development',
    BANK_DATA_DIR: dataDir,
    REDIS_URL: TEST_REDIS_URL,
    EMAIL_QUEUE_NAME: `bank-email-${options.name}-${randomBytes(4).toString('hex')}`,
    HTTP_PORT: String(ports.http),
    GRPC_PORT: String(ports.grpc),
    METRICS_PORT: String(ports.metrics),
    INBOX_SMTP_PORT: String(ports.inboxSmtp),
    INBOX_HTTP_PORT: String(ports.inboxHttp),
    PUBLIC_BASE_URL: `http://127.0.0.1:${ports.http}`,
    BCRYPT_COST: '4',
    SIGNUP_RATE_LIMIT_PER_ADDRESS: '100000',
    SIGNUP_RATE_LIMIT_GLOBAL: '100000',
    LOG_LEVEL: 'warn',
    OUTBOX_SWEEP_INTERVAL_MS: '1000',
    SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS),
    SMTP_URL: '',
    AWS_SECRETS_MANAGER_SECRET_ID: '',
    ...options.env,
  };
  for (const [key, value] of Object.entries(env)) if (value === undefined) delete env[key];
  await held.release();
  const child = spawn('npm', ['start'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const startedPids = (name = '\\w+') =>
    output.split('\n').flatMap((line) => new RegExp(`\\[start\\] ${name}: started \\(pid (\\d+)\\)`).exec(line)?.[1] ?? []).map(Number);
  const handle: NpmStart = {
    child,
    ports,
    dataDir,
    output: () => output,
    startedPids,
    async cleanUp() {
      if (child.pid && child.exitCode === null && child.signalCode === null) {
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          // the group is already gone
        }
      }
      for (const pid of startedPids()) if (alive(pid)) process.kill(pid, 'SIGKILL');
      await rm(dataDir, { recursive: true, force: true });
    },
  };
  // The block's last line, not `ready`: the addresses follow it, and a test reads them at once.
  const ready = await waitFor(async () => /\[start\] Ctrl-C stops everything/.test(output) || child.exitCode !== null, options.readyTimeoutMs, 250);
  if (!ready || !/\[start\] ready/.test(output)) {
    await handle.cleanUp();
    throw new Error(`npm start did not become ready:\n${output.slice(-4_000)}`);
  }
  return handle;
}

/** Binds `count` free ports (and the one after port number `pairAt`) and keeps them until release(). */
async function holdPorts(count: number, options: { pairAt: number }): Promise<{ ports: number[]; release(): Promise<void> }> {
  const servers: net.Server[] = [];
  const bind = (port: number) =>
    new Promise<net.Server | null>((resolve) => {
      const server = net.createServer();
      server.once('error', () => resolve(null));
      server.listen(port, '127.0.0.1', () => resolve(server));
    });
  const ports: number[] = [];
  while (ports.length < count) {
    const server = await bind(0);
    if (!server) continue;
    const port = (server.address() as net.AddressInfo).port;
    if (ports.length === options.pairAt) {
      // The worker's METRICS_PORT + 1 and the API's + 2.
      const next = [await bind(port + 1), await bind(port + 2)];
      if (next.includes(null)) {
        server.close();
        for (const other of next) other?.close();
        continue;
      }
      servers.push(...(next as net.Server[]));
    }
    servers.push(server);
    ports.push(port);
  }
  return {
    ports,
    release: () => Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve())))).then(() => undefined),
  };
}
