import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync, rmSync } from 'node:fs';
import path from 'node:path';
import { freePort, isListening, waitFor } from '@bank/dev-tools/start/ports';

/**
 * A private Redis for the chaos suite, with AOF persistence (fsync on every write), so that a
 * restart keeps the queue as a managed Redis with persistence would; `restartEmpty()` is the other
 * kind of restart, a cache without persistence or a failover to an empty node: every job is gone.
 */
export type RedisServer = {
  readonly url: string;
  /** SIGTERM (Redis writes its AOF and exits), down for `downMs`, started again on the same data. */
  restart(downMs: number): Promise<void>;
  /** SIGKILL, its data folder emptied, down for `downMs`, started again with nothing in it. */
  restartEmpty(downMs: number): Promise<void>;
  stop(): Promise<void>;
};

export async function startRedisServer(dir: string): Promise<RedisServer> {
  const which = spawnSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' });
  const program = which.status === 0 ? which.stdout.trim() : '';
  if (!program) throw new Error('chaos needs redis-server (apt-get install redis-server)');
  const data = path.join(dir, 'data');
  const port = await freePort();
  let child: ChildProcess | null = null;

  const start = async () => {
    mkdirSync(data, { recursive: true });
    const log = openSync(path.join(dir, 'redis.log'), 'a');
    child = spawn(
      program,
      ['--port', String(port), '--bind', '127.0.0.1', '--dir', data, '--appendonly', 'yes', '--appendfsync', 'always', '--save', '', '--daemonize', 'no'],
      { stdio: ['ignore', log, log], detached: true },
    );
    closeSync(log);
    const started = child;
    if (!(await waitFor(async () => started.exitCode !== null || (await isListening('127.0.0.1', port, 300)), 15_000, 50)) || started.exitCode !== null) {
      throw new Error(`the private Redis did not start (see ${path.join(dir, 'redis.log')})`);
    }
  };
  const stop = async (signal: NodeJS.Signals) => {
    const running = child;
    if (!running || running.exitCode !== null || running.signalCode !== null) return;
    const done = new Promise<void>((resolve) => running.once('exit', () => resolve()));
    running.kill(signal);
    await done;
  };
  const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

  await start();
  return {
    url: `redis://127.0.0.1:${port}`,
    async restart(downMs) {
      await stop('SIGTERM');
      await pause(downMs);
      await start();
    },
    async restartEmpty(downMs) {
      await stop('SIGKILL');
      rmSync(data, { recursive: true, force: true });
      await pause(downMs);
      await start();
    },
    stop: () => stop('SIGTERM'),
  };
}
