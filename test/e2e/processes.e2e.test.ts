// The real entry points under plain Node (type stripping, no Jest transform): they start, serve,
// and on SIGTERM stop accepting, finish, close their pools and exit 0.
import { spawn, type ChildProcess } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { generatePasetoKeyPair } from '@bank/shared/auth/token-maker';
import { createTestDatabase, type TestDatabase } from '../db.ts';
import { TEST_REDIS_URL } from '../services.ts';

const root = path.resolve(import.meta.dirname, '../..');
let db: TestDatabase;
let env: NodeJS.ProcessEnv;

beforeAll(async () => {
  db = await createTestDatabase({ poolSize: 1 });
  const keys = await generatePasetoKeyPair();
  env = {
    PATH: process.env.PATH,
    NODE_ENV: 'test',
    LOG_LEVEL: 'info',
    DATABASE_URL: db.url,
    REDIS_URL: TEST_REDIS_URL,
    HTTP_PORT: '0',
    GRPC_PORT: '0',
    METRICS_PORT: '0',
    PASETO_SECRET_KEY: keys.secretKey,
    SHUTDOWN_TIMEOUT_MS: '3000',
    EMAIL_QUEUE_NAME: `bank-email-proc-${Date.now()}`,
  };
});
afterAll(async () => {
  await db?.drop();
});

/** Starts `node <entry>` and resolves with the first log line that has the given message. */
function start(entry: string, message: string): Promise<{ child: ChildProcess; line: Record<string, unknown>; output: () => string }> {
  const child = spawn(process.execPath, ['--disable-warning=ExperimentalWarning', entry], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${entry} did not log "${message}":\n${output}`)), 20_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      for (const text of output.split('\n')) {
        if (!text.startsWith('{')) continue;
        const line = JSON.parse(text) as Record<string, unknown>;
        if (line.msg === message) {
          clearTimeout(timer);
          child.stdout?.off('data', onData);
          child.stdout?.on('data', (more: Buffer) => (output += more.toString()));
          resolve({ child, line, output: () => output });
          return;
        }
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${entry} exited with ${code}:\n${output}`));
    });
  });
}

/** Each thread of a process with its name and nice value (/proc/<pid>/task/<tid>/stat: the 19th field). */
async function threadPriorities(pid: number): Promise<{ tid: number; name: string; nice: number }[]> {
  const threads = [];
  for (const tid of await readdir(`/proc/${pid}/task`)) {
    const stat = await readFile(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    threads.push({ tid: Number(tid), name: stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')), nice: Number(fields[16]) });
  }
  return threads;
}

const exitOf = (child: ChildProcess) => new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));

describe('entry points', () => {
  it('services/api/src/main.ts serves and exits 0 on SIGTERM', async () => {
    const { child, line, output } = await start('services/api/src/main.ts', 'HTTP API listening');
    const port = Number(line.port);
    expect((await fetch(`http://127.0.0.1:${port}/readyz`)).status).toBe(200);
    // bcrypt's thread pool yields the CPU to request serving (THREAD_POOL_NICE, 10 by default).
    const threads = await threadPriorities(child.pid!);
    const pool = threads.filter((t) => t.name === 'libuv-worker');
    expect(pool.length).toBeGreaterThanOrEqual(1);
    expect(new Set(pool.map((t) => t.nice))).toEqual(new Set([10]));
    expect(threads.find((t) => t.tid === child.pid)?.nice).toBe(0); // the event loop's thread
    const exited = exitOf(child);
    const started = Date.now();
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(Date.now() - started).toBeLessThan(4_000);
    expect(output()).toContain('HTTP API stopped');
  });

  it('services/grpc/src/main.ts serves and exits 0 on SIGTERM', async () => {
    const { child, line, output } = await start('services/grpc/src/main.ts', 'gRPC server listening');
    expect((await fetch(`http://127.0.0.1:${Number(line.metricsPort)}/healthz`)).status).toBe(200);
    const exited = exitOf(child);
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(output()).toContain('gRPC server stopped');
  });

  it('services/worker/src/main.ts serves its health port and exits 0 on SIGTERM, even when signalled twice', async () => {
    const { child, line, output } = await start('services/worker/src/main.ts', 'worker started');
    expect((await fetch(`http://127.0.0.1:${Number(line.metricsPort)}/readyz`)).status).toBe(200);
    const exited = exitOf(child);
    child.kill('SIGTERM');
    child.kill('SIGINT');
    expect(await exited).toBe(0);
    expect(output()).toContain('"msg":"stopped"');
  });

  it.each(['services/api/src/main.ts', 'services/grpc/src/main.ts', 'services/worker/src/main.ts'])(
    '%s refuses to start on an invalid environment, naming every bad variable in one line',
    async (entry) => {
      const child = spawn(process.execPath, ['--disable-warning=ExperimentalWarning', entry], {
        cwd: root,
        env: { ...env, HTTP_PORT: 'eighty', DATABASE_URL: 'mysql://nope', BCRYPT_COST: '99' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stderr = '';
      child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      expect(await exitOf(child)).toBe(1);
      const lines = stderr.trim().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/^(api|grpc|worker): invalid configuration: /);
      for (const name of ['HTTP_PORT', 'DATABASE_URL', 'BCRYPT_COST']) expect(lines[0]).toContain(name);
      expect(lines[0]).not.toContain('mysql://nope');
    },
  );
});
