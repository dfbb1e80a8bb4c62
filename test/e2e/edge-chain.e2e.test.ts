// The two servers share one interceptor chain: an interceptor added once, in one list, runs on
// HTTP calls and gRPC calls alike, after authentication, with the same view of the call.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Interceptor } from '@bank/edge/call/call';
import { fullMethodName } from '@bank/edge/call/interceptors';
import { AccountService } from '@bank/proto/bank/v1/account_service_pb';
import { signUpAndLogIn } from './flows.ts';
import { startStack, type Stack } from './harness.ts';
import { grpcTransport, httpTransport, type Transport } from './transports.ts';

type Seen = { protocol: string; method: string; user: string | undefined; requestId: string; signal: boolean };
const seen: Seen[] = [];
const probe: Interceptor = (next) => async (call) => {
  seen.push({ protocol: call.transport.protocol, method: fullMethodName(call), user: call.actor?.username, requestId: call.requestId, signal: call.signal instanceof AbortSignal });
  return next(call);
};

let stack: Stack;
let transports: Transport[];
beforeAll(async () => {
  stack = await startStack({ interceptors: [probe] });
  transports = [httpTransport(stack.api.url), grpcTransport(stack.grpc.address)];
});
afterAll(async () => {
  for (const t of transports ?? []) t.close();
  await stack?.stop();
});

describe('the shared interceptor chain', () => {
  it('runs one interceptor, added once, on an HTTP call and on a gRPC call, after authentication', async () => {
    for (const transport of transports) {
      const user = await signUpAndLogIn(transport, stack.smtp);
      seen.length = 0;
      await transport.call(AccountService, 'openAccount', { currency: 'USD' }, { token: user.accessToken, metadata: { 'x-request-id': `probe-${transport.name}` } });
      expect(seen).toEqual([
        { protocol: transport.name, method: 'bank.v1.AccountService.OpenAccount', user: user.username, requestId: `probe-${transport.name}`, signal: true },
      ]);
    }
  });

  it('does not reach an interceptor after authentication for a call without a valid token', async () => {
    for (const transport of transports) {
      seen.length = 0;
      await expect(transport.call(AccountService, 'listAccounts', {}, { token: 'v4.public.not-a-token' })).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
      expect(seen).toEqual([]);
    }
  });
});
