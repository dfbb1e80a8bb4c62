// Balance history over both edges: every entry carries balance_after, and GetBalance answers an
// account's balance at an instant; who may read it follows the same rules as the account itself.
import { beforeAll, describe, expect, it } from '@jest/globals';
import { timestampDate, timestampFromDate } from '@bufbuild/protobuf/wkt';
import { sql } from 'slonik';
import { z } from 'zod';
import { AccountService } from '@bank/proto/bank/v1/account_service_pb';
import { TransferService } from '@bank/proto/bank/v1/transfer_service_pb';
import { idemKey } from '../factories.ts';
import { logIn, signUp, signUpAndLogIn, type LoggedInUser } from './flows.ts';
import { stackPerSuite } from './harness.ts';
import { failure, type Transport } from './transports.ts';

const suite = stackPerSuite();

describe.each(['http', 'grpc'] as const)('balance history over %s', (name) => {
  let t: Transport;
  let alice: LoggedInUser;
  let bob: LoggedInUser;
  let account: bigint;
  let bobAccount: bigint;
  // The instants come from the server's own entries, so the test reads no client clock.
  let depositedAt: Date;
  let transferredAt: Date;

  beforeAll(async () => {
    t = suite.transports.get(name)!;
    [alice, bob] = await Promise.all([signUpAndLogIn(t, suite.stack.smtp), signUpAndLogIn(t, suite.stack.smtp)]);
    account = (await t.call(AccountService, 'openAccount', { currency: 'USD' }, { token: alice.accessToken })).id;
    bobAccount = (await t.call(AccountService, 'openAccount', { currency: 'USD' }, { token: bob.accessToken })).id;
    const deposit = await t.call(AccountService, 'deposit', { accountId: account, amount: 1_000n, idempotencyKey: idemKey() }, { token: alice.accessToken });
    const transfer = await t.call(TransferService, 'createTransfer', { fromAccountId: account, toAccountId: bobAccount, amount: 300n, currency: 'USD', idempotencyKey: idemKey() }, { token: alice.accessToken });
    depositedAt = timestampDate(deposit.transfer!.createdAt!);
    transferredAt = timestampDate(transfer.transfer!.createdAt!);
  });

  it('gives every entry the balance right after it, newest first', async () => {
    const page = await t.call(AccountService, 'listEntries', { accountId: account }, { token: alice.accessToken });
    expect(page.entries.map((e) => [e.amount, e.balanceAfter])).toEqual([
      [-300n, 700n],
      [1_000n, 1_000n],
    ]);
  });

  it('answers the balance at an instant: 0 before the first entry, then as each movement left it', async () => {
    const at = async (when?: Date) =>
      (await t.call(AccountService, 'getBalance', { accountId: account, ...(when ? { at: timestampFromDate(when) } : {}) }, { token: alice.accessToken }));
    // A timestamp in the API has microseconds; a Date keeps milliseconds, so each instant is taken
    // a millisecond past the movement's own time (or before it, for "before").
    const ms = (date: Date, delta: number) => new Date(date.getTime() + delta);
    expect((await at(ms(depositedAt, -1))).balance).toBe(0n);
    expect((await at(ms(depositedAt, 1))).balance).toBe(1_000n);
    expect((await at(ms(transferredAt, 1))).balance).toBe(700n);
    const now = await at();
    expect(now).toMatchObject({ accountId: account, currency: 'USD', balance: 700n });
    expect(now.at).toBeDefined();
  });

  it('hides another user’s account as not found, and needs a token', async () => {
    expect(await failure(t.call(AccountService, 'getBalance', { accountId: account }, { token: bob.accessToken }))).toMatchObject({ code: 'ACCOUNT_NOT_FOUND' });
    expect(await failure(t.call(AccountService, 'getBalance', { accountId: account }))).toMatchObject({ code: 'UNAUTHENTICATED' });
  });

  it('lets a banker read any account’s balance', async () => {
    const b = await signUp(t, suite.stack.smtp);
    await suite.stack.db.pool.query(sql.type(z.object({}))`UPDATE users SET role = 'banker' WHERE username = ${b.username}`);
    const banker = await logIn(t, suite.stack.smtp, b, 'code');
    expect((await t.call(AccountService, 'getBalance', { accountId: account }, { token: banker.accessToken })).balance).toBe(700n);
  });
});
