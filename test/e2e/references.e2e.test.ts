// References over both edges: transfers, deposits and withdrawals take a memo, a client-chosen
// reference and string metadata, echo them in the Transfer wherever it is read, and
// ListTransfers finds an account's transfers by reference. Bad values are refused naming the field.
import { beforeAll, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { AccountService } from '@bank/proto/bank/v1/account_service_pb';
import { TransferService } from '@bank/proto/bank/v1/transfer_service_pb';
import { TransferKind } from '@bank/proto/bank/v1/types_pb';
import { idemKey } from '../factories.ts';
import { openAccount, signUpAndLogIn, type LoggedInUser } from './flows.ts';
import { stackPerSuite } from './harness.ts';
import { failure, type Transport } from './transports.ts';

const suite = stackPerSuite();

describe.each(['http', 'grpc'] as const)('memo, reference and metadata over %s', (name) => {
  let t: Transport;
  let alice: LoggedInUser;
  let bob: LoggedInUser;
  let carol: LoggedInUser;
  let aliceAccount: bigint;
  let bobAccount: bigint;
  const status = (http: number, code: grpc.status) => (name === 'http' ? http : code);
  const reference = () => `inv-${randomBytes(4).toString('hex')}`;

  beforeAll(async () => {
    t = suite.transports.get(name)!;
    [alice, bob, carol] = await Promise.all([signUpAndLogIn(t, suite.stack.smtp), signUpAndLogIn(t, suite.stack.smtp), signUpAndLogIn(t, suite.stack.smtp)]);
    aliceAccount = await openAccount(t, alice, 'EUR', 50_000n);
    bobAccount = await openAccount(t, bob, 'EUR');
  });

  type Refs = { memo?: string; reference?: string; metadata?: Record<string, string> };
  const send = (refs: Refs, amount = 10n) =>
    t.call(
      TransferService,
      'createTransfer',
      { fromAccountId: aliceAccount, toAccountId: bobAccount, amount, currency: 'EUR', idempotencyKey: idemKey(), ...refs },
      { token: alice.accessToken },
    );

  it('a transfer, a deposit and a withdrawal echo their memo, reference and metadata, and so do GetTransfer and ListTransfers', async () => {
    const refs = { memo: 'Rent — März 🏠', reference: reference(), metadata: { order: '42', channel: 'web' } };
    const sent = (await send(refs)).transfer!;
    expect(sent).toMatchObject(refs);
    const deposited = (await t.call(AccountService, 'deposit', { accountId: aliceAccount, amount: 5n, idempotencyKey: idemKey(), ...refs }, { token: alice.accessToken })).transfer!;
    expect(deposited).toMatchObject({ kind: TransferKind.DEPOSIT, ...refs });
    const withdrawn = (
      await t.call(AccountService, 'withdraw', { accountId: aliceAccount, amount: 5n, destination: 'ES91 2100 0418 4502 0005 1332', idempotencyKey: idemKey(), ...refs }, { token: alice.accessToken })
    ).transfer!;
    expect(withdrawn).toMatchObject({ kind: TransferKind.WITHDRAWAL, ...refs });
    // The receiver reads the same.
    expect(await t.call(TransferService, 'getTransfer', { transferId: sent.id }, { token: bob.accessToken })).toMatchObject(refs);
    const listed = await t.call(TransferService, 'listTransfers', { accountId: aliceAccount, pageSize: 3 }, { token: alice.accessToken });
    expect(listed.transfers.map((x) => x.id)).toEqual([withdrawn.id, deposited.id, sent.id]);
    for (const x of listed.transfers) expect(x).toMatchObject(refs);
  });

  it('a movement without references answers them empty', async () => {
    const sent = (await send({})).transfer!;
    expect(sent).toMatchObject({ memo: '', reference: '', metadata: {}, destination: '' });
  });

  it('ListTransfers with a reference finds only the account\'s transfers carrying it, newest first, for either side', async () => {
    const wanted = reference();
    const first = (await send({ reference: wanted })).transfer!;
    await send({ reference: reference() });
    await send({});
    const second = (await send({ reference: wanted })).transfer!;
    const mine = await t.call(TransferService, 'listTransfers', { accountId: aliceAccount, reference: wanted }, { token: alice.accessToken });
    expect(mine.transfers.map((x) => x.id)).toEqual([second.id, first.id]);
    expect(mine.nextPageToken).toBe('');
    const theirs = await t.call(TransferService, 'listTransfers', { accountId: bobAccount, reference: wanted }, { token: bob.accessToken });
    expect(theirs.transfers.map((x) => x.id)).toEqual([second.id, first.id]);
    const paged = await t.call(TransferService, 'listTransfers', { accountId: aliceAccount, reference: wanted, pageSize: 1 }, { token: alice.accessToken });
    expect(paged.transfers.map((x) => x.id)).toEqual([second.id]);
    const next = await t.call(TransferService, 'listTransfers', { accountId: aliceAccount, reference: wanted, pageSize: 1, pageToken: paged.nextPageToken }, { token: alice.accessToken });
    expect(next.transfers.map((x) => x.id)).toEqual([first.id]);
    expect((await t.call(TransferService, 'listTransfers', { accountId: aliceAccount, reference: reference() }, { token: alice.accessToken })).transfers).toEqual([]);
    expect(await failure(t.call(TransferService, 'listTransfers', { accountId: aliceAccount, reference: wanted }, { token: carol.accessToken }))).toMatchObject({
      code: 'ACCOUNT_NOT_FOUND',
      status: status(404, grpc.status.NOT_FOUND),
    });
  });

  it('refuses a memo, a reference or metadata out of bounds, naming the field, and moves nothing', async () => {
    const before = (await t.call(AccountService, 'getAccount', { accountId: aliceAccount }, { token: alice.accessToken })).balance;
    const tooMany = Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, 'v']));
    const cases: [Refs, string][] = [
      [{ memo: 'm'.repeat(141) }, 'memo'],
      [{ memo: 'bell\u0007' }, 'memo'],
      [{ reference: 'r'.repeat(65) }, 'reference'],
      [{ metadata: tooMany }, 'metadata'],
      [{ metadata: { ['k'.repeat(41)]: 'v' } }, 'metadata'],
      [{ metadata: { note: 'v'.repeat(257) } }, 'metadata.note'],
    ];
    for (const [refs, field] of cases) {
      const refusal = await failure(send(refs));
      expect({ field, code: refusal.code, status: refusal.status }).toEqual({ field, code: 'INVALID_ARGUMENT', status: status(400, grpc.status.INVALID_ARGUMENT) });
      expect(refusal.fieldViolations.map((v) => v.field)).toEqual([field]);
    }
    const longest = { memo: 'm'.repeat(140), reference: 'r'.repeat(64), metadata: Object.fromEntries(Array.from({ length: 16 }, (_, i) => [`${'k'.repeat(38)}${String(i).padStart(2, '0')}`, 'v'.repeat(256)])) };
    expect((await send(longest, 1n)).transfer).toMatchObject(longest);
    expect((await t.call(AccountService, 'getAccount', { accountId: aliceAccount }, { token: alice.accessToken })).balance).toBe(before - 1n);
    const badFilter = await failure(t.call(TransferService, 'listTransfers', { accountId: aliceAccount, reference: 'r'.repeat(65) }, { token: alice.accessToken }));
    expect(badFilter.fieldViolations.map((v) => v.field)).toEqual(['reference']);
  });
});
