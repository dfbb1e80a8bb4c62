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

/** A pool that counts the statements it sends, by kind (see createCountingPool). */
export type CountingPool<K extends string> = { pool: DatabasePool; counts: Record<K, number>; reset: () => void };

/**
 * A pool of its own on `url` that counts the statements it sends matching each named pattern (a
 * substring of the SQL or a RegExp over it): for tests that show a call costs fewer statements
 * than it has items. `counts` holds the numbers so far; `reset()` sets them back to zero. The
 * caller ends the pool.
 */
export async function createCountingPool<K extends string>(
  url: string,
  patterns: Record<K, string | RegExp>,
  options: { maximumPoolSize?: number } = {},
): Promise<CountingPool<K>> {
  const entries = Object.entries(patterns) as [K, string | RegExp][];
  const counts = Object.fromEntries(entries.map(([name]) => [name, 0])) as Record<K, number>;
  const pool = await createDatabasePool(url, {
    maximumPoolSize: options.maximumPoolSize ?? 4,
    interceptors: [
      {
        name: 'count-statements',
        beforeQueryExecution: (_context, query) => {
          for (const [name, pattern] of entries) if (typeof pattern === 'string' ? query.sql.includes(pattern) : pattern.test(query.sql)) counts[name] += 1;
          return null;
        },
      },
    ],
  });
  return { pool, counts, reset: () => entries.forEach(([name]) => (counts[name] = 0)) };
}
