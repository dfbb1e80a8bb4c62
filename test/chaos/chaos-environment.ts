// What the chaos run stands on: a private PostgreSQL and Redis (never the machine's shared ones),
// a TCP relay in front of PostgreSQL and one in front of a private SMTP receiver, and the stack
// started as `npm start` starts it (migrations, then api, grpc and worker under its supervisor,
// which restarts a process that dies), pointed at all of them.
import { chmodSync, copyFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createDatabasePool, type DatabasePool } from '@bank/shared/db/pool';
import { ensureDatabase } from '@bank/dev-tools/start/stores';
import { waitFor } from '@bank/dev-tools/start/ports';
import { startTestSmtpServer, type TestSmtpServer } from '../smtp.ts';
import { alive, startNpmStart, type NpmStart } from '../stack/npm-start-process.ts';
import type { ChaosConfig } from './chaos-config.ts';
import { startPostgresServer, type PostgresServer } from './postgres-server.ts';
import { startRedisServer, type RedisServer } from './redis-server.ts';
import { startTcpRelay, type TcpRelay } from './tcp-relay.ts';

export type StackProcess = 'api' | 'grpc' | 'worker';

export type ChaosEnvironment = {
  readonly postgres: PostgresServer;
  readonly redis: RedisServer;
  /** Between the stack and PostgreSQL. */
  readonly postgresRelay: TcpRelay;
  /** Between the worker and the SMTP receiver. */
  readonly smtpRelay: TcpRelay;
  readonly smtp: TestSmtpServer;
  readonly stack: NpmStart;
  readonly httpUrl: string;
  readonly grpcAddress: string;
  /** Slonik pool on the bank database, straight to PostgreSQL (not through the relay). */
  readonly db: DatabasePool;
  /** SIGKILLs the newest process of that name; answers its pid. */
  kill(name: StackProcess): number;
  /** Resolves with the pid the supervisor started after `pid` died, or null after `timeoutMs`. */
  restarted(name: StackProcess, pid: number, timeoutMs: number): Promise<number | null>;
  /** The process's /readyz (api: its HTTP port; grpc and worker: their METRICS_PORT). */
  readyUrl(name: StackProcess): string;
  /** Stops everything it started and keeps the logs in `config.logDir`. */
  close(): Promise<void>;
};

export async function startChaosEnvironment(config: ChaosConfig, log: (line: string) => void): Promise<ChaosEnvironment> {
  const dir = await mkdtemp(path.join(tmpdir(), 'bank-chaos-'));
  // The PostgreSQL server runs as its own user when we are root: it must be able to enter.
  chmodSync(dir, 0o755);
  const closers: (() => Promise<void>)[] = [];
  const closeAll = async () => {
    for (const close of closers.reverse()) await close().catch((error: unknown) => log(`cleanup: ${String(error)}`));
    await rm(dir, { recursive: true, force: true });
  };
  try {
    mkdirSync(path.join(dir, 'postgres'));
    mkdirSync(path.join(dir, 'redis'));
    const postgres = await startPostgresServer(path.join(dir, 'postgres'));
    closers.push(async () => {
      await postgres.stop();
      saveLog(config, path.join(dir, 'postgres/postgres.log'), 'postgres.log');
    });
    log(`PostgreSQL (${postgres.programs}) on 127.0.0.1:${postgres.port}`);
    const redis = await startRedisServer(path.join(dir, 'redis'));
    closers.push(async () => {
      await redis.stop();
      saveLog(config, path.join(dir, 'redis/redis.log'), 'redis.log');
    });
    log(`Redis with AOF persistence on ${redis.url}`);
    const postgresRelay = await startTcpRelay({ host: '127.0.0.1', port: postgres.port });
    closers.push(() => postgresRelay.close());
    const smtp = await startTestSmtpServer();
    closers.push(() => smtp.close());
    const smtpRelay = await startTcpRelay({ host: '127.0.0.1', port: smtp.port });
    closers.push(() => smtpRelay.close());

    const directUrl = `postgres://postgres@127.0.0.1:${postgres.port}/bank`;
    await ensureDatabase(directUrl);
    const db = await createDatabasePool(directUrl, { maximumPoolSize: 4 });
    closers.push(() => db.end());

    log('starting the stack as npm start does (migrations, then api, grpc, worker)');
    const stack = await startNpmStart({
      name: 'chaos',
      readyTimeoutMs: 120_000,
      env: {
        ...config.stackEnv,
        DATABASE_URL: `postgres://postgres@127.0.0.1:${postgresRelay.port}/bank`,
        REDIS_URL: redis.url,
        SMTP_URL: `smtp://127.0.0.1:${smtpRelay.port}`,
      },
    });
    closers.push(async () => {
      await stopGroup(stack);
      writeFileSync(path.join(ensureLogDir(config), `chaos-${config.profile}-stack.log`), stack.output());
      await stack.cleanUp();
    });

    const newest = (name: StackProcess) => stack.startedPids(name).at(-1);
    return {
      postgres,
      redis,
      postgresRelay,
      smtpRelay,
      smtp,
      stack,
      httpUrl: `http://127.0.0.1:${stack.ports.http}`,
      grpcAddress: `127.0.0.1:${stack.ports.grpc}`,
      db,
      kill(name) {
        const pid = newest(name);
        if (pid === undefined || !alive(pid)) throw new Error(`no running ${name} process to kill`);
        process.kill(pid, 'SIGKILL');
        return pid;
      },
      async restarted(name, pid, timeoutMs) {
        const found = await waitFor(async () => {
          const next = newest(name);
          return next !== undefined && next !== pid && alive(next);
        }, timeoutMs, 50);
        return found ? (newest(name) ?? null) : null;
      },
      readyUrl: (name) =>
        `http://127.0.0.1:${name === 'api' ? stack.ports.http : name === 'grpc' ? stack.ports.metrics : stack.ports.metrics + 1}/readyz`,
      close: closeAll,
    };
  } catch (error) {
    await closeAll();
    throw error;
  }
}

function ensureLogDir(config: ChaosConfig): string {
  mkdirSync(config.logDir, { recursive: true });
  return config.logDir;
}

function saveLog(config: ChaosConfig, file: string, name: string): void {
  if (existsSync(file)) copyFileSync(file, path.join(ensureLogDir(config), `chaos-${config.profile}-${name}`));
}

/** SIGTERM to `npm start`'s group (the supervisor stops its children in order), up to 20 s. */
async function stopGroup(stack: NpmStart): Promise<void> {
  const { child } = stack;
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    process.kill(-child.pid, 'SIGTERM');
  } catch {
    return;
  }
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([exited, new Promise((resolve) => (timer = setTimeout(resolve, 20_000)))]);
  clearTimeout(timer);
}
