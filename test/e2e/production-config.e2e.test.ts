// With NODE_ENV=production no process runs on a development default: each real entry point refuses
// to start, listing in one line every setting it reads that is missing or unsafe (never a value),
// and starts once every one is given.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { generatePasetoKeyPair } from '@bank/shared/auth/token-maker';
import { createTestDatabase, type TestDatabase } from '../db.ts';
import { TEST_REDIS_URL } from '../services.ts';

const root = path.resolve(import.meta.dirname, '../..');
let db: TestDatabase;
let complete: NodeJS.ProcessEnv;

beforeAll(async () => {
  db = await createTestDatabase({ poolSize: 1 });
  const keys = await generatePasetoKeyPair();
  complete = {
    PATH: process.env.PATH,
    NODE_ENV: 'production',
    LOG_LEVEL: 'info',
    DATABASE_URL: db.url,
    MIGRATION_DATABASE_URL: db.url,
    REDIS_URL: TEST_REDIS_URL,
    SMTP_URL: 'smtp://127.0.0.1:1',
    MAIL_FROM: 'Bank <no-reply@bank.example.com>',
    PUBLIC_BASE_URL: 'https://bank.example.com',
    PASETO_SECRET_KEY: keys.secretKey,
    HTTP_PORT: '0',
    GRPC_PORT: '0',
    METRICS_PORT: '0',
    SHUTDOWN_TIMEOUT_MS: '3000',
    EMAIL_QUEUE_NAME: `bank-email-prod-${Date.now()}`,
  };
});
afterAll(async () => {
  await db?.drop();
});

type Run = { child: ChildProcess; exited: Promise<number | null>; output: () => string };

function run(entry: string, args: string[], env: NodeJS.ProcessEnv): Run {
  const child = spawn(process.execPath, ['--disable-warning=ExperimentalWarning', entry, ...args], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  return { child, exited: new Promise((resolve) => child.once('exit', (code) => resolve(code))), output: () => output };
}

async function until(started: Run, text: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!started.output().includes(text)) {
    if (started.child.exitCode !== null) throw new Error(`exited with ${started.child.exitCode}:\n${started.output()}`);
    if (Date.now() > deadline) throw new Error(`no "${text}" in:\n${started.output()}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

const ENTRIES = [
  { name: 'api', entry: 'services/api/src/main.ts', args: [], missing: ['DATABASE_URL', 'REDIS_URL', 'PASETO_SECRET_KEY'] },
  { name: 'grpc', entry: 'services/grpc/src/main.ts', args: [], missing: ['DATABASE_URL', 'REDIS_URL', 'PASETO_SECRET_KEY'] },
  { name: 'worker', entry: 'services/worker/src/main.ts', args: [], missing: ['DATABASE_URL', 'REDIS_URL', 'SMTP_URL', 'MAIL_FROM', 'PUBLIC_BASE_URL'] },
  { name: 'migrator', entry: 'services/migrator/src/main.ts', args: ['status'], missing: ['MIGRATION_DATABASE_URL'] },
  { name: 'admin', entry: 'scripts/ops/src/admin.ts', args: ['grant-role', 'nobody', 'banker'], missing: ['DATABASE_URL', 'REDIS_URL'] },
] as const;
const EVERY_KEY = ['DATABASE_URL', 'MIGRATION_DATABASE_URL', 'REDIS_URL', 'SMTP_URL', 'MAIL_FROM', 'PUBLIC_BASE_URL', 'PASETO_SECRET_KEY'];

describe('NODE_ENV=production', () => {
  it.each(ENTRIES)('$name refuses to start on development defaults, listing every setting it reads that is missing', async ({ name, entry, args, missing }) => {
    const started = run(entry, [...args], { PATH: process.env.PATH, NODE_ENV: 'production' });
    expect(await started.exited).toBe(1);
    const lines = started.output().trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(new RegExp(`^${name}: invalid configuration: `));
    for (const key of missing) expect(lines[0]).toContain(`${key}: must be set in production`);
    // Only what this process reads.
    for (const key of EVERY_KEY.filter((key) => !(missing as readonly string[]).includes(key))) expect(lines[0]).not.toMatch(new RegExp(`(^|[ ;])${key}:`));
  });

  it('the worker refuses an http or localhost PUBLIC_BASE_URL and the development defaults given explicitly, with the schema problems in the same line, naming no value', async () => {
    const started = run('services/worker/src/main.ts', [], {
      ...complete,
      PUBLIC_BASE_URL: 'http://bank.example.com',
      SMTP_URL: 'smtp://127.0.0.1:1025',
      MAIL_FROM: 'Bank <no-reply@bank.local>',
      WORKER_CONCURRENCY: 'many',
    });
    expect(await started.exited).toBe(1);
    const line = started.output().trim();
    expect(line).toContain('PUBLIC_BASE_URL: must be an https:// URL');
    expect(line).toContain('SMTP_URL: is the development default');
    expect(line).toContain('MAIL_FROM: is the development default');
    expect(line).toContain('WORKER_CONCURRENCY');
    expect(line).not.toContain('bank.example.com');
    expect(line).not.toContain('1025');
    const local = run('services/worker/src/main.ts', [], { ...complete, PUBLIC_BASE_URL: 'https://localhost:8443' });
    expect(await local.exited).toBe(1);
    expect(local.output()).toContain('PUBLIC_BASE_URL: must not point at this machine');
  });

  it('the migrator never falls back to DATABASE_URL in production', async () => {
    const started = run('services/migrator/src/main.ts', ['status'], { ...complete, MIGRATION_DATABASE_URL: '' });
    expect(await started.exited).toBe(1);
    expect(started.output()).toContain('MIGRATION_DATABASE_URL: must be set in production');
  });

  it.each([
    { entry: 'services/api/src/main.ts', ready: 'HTTP API listening' },
    { entry: 'services/grpc/src/main.ts', ready: 'gRPC server listening' },
    { entry: 'services/worker/src/main.ts', ready: 'worker started' },
  ])('$entry starts with a complete production configuration', async ({ entry, ready }) => {
    const started = run(entry, [], complete);
    await until(started, ready);
    started.child.kill('SIGTERM');
    expect(await started.exited).toBe(0);
  });

  it('the migrator and the admin command run with a complete production configuration', async () => {
    const migrator = run('services/migrator/src/main.ts', ['status'], complete);
    expect(await migrator.exited).toBe(0);
    const admin = run('scripts/ops/src/admin.ts', ['grant-role', `nobody${Date.now()}`, 'banker'], complete);
    expect(await admin.exited).toBe(3);
    expect(admin.output()).toContain('not found');
  });
});
