import { request } from 'node:http';
import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { AccountService } from '@bank/proto/bank/v1/account_service_pb';
import { signUpAndLogIn, type LoggedInUser } from './flows.ts';
import { startStack, type Stack } from './harness.ts';
import { grpcTransport, httpTransport, type Transport } from './transports.ts';

// What an operator reads at 3 a.m.: one JSON line per request and per RPC with the request id,
// the user, the route or method, the outcome and the latency, and never a secret.
const lines: Array<Record<string, unknown>> = [];
const raw: string[] = [];
const sink = new Writable({
  write(chunk: Buffer, _encoding, done) {
    for (const line of chunk.toString().split('\n')) {
      if (!line.trim()) continue;
      raw.push(line);
      lines.push(JSON.parse(line) as Record<string, unknown>);
    }
    done();
  },
});

let stack: Stack;
let transports: Transport[];
beforeAll(async () => {
  stack = await startStack({ logDestination: sink });
  transports = [httpTransport(stack.api.url), grpcTransport(stack.grpc.address)];
});
afterAll(async () => {
  for (const t of transports ?? []) t.close();
  await stack?.stop();
});

describe('request logs', () => {
  it.each(['http', 'grpc'] as const)('%s: one line per call with request id, user, outcome and latency; no secrets', async (name) => {
    const transport = transports.find((t) => t.name === name)!;
    const user: LoggedInUser = await signUpAndLogIn(transport, stack.smtp, { confirmWith: 'code' });
    const before = lines.length;
    await transport.call(AccountService, 'openAccount', { currency: 'USD' }, { token: user.accessToken });
    await expect(transport.call(AccountService, 'getAccount', { accountId: 999_999n }, { token: user.accessToken })).rejects.toThrow();
    await new Promise((r) => setTimeout(r, 100));
    const mine = lines.slice(before).filter((l) => l.user === user.username);
    expect(mine).toHaveLength(2);
    for (const line of mine) {
      expect(line).toEqual(expect.objectContaining({ requestId: expect.any(String), ms: expect.any(Number), level: expect.any(String) }));
    }
    if (name === 'http') {
      expect(mine.map((l) => [l.route, l.status, l.errorCode ?? null])).toEqual([
        ['/v1/accounts', 201, null],
        ['/v1/accounts/{account_id}', 404, 'ACCOUNT_NOT_FOUND'],
      ]);
    } else {
      expect(mine.map((l) => [l.method, l.status, l.errorCode ?? null])).toEqual([
        ['bank.v1.AccountService.OpenAccount', 'OK', null],
        ['bank.v1.AccountService.GetAccount', 'NOT_FOUND', 'ACCOUNT_NOT_FOUND'],
      ]);
    }
    const everything = raw.join('\n');
    expect(everything).not.toContain(user.accessToken);
    expect(everything).not.toContain(user.refreshToken);
    expect(everything).not.toContain(user.password);
    expect(everything).not.toContain(user.email);
  });

  it('http: a client that hangs up mid-request is logged as 499 CANCELLED, not as a 500 internal error', async () => {
    const user = await signUpAndLogIn(transports[0]!, stack.smtp);
    const account = await transports[0]!.call(AccountService, 'openAccount', { currency: 'USD' }, { token: user.accessToken });
    const before = lines.length;
    const requestIds: string[] = [];
    for (let i = 0; i < 5; i++) {
      const requestId = `abort-${randomUUID()}`;
      requestIds.push(requestId);
      await new Promise<void>((resolve) => {
        const req = request(`${stack.api.url}/v1/accounts/${account.id}/deposits`, {
          method: 'POST',
          headers: {
            authorization: `Bearer ${user.accessToken}`,
            'content-type': 'application/json',
            'content-length': '100',
            'idempotency-key': randomUUID(),
            'x-request-id': requestId,
          },
        });
        req.on('error', () => resolve());
        req.write('{"amount":');
        setTimeout(() => {
          req.destroy();
          resolve();
        }, 50 + i * 20);
      });
    }
    await new Promise((r) => setTimeout(r, 300));
    const mine = lines.slice(before).filter((l) => requestIds.includes(l.requestId as string));
    expect(mine.map((l) => [l.msg, l.level, l.status, l.errorCode])).toEqual(requestIds.map(() => ['request', 'info', 499, 'CANCELLED']));
    expect(lines.slice(before).filter((l) => l.level === 'error')).toEqual([]);
  });
});
