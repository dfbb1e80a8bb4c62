// The worker's event pruner against the real PostgreSQL: off with EVENTS_RETENTION_DAYS=0; else a
// round at start deletes what is past the retention, logged and counted.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Counter, Registry } from 'prom-client';
import { sql } from 'slonik';
import { z } from 'zod';
import { LedgerService } from '@bank/shared/ledger/ledger.service';
import { createLogger } from '@bank/shared/logging/logger';
import { createTestDatabase, type TestDatabase } from '../../../test/db.ts';
import { createUser, idemKey } from '../../../test/factories.ts';
import { startEventPruner } from './event-pruner.ts';

let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db?.drop();
});

type LogLine = { msg: string; [key: string]: unknown };

describe('event pruner', () => {
  it('is off when the retention is 0 days, and otherwise prunes at start, logged and counted', async () => {
    const lines: LogLine[] = [];
    const logger = createLogger({ name: 'worker', level: 'debug', pretty: false, destination: { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) } });
    expect(startEventPruner({ pool: db.pool, retentionDays: 0, intervalMs: 60_000, batchSize: 10, logger })).toBeUndefined();

    const ledger = new LedgerService({ pool: db.pool });
    const alice = await createUser(db.pool);
    const account = await ledger.openAccount(alice, { currency: 'USD' });
    for (let i = 0; i < 3; i++) await ledger.deposit(alice, { accountId: account.id, amount: 10n, idempotencyKey: idemKey() });
    await db.pool.query(sql.unsafe`UPDATE events SET created_at = now() - interval '8 days', notified_at = now(), webhooked_at = now()`);

    const registry = new Registry();
    const metrics = {
      eventsPruned: new Counter({ name: 'pruned', help: 'pruned', registers: [registry] }),
      eventPruneFailures: new Counter({ name: 'failures', help: 'failures', registers: [registry] }),
    };
    const pruner = startEventPruner({ pool: db.pool, retentionDays: 7, intervalMs: 60_000, batchSize: 2, logger, metrics });
    expect(pruner).toBeDefined();
    expect(await pruner?.sweep()).toBe(0);
    await pruner?.stop();
    const left = await db.pool.oneFirst(sql.type(z.object({ n: z.number() }))`SELECT count(*)::int AS n FROM events`);
    expect(left).toBe(0);
    // The round at start took all three, two per statement.
    expect(lines.filter((line) => line.msg === 'events pruned').map((line) => [line.pruned, line.batches])).toEqual([[3, 2]]);
    expect((await metrics.eventsPruned.get()).values[0]?.value).toBe(3);
    expect(lines.find((line) => line.msg === 'event pruner started')).toMatchObject({ retentionDays: 7, batchSize: 2 });
  });
});
