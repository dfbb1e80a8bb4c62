import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { SchemaValidationError, sql } from 'slonik';
import { z } from 'zod';
import { createTestDatabase, type TestDatabase } from '../../../test/db.ts';
import { createDatabasePool, withApplicationName } from './pool.ts';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase({ poolSize: 2 });
});
afterAll(async () => {
  await db?.drop();
});

describe('createDatabasePool', () => {
  it('checks every typed row against its schema (a drifted column fails the query)', async () => {
    await expect(db.pool.one(sql.type(z.object({ n: z.string() }))`SELECT 1 AS n`)).rejects.toBeInstanceOf(SchemaValidationError);
    await expect(db.pool.one(sql.type(z.object({ n: z.number() }))`SELECT 1 AS n`)).resolves.toEqual({ n: 1 });
  });

  it('reads int8 as bigint (no precision lost past 2^53) and timestamptz as Date', async () => {
    const row = await db.pool.one(sql.type(z.object({ big: z.bigint(), at: z.date() }))`
      SELECT 9223372036854775807::int8 AS big, '2026-01-02T03:04:05.678Z'::timestamptz AS at`);
    expect(row.big).toBe(9_223_372_036_854_775_807n);
    expect(row.at.toISOString()).toBe('2026-01-02T03:04:05.678Z');
  });

  it('keeps serving after a failed query (the failure reaches the caller, not the event emitter)', async () => {
    await expect(db.pool.query(sql.unsafe`SELECT 1/0`)).rejects.toThrow(/division by zero/);
    await expect(db.pool.oneFirst(sql.type(z.object({ ok: z.boolean() }))`SELECT true AS ok`)).resolves.toBe(true);
  });

  it('names its connections to PostgreSQL (pg_stat_activity shows which process holds a backend)', async () => {
    const named = await createDatabasePool(db.url, { maximumPoolSize: 1, applicationName: 'bank-test-pool' });
    try {
      const name = await named.oneFirst(sql.type(z.object({ name: z.string() }))`SELECT application_name AS name FROM pg_stat_activity WHERE pid = pg_backend_pid()`);
      expect(name).toBe('bank-test-pool');
    } finally {
      await named.end();
    }
  });
});

describe('withApplicationName', () => {
  it('adds the name to a URL, keeping its other parameters, and leaves one that names itself alone', () => {
    expect(withApplicationName('postgres://u:p@db:5432/bank?sslmode=require', 'bank-api')).toBe('postgres://u:p@db:5432/bank?sslmode=require&application_name=bank-api');
    expect(withApplicationName('postgres://db/bank?application_name=ops', 'bank-api')).toBe('postgres://db/bank?application_name=ops');
    expect(withApplicationName('postgres://db/bank', undefined)).toBe('postgres://db/bank');
  });
});
