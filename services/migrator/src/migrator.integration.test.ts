import { cp, mkdtemp, appendFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import pg from 'pg';
import { createEmptyDatabase } from '../../../test/db.ts';
import { AUTOVACUUM_OFF_WARNING, DEFAULT_MIGRATIONS_DIR, loadMigrations, migrateUp, migrationStatus } from './migrator.ts';

const run = promisify(execFile);
const MAIN = path.resolve(import.meta.dirname, 'main.ts');

async function query<T extends pg.QueryResultRow>(url: string, text: string): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(text)).rows;
  } finally {
    await client.end();
  }
}

describe('migrator', () => {
  const dbs: Array<() => Promise<void>> = [];
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'bank-migrations-'));
  });
  afterAll(async () => {
    await Promise.all(dbs.map((drop) => drop()));
    await rm(dir, { recursive: true, force: true });
  });

  async function freshDb() {
    const db = await createEmptyDatabase('bank_migr');
    dbs.push(db.drop);
    return db;
  }

  it('applies every migration to a fresh database, then is a no-op', async () => {
    const db = await freshDb();
    const all = await loadMigrations();
    const first = await migrateUp(db.url);
    expect(first.applied).toEqual(all.map((m) => m.file));
    const second = await migrateUp(db.url);
    expect(second).toEqual({ applied: [], alreadyApplied: all.length });
    const status = await migrationStatus(db.url);
    expect(status.every((m) => m.appliedAt instanceof Date)).toBe(true);
    const tables = await query<{ table_name: string }>(
      db.url,
      `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name`,
    );
    expect(tables.map((t) => t.table_name)).toEqual(
      expect.arrayContaining(['users', 'accounts', 'transfers', 'entries', 'sessions', 'outbox', 'idempotency_keys', 'email_verifications', 'login_challenges', 'schema_migrations']),
    );
    const system = await query<{ currency: string }>(db.url, `SELECT currency FROM accounts WHERE is_system ORDER BY id`);
    expect(system.length).toBeGreaterThanOrEqual(3);
  });

  it('warns in its log, on every run, when the server runs with autovacuum off (and only then)', async () => {
    const db = await freshDb();
    const lines: string[] = [];
    await migrateUp(db.url, { log: (line) => lines.push(line) });
    await migrateUp(db.url, { log: (line) => lines.push(line) });
    const [setting] = await query<{ autovacuum: string }>(db.url, 'SHOW autovacuum');
    // The server decides which branch runs here (this machine's PostgreSQL runs with it off).
    expect(lines.filter((line) => line === AUTOVACUUM_OFF_WARNING)).toHaveLength(setting?.autovacuum === 'on' ? 0 : 2);
  });

  it('lets two concurrent runs finish without error, applying each migration once', async () => {
    const db = await freshDb();
    const [a, b] = await Promise.all([migrateUp(db.url), migrateUp(db.url)]);
    const total = (await loadMigrations()).length;
    expect(a.applied.length + b.applied.length).toBe(total);
    expect([a.applied.length, b.applied.length].sort()).toEqual([0, total]);
    const rows = await query<{ n: string }>(db.url, 'SELECT count(*) AS n FROM schema_migrations');
    expect(Number(rows[0]?.n)).toBe(total);
  });

  it('refuses to run when an applied migration was edited', async () => {
    const db = await freshDb();
    const copy = path.join(dir, 'edited');
    await cp(DEFAULT_MIGRATIONS_DIR, copy, { recursive: true });
    await migrateUp(db.url, { dir: copy });
    await appendFile(path.join(copy, '0001_core_schema.sql'), '\n-- sneaky edit\n');
    await expect(migrateUp(db.url, { dir: copy })).rejects.toThrow(/0001_core_schema\.sql was edited after it was applied/);
    await expect(migrationStatus(db.url, { dir: copy })).rejects.toThrow(/checksum mismatch/);
  });

  it('rolls back a failing migration and reports it', async () => {
    const db = await freshDb();
    const copy = path.join(dir, 'failing');
    await cp(DEFAULT_MIGRATIONS_DIR, copy, { recursive: true });
    await appendFile(path.join(copy, '9999_broken.sql'), 'CREATE TABLE broken_one (id int);\nSELECT no_such_function();\n');
    await expect(migrateUp(db.url, { dir: copy })).rejects.toThrow(/9999_broken\.sql failed: .*no_such_function/);
    const rows = await query<{ present: boolean }>(db.url, `SELECT to_regclass('broken_one') IS NOT NULL AS present`);
    expect(rows[0]?.present).toBe(false);
  });

  it('CLI: up, status, and a one-line reason with a non-zero exit on failure', async () => {
    const db = await freshDb();
    const env = { ...process.env, DATABASE_URL: db.url, AWS_SECRETS_MANAGER_SECRET_ID: '' };
    const node = process.execPath;
    const up = await run(node, [MAIN, 'up'], { env });
    expect(up.stdout).toMatch(/applied \d+ migration/);
    const again = await run(node, [MAIN, 'up'], { env });
    expect(again.stdout).toMatch(/up to date/);
    const status = await run(node, [MAIN, 'status'], { env });
    expect(status.stdout).toMatch(/^applied {2}0001_core_schema\.sql/m);
    const bad = run(node, [MAIN, 'up'], { env: { ...env, DATABASE_URL: 'postgres://postgres@127.0.0.1:1/nope' } });
    await expect(bad).rejects.toMatchObject({ code: 1, stderr: expect.stringMatching(/^migrator: cannot connect to the database/) });
    const unknown = run(node, [MAIN, 'sideways'], { env });
    await expect(unknown).rejects.toMatchObject({ code: 2 });
  });
});
