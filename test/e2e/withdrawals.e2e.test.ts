// Withdrawals over both edges: money leaves the bank from a user's account to the currency's
// settlement system account (so every balance of the currency still sums to zero), with the
// external destination echoed; idempotent; refused when it would overdraw, on a frozen or closed
// account, and on someone else's account.
import { beforeAll, describe, expect, it } from '@jest/globals';
import * as grpc from '@grpc/grpc-js';
import { sql } from 'slonik';
import { z } from 'zod';
import { AccountService } from '@bank/proto/bank/v1/account_service_pb';
import { TransferService } from '@bank/proto/bank/v1/transfer_service_pb';
import { TransferKind, TransferStatus } from '@bank/proto/bank/v1/types_pb';
import { idemKey } from '../factories.ts';
import { openAccount, signUpAndLogIn, signUpBanker, type LoggedInUser } from './flows.ts';
import { stackPerSuite } from './harness.ts';
import { failure, type Transport } from './transports.ts';

const suite = stackPerSuite();

const IBAN = 'DE89 3704 0044 0532 0130 00';

describe.each(['http', 'grpc'] as const)('withdrawals over %s', (name) => {
  let t: Transport;
  let alice: LoggedInUser;
  let bob: LoggedInUser;
  let banker: LoggedInUser;
  let aliceAccount: bigint;
  const status = (http: number, code: grpc.status) => (name === 'http' ? http : code);

  beforeAll(async () => {
    t = suite.transports.get(name)!;
    [alice, bob, banker] = await Promise.all([
      signUpAndLogIn(t, suite.stack.smtp),
      signUpAndLogIn(t, suite.stack.smtp),
      signUpBanker(t, suite.stack.smtp, suite.stack.db.pool),
    ]);
    aliceAccount = await openAccount(t, alice, 'GBP', 5_000n);
  });

  const withdraw = (amount: bigint, options: { user?: LoggedInUser; accountId?: bigint; destination?: string; idempotencyKey?: string } = {}) =>
    t.call(
      AccountService,
      'withdraw',
      { accountId: options.accountId ?? aliceAccount, amount, destination: options.destination ?? IBAN, idempotencyKey: options.idempotencyKey ?? idemKey() },
      { token: (options.user ?? alice).accessToken },
    );
  const balance = async () => (await t.call(AccountService, 'getAccount', { accountId: aliceAccount }, { token: alice.accessToken })).balance;
  const systemBalances = async (currency: string) =>
    suite.stack.db.pool.many(
      sql.type(z.object({ kind: z.string(), balance: z.bigint() }))`SELECT kind, balance FROM accounts WHERE is_system AND currency = ${currency} ORDER BY kind`,
    );

  it('sends money to the settlement account: a WITHDRAWAL with its destination, the balance lower, the currency still summing to zero', async () => {
    const before = await balance();
    const settlementBefore = (await systemBalances('GBP')).find((a) => a.kind === 'settlement')?.balance ?? 0n;
    const out = await withdraw(1_200n);
    expect(out.transfer).toMatchObject({
      kind: TransferKind.WITHDRAWAL,
      status: TransferStatus.POSTED,
      fromAccountId: aliceAccount,
      amount: 1_200n,
      currency: 'GBP',
      destination: IBAN,
      initiatedBy: alice.username,
    });
    expect(out.entry).toMatchObject({ accountId: aliceAccount, amount: -1_200n, balanceAfter: before - 1_200n });
    expect(out).toMatchObject({ balance: before - 1_200n, replayed: false });
    expect(await balance()).toBe(before - 1_200n);
    const system = await systemBalances('GBP');
    expect(system.map((a) => a.kind)).toEqual(['funding', 'settlement']);
    expect(system.find((a) => a.kind === 'settlement')?.balance).toBe(settlementBefore + 1_200n);
    expect(out.transfer?.toAccountId).toBe(
      await suite.stack.db.pool.oneFirst(sql.type(z.object({ id: z.bigint() }))`SELECT id FROM accounts WHERE is_system AND kind = 'settlement' AND currency = 'GBP'`),
    );
    const sum = await suite.stack.db.pool.oneFirst(sql.type(z.object({ sum: z.bigint() }))`SELECT coalesce(sum(balance), 0)::bigint AS sum FROM accounts WHERE currency = 'GBP'`);
    expect(sum).toBe(0n);
    const listed = await t.call(TransferService, 'listTransfers', { accountId: aliceAccount }, { token: alice.accessToken });
    expect(listed.transfers[0]).toMatchObject({ id: out.transfer?.id, kind: TransferKind.WITHDRAWAL, destination: IBAN });
  });

  it('replays with the same idempotency key and moves the money once; the key with another request is refused', async () => {
    const before = await balance();
    const key = idemKey();
    const first = await withdraw(100n, { idempotencyKey: key });
    const again = await withdraw(100n, { idempotencyKey: key });
    expect(again).toMatchObject({ replayed: true, balance: first.balance });
    expect(again.transfer?.id).toBe(first.transfer?.id);
    expect(await balance()).toBe(before - 100n);
    expect(await failure(withdraw(100n, { idempotencyKey: key, destination: 'FR76 3000 6000 0112 3456 7890 189' }))).toMatchObject({
      code: 'IDEMPOTENCY_CONFLICT',
      status: status(409, grpc.status.FAILED_PRECONDITION),
    });
  });

  it('refuses bad input naming the field: the destination, the amount, the idempotency key', async () => {
    const cases: [Promise<unknown>, string][] = [
      [withdraw(10n, { destination: '' }), 'destination'],
      [withdraw(10n, { destination: 'x'.repeat(65) }), 'destination'],
      [withdraw(10n, { destination: 'line\nbreak' }), 'destination'],
      [withdraw(10n, { destination: ' leading-space' }), 'destination'],
      [withdraw(0n), 'amount'],
      [withdraw(-5n), 'amount'],
      [withdraw(10n, { idempotencyKey: '' }), 'idempotency_key'],
    ];
    for (const [call, field] of cases) {
      const refusal = await failure(call);
      expect({ field, status: refusal.status }).toEqual({ field, status: status(400, grpc.status.INVALID_ARGUMENT) });
      expect(refusal.fieldViolations.map((v) => v.field)).toEqual([field]);
    }
    expect((await withdraw(1n, { destination: 'x'.repeat(64) })).transfer?.destination).toBe('x'.repeat(64));
  });

  it('refuses more than the available balance: a hold counts', async () => {
    const bobAccount = await openAccount(t, bob, 'GBP');
    const available = await balance();
    const placed = await t.call(
      TransferService,
      'createTransfer',
      { fromAccountId: aliceAccount, toAccountId: bobAccount, amount: 100n, currency: 'GBP', idempotencyKey: idemKey(), hold: { ttlSeconds: 600 } },
      { token: alice.accessToken },
    );
    const insufficient = { code: 'INSUFFICIENT_FUNDS', status: status(422, grpc.status.FAILED_PRECONDITION) };
    expect(await failure(withdraw(available - 99n))).toMatchObject(insufficient);
    expect(await failure(withdraw(available + 1n))).toMatchObject(insufficient);
    await t.call(TransferService, 'voidTransfer', { transferId: placed.transfer!.id, idempotencyKey: idemKey() }, { token: alice.accessToken });
    expect(await balance()).toBe(available);
  });

  it('another user\'s account is not found; a banker may read it but not withdraw from it', async () => {
    expect(await failure(withdraw(10n, { user: bob }))).toMatchObject({ code: 'ACCOUNT_NOT_FOUND', status: status(404, grpc.status.NOT_FOUND) });
    expect(await failure(withdraw(10n, { user: banker }))).toMatchObject({ code: 'PERMISSION_DENIED', status: status(403, grpc.status.PERMISSION_DENIED) });
    expect(await failure(withdraw(10n, { accountId: 987_654_321n }))).toMatchObject({ code: 'ACCOUNT_NOT_FOUND' });
  });

  it('a frozen account refuses a withdrawal until unfrozen; a closed one refuses it for good', async () => {
    await t.call(AccountService, 'freezeAccount', { accountId: aliceAccount, reason: 'withdrawals e2e' }, { token: banker.accessToken });
    try {
      expect(await failure(withdraw(10n))).toMatchObject({ code: 'ACCOUNT_FROZEN', status: status(409, grpc.status.FAILED_PRECONDITION) });
    } finally {
      await t.call(AccountService, 'unfreezeAccount', { accountId: aliceAccount, reason: 'withdrawals e2e done' }, { token: banker.accessToken });
    }
    // Emptying an account by withdrawal lets it close; then it refuses money.
    const carol = await signUpAndLogIn(t, suite.stack.smtp);
    const account = await openAccount(t, carol, 'CHF', 300n);
    expect((await withdraw(300n, { user: carol, accountId: account })).balance).toBe(0n);
    await t.call(AccountService, 'closeAccount', { accountId: account }, { token: carol.accessToken });
    expect(await failure(withdraw(1n, { user: carol, accountId: account }))).toMatchObject({ code: 'ACCOUNT_CLOSED', status: status(409, grpc.status.FAILED_PRECONDITION) });
  });
});
