// A concurrent storm of transfers over HTTP, both directions between pairs of users, then the
// DESIGN.md invariants and zero new deadlocks.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { AccountService } from '@bank/proto/bank/v1/account_service_pb';
import { RestError } from '@bank/proto/bank/v1/rest_client';
import { runConcurrently } from '../concurrency.ts';
import { idemKey } from '../factories.ts';
import { checkLedgerInvariants, deadlockCount } from '../ledger-invariants.ts';
import { signUpAndLogIn } from './flows.ts';
import { startStack, type Stack } from './harness.ts';
import { httpTransport } from './transports.ts';

const TRANSFERS = 1_200;
const CONCURRENCY = 32;
const PAIRS = 3;

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ poolSize: 20 });
});
afterAll(async () => {
  await stack?.stop();
});

describe('HTTP transfer storm', () => {
  it(`${TRANSFERS} transfers at concurrency ${CONCURRENCY}, A->B and B->A for ${PAIRS} pairs: invariants hold, no deadlocks`, async () => {
    const t = httpTransport(stack.api.url);
    const users = await Promise.all(Array.from({ length: PAIRS * 2 }, () => signUpAndLogIn(t, stack.smtp)));
    const accounts = await Promise.all(
      users.map(async (u) => {
        const account = await t.call(AccountService, 'openAccount', { currency: 'GBP' }, { token: u.accessToken });
        await t.call(AccountService, 'deposit', { accountId: account.id, amount: 50_000n, idempotencyKey: idemKey() }, { token: u.accessToken });
        return { user: u, id: account.id };
      }),
    );
    const deadlocksBefore = await deadlockCount(stack.db.pool);
    const acknowledged: bigint[] = [];
    let insufficient = 0;
    const started = performance.now();
    const results = await runConcurrently(TRANSFERS, CONCURRENCY, async (i) => {
      const pair = i % PAIRS;
      const forward = Math.floor(i / PAIRS) % 2 === 0;
      const from = accounts[pair * 2 + (forward ? 0 : 1)]!;
      const to = accounts[pair * 2 + (forward ? 1 : 0)]!;
      try {
        const result = await t.client.transfer.createTransfer(
          { fromAccountId: from.id, toAccountId: to.id, amount: BigInt(1 + (i % 97)), currency: 'GBP' },
          { accessToken: from.user.accessToken, idempotencyKey: `storm-${i}-${idemKey()}` },
        );
        acknowledged.push(result.transfer!.id);
      } catch (error) {
        if (error instanceof RestError && error.code === 'INSUFFICIENT_FUNDS') insufficient++;
        else throw error;
      }
    });
    const seconds = (performance.now() - started) / 1_000;
    const failures = results.filter((r) => r.status === 'rejected');
    expect(failures.map((f) => String((f as PromiseRejectedResult).reason))).toEqual([]);
    expect(acknowledged.length + insufficient).toBe(TRANSFERS);
    expect(acknowledged.length).toBeGreaterThanOrEqual(TRANSFERS * 0.9);
    console.log(`storm: ${acknowledged.length} transfers acknowledged (${insufficient} insufficient funds) in ${seconds.toFixed(1)} s = ${(TRANSFERS / seconds).toFixed(0)} req/s`);

    expect(await checkLedgerInvariants(stack.db.pool, { acknowledged })).toEqual([]);
    // Backends flush their statistics at most once a second; wait so a deadlock would be counted.
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect(await deadlockCount(stack.db.pool)).toBe(deadlocksBefore);
    // Money is conserved among the storm accounts: each got 50 000 and nothing left the group.
    const balances = await Promise.all(accounts.map((a) => t.call(AccountService, 'getAccount', { accountId: a.id }, { token: a.user.accessToken })));
    expect(balances.reduce((sum, a) => sum + a.balance, 0n)).toBe(50_000n * BigInt(PAIRS * 2));
  }, 240_000);
});
