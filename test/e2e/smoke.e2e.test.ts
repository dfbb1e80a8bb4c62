import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { AccountService } from '../../proto/gen/bank/v1/account_service_pb.ts';
import { signUpAndLogIn } from './flows.ts';
import { startStack, type Stack } from './harness.ts';
import { grpcTransport, httpTransport } from './transports.ts';

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => {
  await stack?.stop();
});

describe('smoke', () => {
  it('http and grpc', async () => {
    const http = httpTransport(stack.api.url);
    const user = await signUpAndLogIn(http, stack.smtp);
    const account = await http.call(AccountService, 'openAccount', { currency: 'USD' }, { token: user.accessToken });
    expect(account.currency).toBe('USD');
    const grpc = grpcTransport(stack.grpc.address);
    const user2 = await signUpAndLogIn(grpc, stack.smtp, { confirmWith: 'code' });
    const acc2 = await grpc.call(AccountService, 'openAccount', { currency: 'EUR' }, { token: user2.accessToken });
    expect(acc2.currency).toBe('EUR');
    grpc.close();
  });
});
