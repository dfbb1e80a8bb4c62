import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { migrateUp } from '@bank/migrator/migrator';
import { createDatabasePool, type DatabasePool } from '@bank/shared/db/pool';
import { TEST_DATABASE_URL } from './services.ts';

export type TestDatabase = { name: string; url: string; pool: DatabasePool; drop: () => Promise<void> };

function withDatabase(url: string, name: string): string {
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.toString();
}

async function admin<T>(run: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: TEST_DATABASE_URL });
  await client.connect();
  try {
    return await run(client);
  } finally {
    await client.end();
  }
}

/** A fresh, empty database (no migrations) named for the suite, and a way to drop it. */
export async function createEmptyDatabase(prefix = 'bank_test'): Promise<{ name: string; url: string; drop: () => Promise<void> }> {
  const name = `${prefix}_${randomBytes(5).toString('hex')}`;
  await admin((client) => client.query(`CREATE DATABASE ${name}`));
  return {
    name,
    url: withDatabase(TEST_DATABASE_URL, name),
    drop: () => admin((client) => client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)).then(() => undefined),
  };
}

/** A fresh database with every migration applied and a Slonik pool on it. Each suite gets its own. */
export async function createTestDatabase(options: { poolSize?: number } = {}): Promise<TestDatabase> {
  const db = await createEmptyDatabase();
  await migrateUp(db.url);
  const pool = await createDatabasePool(db.url, { maximumPoolSize: options.poolSize ?? 10 });
  return {
    ...db,
    pool,
    drop: async () => {
      await pool.end();
      await db.drop();
    },
  };
}
