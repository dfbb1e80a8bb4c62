import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { freePort, isListening, waitFor } from './ports.ts';

/**
 * Finding (or starting) the PostgreSQL and Redis that `npm start` uses when the environment
 * does not name them: first the local servers on their usual ports, then private instances of
 * the installed server programs under the data folder, else a one-line "install X".
 */

export class StoreUnavailable extends Error {}

export type Store = { url: string; description: string; stop?: () => Promise<void> };

async function canConnect(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2_000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => {});
  }
}

/** Creates the database named in `url` if it does not exist (connecting to `postgres` to do it). */
export async function ensureDatabase(url: string): Promise<void> {
  const target = new URL(url);
  const name = decodeURIComponent(target.pathname.slice(1)) || 'bank';
  if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new StoreUnavailable(`database name "${name}" must be lower-case letters, digits and _`);
  const admin = new URL(url);
  admin.pathname = '/postgres';
  const client = new pg.Client({ connectionString: admin.toString(), connectionTimeoutMillis: 5_000 });
  await client.connect();
  try {
    const exists = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (exists.rowCount === 0) await client.query(`CREATE DATABASE ${name}`);
  } finally {
    await client.end();
  }
}

function findPostgresBin(program: string): string | null {
  const which = spawnSync('sh', ['-c', `command -v ${program}`], { encoding: 'utf8' });
  if (which.status === 0 && which.stdout.trim()) return which.stdout.trim();
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return null;
  const versions = readdirSync(root).sort((a, b) => Number(b) - Number(a));
  for (const version of versions) {
    const candidate = path.join(root, version, 'bin', program);
    if (existsSync(candidate)) return candidate;
  }
  return null;
}

/** PostgreSQL refuses to run as root; on a root shell the private instance runs as `postgres`. */
function asServiceUser(command: string, args: string[]): [string, string[]] {
  if (process.getuid?.() !== 0) return [command, args];
  return ['runuser', ['-u', 'postgres', '--', command, ...args]];
}

function serviceUserIds(): { uid: number; gid: number } | null {
  if (process.getuid?.() !== 0) return null;
  const id = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
  const gid = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
  if (id.status !== 0 || gid.status !== 0) return null;
  return { uid: Number(id.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

/** `probeLocal: false` skips the local server on its usual port (tests of the private path). */
export type ResolveOptions = { probeLocal?: boolean };

export async function resolvePostgres(
  env: NodeJS.ProcessEnv,
  dataDir: string,
  log: (line: string) => void,
  options: ResolveOptions = {},
): Promise<Store> {
  if (env.DATABASE_URL) return { url: env.DATABASE_URL, description: 'DATABASE_URL from the environment' };
  for (const user of options.probeLocal === false ? [] : ['postgres', env.USER].filter(Boolean)) {
    const server = `postgres://${user}@127.0.0.1:5432`;
    if (await canConnect(`${server}/postgres`)) {
      const url = `${server}/bank`;
      await ensureDatabase(url);
      return { url, description: `local PostgreSQL at 127.0.0.1:5432 (database bank)` };
    }
  }
  const initdb = findPostgresBin('initdb');
  const postgres = findPostgresBin('postgres');
  if (!initdb || !postgres) {
    throw new StoreUnavailable('PostgreSQL is not running and not installed: install it (Debian: apt-get install postgresql) or set DATABASE_URL');
  }
  const dir = path.join(dataDir, 'postgres');
  const ids = serviceUserIds();
  if (ids) {
    // As root the server runs as `postgres`, which must be able to reach its folder: open our
    // own data folder for traversal, and say so plainly if a folder above it is closed.
    chmodSync(dataDir, 0o755);
    const reachable = spawnSync('runuser', ['-u', 'postgres', '--', 'test', '-x', dataDir]);
    if (reachable.status !== 0) {
      throw new StoreUnavailable(`the postgres user cannot reach ${dataDir}; set BANK_DATA_DIR to a folder it can traverse, or set DATABASE_URL`);
    }
  }
  if (!existsSync(path.join(dir, 'PG_VERSION'))) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    if (ids) chownSync(dir, ids.uid, ids.gid);
    log(`initialising a private PostgreSQL in ${dir}`);
    const [cmd, args] = asServiceUser(initdb, ['-D', dir, '-U', 'postgres', '--auth=trust', '--encoding=UTF8', '--no-instructions']);
    const init = spawnSync(cmd, args, { encoding: 'utf8' });
    if (init.status !== 0) throw new StoreUnavailable(`initdb failed: ${(init.stderr || init.stdout).trim().split('\n').at(-1)}`);
  }
  const port = await freePort();
  const [cmd, args] = asServiceUser(postgres, ['-D', dir, '-p', String(port), '-h', '127.0.0.1', '-k', '/tmp']);
  const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-2_000)));
  const server = `postgres://postgres@127.0.0.1:${port}`;
  if (!(await waitFor(() => canConnect(`${server}/postgres`), 30_000))) {
    child.kill('SIGKILL');
    throw new StoreUnavailable(`the private PostgreSQL did not start: ${stderr.trim().split('\n').at(-1) ?? 'no output'}`);
  }
  const url = `${server}/bank`;
  await ensureDatabase(url);
  return { url, description: `private PostgreSQL on 127.0.0.1:${port} (${dir})`, stop: () => stopChild(child, 'SIGINT') };
}

export async function resolveRedis(env: NodeJS.ProcessEnv, dataDir: string, options: ResolveOptions = {}): Promise<Store> {
  if (env.REDIS_URL) return { url: env.REDIS_URL, description: 'REDIS_URL from the environment' };
  if (options.probeLocal !== false && (await isListening('127.0.0.1', 6379))) return { url: 'redis://127.0.0.1:6379', description: 'local Redis at 127.0.0.1:6379' };
  const which = spawnSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' });
  const bin = which.stdout.trim();
  if (which.status !== 0 || !bin) {
    throw new StoreUnavailable('Redis is not running and not installed: install it (Debian: apt-get install redis-server) or set REDIS_URL');
  }
  const dir = path.join(dataDir, 'redis');
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const child = spawn(bin, ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no'], {
    stdio: 'ignore',
  });
  if (!(await waitFor(() => isListening('127.0.0.1', port), 15_000))) {
    child.kill('SIGKILL');
    throw new StoreUnavailable('the private Redis did not start');
  }
  return { url: `redis://127.0.0.1:${port}`, description: `private Redis on 127.0.0.1:${port}`, stop: () => stopChild(child, 'SIGTERM') };
}

export function stopChild(child: ChildProcess, signal: NodeJS.Signals, timeoutMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill(signal);
  });
}
