// The worker's ledger invariant check on the real PostgreSQL: it agrees with the tests' own
// checkLedgerInvariants on a sound ledger, publishes a zero per invariant, reads only recent rows
// after its first rounds, and counts what a corruption breaks, whole or recent.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Registry } from 'prom-client';
import { sql } from 'slonik';
import type { Actor } from '@bank/shared/auth/actor';
import { LedgerService } from '@bank/shared/ledger/ledger.service';
import { LEDGER_INVARIANTS, ledgerInvariantsRepository, WHOLE_LEDGER } from '@bank/shared/ledger/ledger-invariants.repository';
import { createLogger } from '@bank/shared/logging/logger';
import { checkLedgerInvariants } from '../../../test/ledger-invariants.ts';
import { createTestDatabase, type TestDatabase } from '../../../test/db.ts';
import { createUser, idemKey } from '../../../test/factories.ts';
import { startInvariantChecker, type InvariantChecker } from './invariant-checker.ts';
import { createWorkerMetrics } from './worker-metrics.ts';

// Long enough that no timer fires a round; the tests call check() themselves.
const NEVER = 3_600_000;
const silent = createLogger({ name: 'worker', level: 'silent', pretty: false });

let db: TestDatabase;
let ledger: LedgerService;
const checkers: InvariantChecker[] = [];

beforeAll(async () => {
  db = await createTestDatabase();
  ledger = new LedgerService({ pool: db.pool });
});

afterAll(async () => {
  for (const checker of checkers) await checker.stop();
  await db?.drop();
});

/** Money in every shape the ledger has: deposits, transfers, a captured and a voided hold, a refund. */
async function activity(): Promise<{ alice: Actor; from: bigint; to: bigint }> {
  const alice = await createUser(db.pool);
  const bob = await createUser(db.pool);
  const from = (await ledger.openAccount(alice, { currency: 'USD' })).id;
  const to = (await ledger.openAccount(bob, { currency: 'USD' })).id;
  await ledger.deposit(alice, { accountId: from, amount: 100_000n, idempotencyKey: idemKey() });
  const paid = await ledger.transfer(alice, { fromAccountId: from, toAccountId: to, amount: 2_500n, currency: 'USD', idempotencyKey: idemKey() });
  const held = await ledger.transfer(alice, { fromAccountId: from, toAccountId: to, amount: 5_000n, currency: 'USD', idempotencyKey: idemKey(), hold: { ttlSeconds: 3_600 } });
  await ledger.captureTransfer(alice, { transferId: held.transfer.id, amount: 4_000n, idempotencyKey: idemKey() });
  const voided = await ledger.transfer(alice, { fromAccountId: from, toAccountId: to, amount: 700n, currency: 'USD', idempotencyKey: idemKey(), hold: { ttlSeconds: 3_600 } });
  await ledger.voidTransfer(alice, { transferId: voided.transfer.id, idempotencyKey: idemKey() });
  await ledger.refundTransfer(bob, { transferId: paid.transfer.id, amount: 500n, idempotencyKey: idemKey() });
  return { alice, from, to };
}

const zeros = Object.fromEntries(LEDGER_INVARIANTS.map((invariant) => [invariant, 0]));

function checker() {
  const registry = new Registry();
  const metrics = createWorkerMetrics(registry, { collectQueue: async () => ({}), collectOutbox: async () => 0 });
  const started = startInvariantChecker({ pool: db.pool, intervalMs: NEVER, logger: silent, metrics });
  checkers.push(started);
  return { checker: started, registry };
}

describe('ledger invariant check', () => {
  it('finds no violation on a sound ledger, as the tests’ own invariant check', async () => {
    await activity();
    expect(await checkLedgerInvariants(db.pool)).toEqual([]);
    expect(await ledgerInvariantsRepository.countViolations(db.pool, WHOLE_LEDGER)).toEqual(zeros);
  });

  it('publishes a zero per invariant, the time of the check, and reads only recent rows from the third round', async () => {
    const { checker: started, registry } = checker();
    await started.check();
    await activity();
    await started.check();
    await activity();
    expect(await started.check()).toEqual(zeros);
    const text = await registry.metrics();
    for (const invariant of LEDGER_INVARIANTS) expect(text).toContain(`bank_ledger_invariant_violations{invariant="${invariant}"} 0`);
    expect(text).toMatch(/bank_ledger_invariant_check_duration_seconds\{scope="recent"\} \d/);
    expect(text).toMatch(/bank_ledger_invariant_check_timestamp_seconds \d/);
  });

  it('counts what a corrupted row breaks, in the whole ledger and among the rows written since a mark', async () => {
    const { to } = await activity();
    const mark = await ledgerInvariantsRepository.currentMarks(db.pool);
    // A stray entry on an existing transfer, with a balance_after that is nobody's running sum;
    // and a balance changed without any entry.
    await db.pool.query(sql.unsafe`
      INSERT INTO entries (account_id, transfer_id, amount, balance_after)
      SELECT ${to.toString()}::int8, max(id), 1, 424242 FROM transfers WHERE to_account_id = ${to.toString()}::int8`);
    const { from: other } = await activity();
    await db.pool.query(sql.unsafe`UPDATE accounts SET balance = balance + 7 WHERE id = ${other.toString()}::int8`);

    const recent = await ledgerInvariantsRepository.countViolations(db.pool, mark);
    const whole = await ledgerInvariantsRepository.countViolations(db.pool, WHOLE_LEDGER);
    for (const counts of [recent, whole]) {
      expect(counts).toMatchObject({
        currency_balances_sum_to_zero: 1,
        posted_transfer_has_two_entries: 1,
        balance_after_is_running_sum: 1,
        no_negative_user_balance: 0,
      });
    }
    // The whole-ledger form sums the entries: both accounts. The recent form compares each touched
    // account with its newest balance_after, which the stray entry set wrong and the update left behind.
    expect(whole.balance_equals_entries).toBe(2);
    expect(recent.balance_equals_entries).toBe(2);
  });
});
