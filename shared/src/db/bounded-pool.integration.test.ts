// Bounded waits for a connection, on the real PostgreSQL: every connection of a small pool is
// held by a query blocked on an advisory lock the test holds, so who waits and who is refused is
// decided by counts alone.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { sql, type DatabasePool } from 'slonik';
import { z } from 'zod';
import { Overloaded } from '../errors/domain-error.ts';
import { createTestDatabase, type TestDatabase } from '../../../test/db.ts';
import { poolGate, priorityLane } from './bounded-pool.ts';
import { createDatabasePool } from './pool.ts';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase({ poolSize: 2 });
  await db.pool.query(sql.unsafe`CREATE TABLE shed_probe (label text NOT NULL)`);
});
afterAll(async () => {
  await db?.drop();
});

let nextKey = 1_000;

/** An advisory lock held by the test's own pool until released: queries that take it shared wait. */
async function holdLock(): Promise<{ key: number; release(): Promise<void> }> {
  const key = nextKey++;
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  let locked!: () => void;
  const isLocked = new Promise<void>((resolve) => (locked = resolve));
  const holder = db.pool.transaction(async (tx) => {
    await tx.query(sql.unsafe`SELECT pg_advisory_xact_lock(${key})`);
    locked();
    await released;
  });
  await isLocked;
  return {
    key,
    async release() {
      release();
      await holder;
    },
  };
}

const blocked = (pool: DatabasePool, key: number) => pool.query(sql.unsafe`SELECT pg_advisory_xact_lock_shared(${key})`);
const insert = (pool: DatabasePool, label: string) => pool.query(sql.unsafe`INSERT INTO shed_probe (label) VALUES (${label})`);
const labels = () => db.pool.anyFirst(sql.type(z.object({ label: z.string() }))`SELECT label FROM shed_probe ORDER BY label`);

describe('a pool with a queue limit', () => {
  it('lets `queueLimit` calls wait while every connection is busy, refuses the next with Overloaded before it runs, and serves again once freed', async () => {
    const pool = await createDatabasePool(db.url, { maximumPoolSize: 2, queueLimit: 1 });
    const lock = await holdLock();
    try {
      const holders = [blocked(pool, lock.key), blocked(pool, lock.key)];
      const waiting = insert(pool, 'waited');
      const refused = await insert(pool, 'refused').catch((error: unknown) => error);

      expect(refused).toBeInstanceOf(Overloaded);
      expect(refused).toMatchObject({ code: 'OVERLOADED' });
      expect(poolGate(pool)).toMatchObject({ inFlight: 2, waiting: 1, shed: { queue_full: 1, queue_timeout: 0 } });
      // The pool metrics read the callers waiting at the gate as waiting for a connection.
      expect(pool.state().waitingClients).toBe(1);

      await lock.release();
      await Promise.all([...holders, waiting]);
      await insert(pool, 'after');
      expect(await labels()).toEqual(['after', 'waited']);
      expect(poolGate(pool)).toMatchObject({ inFlight: 0, waiting: 0 });
    } finally {
      await db.pool.query(sql.unsafe`DELETE FROM shed_probe`);
      await pool.end();
    }
  });

  it('counts a transaction as one connection for as long as it is open', async () => {
    const pool = await createDatabasePool(db.url, { maximumPoolSize: 1, queueLimit: 0 });
    try {
      let finish!: () => void;
      const open = new Promise<void>((resolve) => (finish = resolve));
      const transaction = pool.transaction(async (tx) => {
        await tx.query(sql.unsafe`SELECT 1`);
        await open;
      });
      await expect(pool.query(sql.unsafe`SELECT 1`)).rejects.toBeInstanceOf(Overloaded);
      finish();
      await transaction;
      await expect(pool.oneFirst(sql.type(z.object({ n: z.number() }))`SELECT 1 AS n`)).resolves.toBe(1);
    } finally {
      await pool.end();
    }
  });

  it('refuses a call that waited `waitTimeoutMs` for a connection, and it never runs', async () => {
    const pool = await createDatabasePool(db.url, { maximumPoolSize: 1, queueLimit: 10, waitTimeoutMs: 50 });
    const lock = await holdLock();
    try {
      const holder = blocked(pool, lock.key);
      const timedOut = await insert(pool, 'timed out').catch((error: unknown) => error);
      expect(timedOut).toBeInstanceOf(Overloaded);
      expect((timedOut as Error).message).toMatch(/waited 50 ms/);
      expect(poolGate(pool)).toMatchObject({ inFlight: 1, waiting: 0, shed: { queue_full: 0, queue_timeout: 1 } });
      await lock.release();
      await holder;
      expect(await labels()).toEqual([]);
    } finally {
      await pool.end();
    }
  });

  it('serves the readiness lane first and never refuses it for a full queue', async () => {
    const pool = await createDatabasePool(db.url, { maximumPoolSize: 1, queueLimit: 1 });
    const lock = await holdLock();
    try {
      const holder = blocked(pool, lock.key);
      const order: string[] = [];
      const ordinary = insert(pool, 'ordinary').then(() => order.push('ordinary'));
      await expect(insert(pool, 'refused')).rejects.toBeInstanceOf(Overloaded);
      const probe = priorityLane(pool).oneFirst(sql.type(z.object({ ok: z.number() }))`SELECT 1 AS ok`).then(() => order.push('probe'));
      expect(poolGate(pool)?.waiting).toBe(2);
      await lock.release();
      await Promise.all([holder, ordinary, probe]);
      expect(order).toEqual(['probe', 'ordinary']);
    } finally {
      await db.pool.query(sql.unsafe`DELETE FROM shed_probe`);
      await pool.end();
    }
  });

  it('is the plain pool, unbounded, without a queue limit or wait timeout', async () => {
    const pool = await createDatabasePool(db.url, { maximumPoolSize: 1 });
    try {
      expect(poolGate(pool)).toBeUndefined();
      expect(priorityLane(pool)).toBe(pool);
    } finally {
      await pool.end();
    }
  });
});
