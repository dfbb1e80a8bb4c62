import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import type { Config } from '@bank/shared/config/config';
import { ensureAppRole, grantAppRole, type AppRoleOptions } from './app-role.ts';

/**
 * Applies ordered plain-SQL migrations. The migrator is the only thing that changes the schema.
 * It talks to PostgreSQL with node-postgres directly (not Slonik) because a migration file is a
 * multi-statement script and must go through the simple query protocol as it is written.
 */

export const DEFAULT_MIGRATIONS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../migrations');

/**
 * The part of the configuration the migrator reads. DATABASE_URL only as the fallback for local
 * development; in a cluster the migrator gets MIGRATION_DATABASE_URL and never the application's.
 */
export type MigratorConfig = Pick<Config, 'MIGRATION_DATABASE_URL' | 'DATABASE_URL' | 'APP_DATABASE_ROLE' | 'APP_DATABASE_PASSWORD'>;

/** APP_DATABASE_ROLE's default (config.schema.ts says the same). */
export const DEFAULT_APP_ROLE = 'bank_app';

/** Any 64-bit constant works as long as every migrator uses the same one (per database). */
const ADVISORY_LOCK_KEY = 7_381_264_901n;
const FILE_PATTERN = /^(\d{4})_([a-z0-9_]+)\.sql$/;

export type Migration = { version: string; name: string; checksum: string; sql: string; file: string };
export type MigrationState = Migration & { appliedAt: Date | null };

export class MigrationError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'MigrationError';
  }
}

export async function loadMigrations(dir = DEFAULT_MIGRATIONS_DIR): Promise<Migration[]> {
  const files = (await readdir(dir)).filter((file) => file.endsWith('.sql')).sort();
  const migrations: Migration[] = [];
  for (const file of files) {
    const match = FILE_PATTERN.exec(file);
    if (!match) throw new MigrationError(`migration file ${file} does not match NNNN_name.sql`);
    const sql = await readFile(path.join(dir, file), 'utf8');
    const [, version = '', name = ''] = match;
    if (migrations.some((m) => m.version === version)) throw new MigrationError(`two migrations share version ${version}`);
    migrations.push({ version, name, file, sql, checksum: createHash('sha256').update(sql).digest('hex') });
  }
  return migrations;
}

type Applied = { version: string; checksum: string; applied_at: Date };

async function ensureTable(client: pg.Client): Promise<void> {
  await client.query(`
    CREATE TABLE IF NOT EXISTS schema_migrations (
      version    text PRIMARY KEY,
      name       text NOT NULL,
      checksum   text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now()
    )`);
}

async function readApplied(client: pg.Client): Promise<Map<string, Applied>> {
  const exists = await client.query<{ present: boolean }>(`SELECT to_regclass('schema_migrations') IS NOT NULL AS present`);
  if (!exists.rows[0]?.present) return new Map();
  const result = await client.query<Applied>('SELECT version, checksum, applied_at FROM schema_migrations ORDER BY version');
  return new Map(result.rows.map((row) => [row.version, row]));
}

/** Refuses to go on when an applied migration's file changed or disappeared. */
function verify(migrations: readonly Migration[], applied: Map<string, Applied>): void {
  for (const [version, row] of applied) {
    const migration = migrations.find((m) => m.version === version);
    if (!migration) throw new MigrationError(`migration ${version} is applied but its file is missing`);
    if (migration.checksum !== row.checksum) {
      throw new MigrationError(`migration ${migration.file} was edited after it was applied (checksum mismatch); add a new migration instead`);
    }
  }
}

async function withClient<T>(databaseUrl: string, run: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: databaseUrl, application_name: 'bank-migrator' });
  try {
    await client.connect();
  } catch (error) {
    throw new MigrationError(`cannot connect to the database: ${(error as Error).message}`, { cause: error });
  }
  try {
    return await run(client);
  } finally {
    await client.end();
  }
}

export type UpResult = { applied: string[]; alreadyApplied: number };

/**
 * What `up` logs when the server runs without autovacuum: nothing then ANALYZEs the tables as they
 * grow, and every pooled connection keeps the plans it made on the statistics it found (on a new
 * database, empty tables: ledger_apply()'s batch UPDATE of idempotency_keys then read the whole
 * table on every batch, and transfers slowed by half within a minute of load; bench/edge/autovacuum.ts).
 */
export const AUTOVACUUM_OFF_WARNING =
  'warning: autovacuum is off on this server: nothing ANALYZEs the tables as they grow, and each connection keeps the plans it made on the statistics it found (on a new database, plans for empty tables); turn autovacuum on, or run ANALYZE regularly';

/**
 * Applies every pending migration, each in its own transaction, under a session advisory lock:
 * a second migrator of the same database waits for the first and then finds nothing left to do.
 * Then the application's role (`appRole`, by default `bank_app` without a password) is made if
 * missing and granted DML on what exists (app-role.ts), on every run, pending migrations or not.
 * `databaseUrl` is the owner's: MIGRATION_DATABASE_URL, the role that may create roles.
 */
export async function migrateUp(
  databaseUrl: string,
  options: { dir?: string; log?: (line: string) => void; appRole?: AppRoleOptions } = {},
): Promise<UpResult> {
  const migrations = await loadMigrations(options.dir);
  const log = options.log ?? (() => {});
  const appRole = options.appRole ?? { name: DEFAULT_APP_ROLE };
  return withClient(databaseUrl, async (client) => {
    await client.query('SELECT pg_advisory_lock($1)', [ADVISORY_LOCK_KEY.toString()]);
    try {
      await ensureTable(client);
      const applied = await readApplied(client);
      verify(migrations, applied);
      try {
        const { created } = await ensureAppRole(client, appRole);
        if (created) log(`created role ${appRole.name}`);
      } catch (error) {
        throw new MigrationError(`cannot set up the application role ${appRole.name}: ${(error as Error).message}`, { cause: error });
      }
      const done: string[] = [];
      for (const migration of migrations) {
        if (applied.has(migration.version)) continue;
        log(`applying ${migration.file}`);
        try {
          await client.query('BEGIN');
          await client.query(migration.sql);
          await client.query('INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)', [
            migration.version,
            migration.name,
            migration.checksum,
          ]);
          await client.query('COMMIT');
        } catch (error) {
          await client.query('ROLLBACK').catch(() => {});
          throw new MigrationError(`migration ${migration.file} failed: ${(error as Error).message}`, { cause: error });
        }
        done.push(migration.file);
      }
      try {
        await grantAppRole(client, appRole.name);
      } catch (error) {
        throw new MigrationError(`cannot grant to the application role ${appRole.name}: ${(error as Error).message}`, { cause: error });
      }
      const { rows } = await client.query<{ autovacuum: string }>('SHOW autovacuum');
      if (rows[0]?.autovacuum !== 'on') log(AUTOVACUUM_OFF_WARNING);
      return { applied: done, alreadyApplied: applied.size };
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [ADVISORY_LOCK_KEY.toString()]).catch(() => {});
    }
  });
}

/** Every known migration with the time it was applied, or null when pending. */
export async function migrationStatus(databaseUrl: string, options: { dir?: string } = {}): Promise<MigrationState[]> {
  const migrations = await loadMigrations(options.dir);
  return withClient(databaseUrl, async (client) => {
    const applied = await readApplied(client);
    verify(migrations, applied);
    return migrations.map((m) => ({ ...m, appliedAt: applied.get(m.version)?.applied_at ?? null }));
  });
}
