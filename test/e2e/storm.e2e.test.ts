// Concurrent storms of transfers, both directions between users, over HTTP and over both edges at
// once (each server has its own pool and group-commit batcher), then the DESIGN.md invariants and
// zero new deadlocks.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { AccountService } from '@bank/proto/bank/v1/account_service_pb';
import { TransferService } from '@bank/proto/bank/v1/transfer_service_pb';
import { RestError } from '@bank/proto/bank/v1/rest_client';
import { runConcurrently } from '../concurrency.ts';
import { idemKey } from '../factories.ts';
import { checkLedgerInvariants, deadlockCount } from '../ledger-invariants.ts';
import { signUpAndLogIn } from './flows.ts';
import { startStack, type Stack } from './harness.ts';
import { grpcTransport, httpTransport, type Transport } from './transports.ts';

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

  it('HTTP and gRPC at once (two servers, two batchers, two pools), with the same key sent to both: one movement per key, invariants hold, no deadlocks', async () => {
    const http = httpTransport(stack.api.url);
    const grpcT = grpcTransport(stack.grpc.address);
    try {
      const users = await Promise.all(Array.from({ length: 4 }, () => signUpAndLogIn(http, stack.smtp)));
      const accounts = await Promise.all(
        users.map(async (u) => {
          const account = await http.call(AccountService, 'openAccount', { currency: 'CHF' }, { token: u.accessToken });
          await http.call(AccountService, 'deposit', { accountId: account.id, amount: 100_000n, idempotencyKey: idemKey() }, { token: u.accessToken });
          return { user: u, id: account.id };
        }),
      );
      const deadlocksBefore = await deadlockCount(stack.db.pool);
      const n = 600;
      const answers = await runConcurrently(n, 32, async (i) => {
        const from = accounts[i % 4]!;
        const to = accounts[(i + 1 + (i % 3)) % 4]!;
        const request = { fromAccountId: from.id, toAccountId: to.id, amount: BigInt(1 + (i % 50)), currency: 'CHF', idempotencyKey: `both-${i}-${idemKey()}` };
        const send = (t: Transport) => t.call(TransferService, 'createTransfer', request, { token: from.user.accessToken });
        // Every fifth key races itself through both servers, as a client retrying on another edge would.
        return i % 5 === 0 ? Promise.all([send(http), send(grpcT)]) : [await send(i % 2 === 0 ? http : grpcT)];
      });
      expect(answers.filter((a) => a.status === 'rejected').map((a) => String((a as PromiseRejectedResult).reason))).toEqual([]);
      const groups = answers.map((a) => (a as PromiseFulfilledResult<{ transfer?: { id: bigint }; replayed: boolean }[]>).value);
      for (const group of groups.filter((g) => g.length === 2)) {
        expect(group[0]!.transfer!.id).toBe(group[1]!.transfer!.id);
        expect(group.map((g) => g.replayed).sort()).toEqual([false, true]);
      }
      const acknowledged = groups.map((g) => g[0]!.transfer!.id);
      expect(new Set(acknowledged.map(String)).size).toBe(n);
      expect(await checkLedgerInvariants(stack.db.pool, { acknowledged })).toEqual([]);
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      expect(await deadlockCount(stack.db.pool)).toBe(deadlocksBefore);
      const balances = await Promise.all(accounts.map((a) => http.call(AccountService, 'getAccount', { accountId: a.id }, { token: a.user.accessToken })));
      expect(balances.reduce((sum, a) => sum + a.balance, 0n)).toBe(400_000n);
    } finally {
      http.close();
      grpcT.close();
    }
  }, 240_000);
});
