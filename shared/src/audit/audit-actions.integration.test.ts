// The actions the database accepts in audit_events and the ones the code can read must be the same
// list: an action written by SQL (ledger_apply() writes account_credited and transfer_reversed)
// but missing from AUDIT_ACTIONS made every later page of GET /v1/audit-events fail.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { sql } from 'slonik';
import { z } from 'zod';
import { createTestDatabase, type TestDatabase } from '../../../test/db.ts';
import { AUDIT_ACTIONS } from './audit.types.ts';

let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db?.drop();
});

describe('audit actions', () => {
  it('are exactly the actions the CHECK of audit_events.action allows', async () => {
    const definition = await db.pool.oneFirst(sql.type(z.object({ definition: z.string() }))`
      SELECT pg_get_constraintdef(oid) AS definition FROM pg_constraint WHERE conname = 'audit_events_action_known'`);
    const allowed = [...definition.matchAll(/'([a-z_]+)'::text/g)].map((m) => m[1]).sort();
    expect(allowed.length).toBeGreaterThan(0);
    expect(allowed).toEqual([...AUDIT_ACTIONS].sort());
  });
});
