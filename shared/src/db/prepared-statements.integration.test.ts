import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { sql, type DatabasePool, type DatabasePoolConnection } from 'slonik';
import { z } from 'zod';
import { createEmptyDatabase } from '../../../test/db.ts';
import { createDatabasePool } from './pool.ts';
import { createPreparedStatementInterceptor } from './prepared-statements.ts';

let db: { url: string; drop: () => Promise<void> };
beforeAll(async () => {
  db = await createEmptyDatabase();
});
afterAll(async () => {
  await db?.drop();
});

const n = z.object({ n: z.number() });

/** The named statements of this connection's session, as PostgreSQL lists them (this read's own included). */
const prepared = (c: DatabasePoolConnection) =>
  c.any(sql.type(z.object({ name: z.string(), statement: z.string() }))`SELECT name, statement FROM pg_prepared_statements ORDER BY name`);

async function withPool<T>(options: Parameters<typeof createDatabasePool>[1], run: (pool: DatabasePool) => Promise<T>): Promise<T> {
  const pool = await createDatabasePool(db.url, { maximumPoolSize: 1, ...options });
  try {
    return await run(pool);
  } finally {
    await pool.end();
  }
}

describe('named prepared statements', () => {
  it('run each read and write text as one named statement per connection, each call with its own values', async () => {
    await withPool({}, (pool) =>
      pool.connect(async (c) => {
        const answers = [];
        for (const v of [1, 2, 3]) answers.push(await c.oneFirst(sql.type(n)`SELECT ${v}::int + 1 AS n`));
        expect(answers).toEqual([2, 3, 4]);
        const statements = await prepared(c);
        expect(statements.filter((s) => s.statement.includes('::int + 1'))).toEqual([{ name: expect.stringMatching(/^bank_\d+$/), statement: 'SELECT $1::int + 1 AS n' }]);
      }),
    );
  });

  it('leave other statements (SHOW, DDL) unnamed, and name nothing when turned off', async () => {
    await withPool({}, (pool) =>
      pool.connect(async (c) => {
        await c.query(sql.unsafe`SHOW work_mem`);
        await c.query(sql.unsafe`CREATE TEMP TABLE zz_scratch (a int)`);
        expect((await prepared(c)).map((s) => s.statement).filter((s) => !s.includes('pg_prepared_statements'))).toEqual([]);
      }),
    );
    await withPool({ preparedStatements: false }, (pool) =>
      pool.connect(async (c) => {
        await c.oneFirst(sql.type(n)`SELECT ${1}::int AS n`);
        expect(await prepared(c)).toEqual([]);
      }),
    );
  });

  it('name at most `max` texts per pool; the rest run unnamed and answer the same', async () => {
    const interceptor = createPreparedStatementInterceptor({ max: 3 });
    await withPool({ preparedStatements: false, interceptors: [interceptor] }, (pool) =>
      pool.connect(async (c) => {
        const answers = [];
        for (let i = 0; i < 6; i++) answers.push(await c.oneFirst(sql.type(n)`SELECT ${i}::int AS n, ${sql.literalValue(`text ${i}`)} AS t`));
        expect(answers).toEqual([0, 1, 2, 3, 4, 5]);
        expect(interceptor.stats()).toEqual({ named: 3, unnamed: 0 });
        // The listing itself is a text past the cap: it runs unnamed too.
        expect((await prepared(c)).map((s) => s.statement.replace(/\s+/g, ' '))).toEqual([0, 1, 2].map((i) => `SELECT $1::int AS n, 'text ${i}' AS t`));
      }),
    );
  });

  it("recover from a result type that changed under a named statement: one call fails, the next ones run unnamed", async () => {
    const interceptor = createPreparedStatementInterceptor();
    await withPool({ preparedStatements: false, interceptors: [interceptor] }, async (pool) => {
      await pool.query(sql.unsafe`CREATE TABLE zz_changing (a int)`);
      await pool.query(sql.unsafe`INSERT INTO zz_changing VALUES (1)`);
      const read = () => pool.one(sql.unsafe`SELECT * FROM zz_changing WHERE a = ${1}`);
      await expect(read()).resolves.toEqual({ a: 1 });
      await pool.query(sql.unsafe`ALTER TABLE zz_changing ADD COLUMN b int DEFAULT 7`);
      await expect(read()).rejects.toThrow(/cached plan must not change result type/);
      expect(interceptor.stats()).toEqual({ named: 1, unnamed: 1 });
      await expect(read()).resolves.toEqual({ a: 1, b: 7 });
      await expect(read()).resolves.toEqual({ a: 1, b: 7 });
    });
  });
});
