// The per-address login limit behind an ingress: with TRUST_PROXY=true the address is the last
// X-Forwarded-For entry (the hop the ingress appended), so clients behind one ingress are told
// apart, and what a client writes into X-Forwarded-For itself cannot move it to another bucket.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { AuthService } from '@bank/proto/bank/v1/auth_service_pb';
import { startStack, uniqueName, type Stack } from './harness.ts';
import { grpcTransport, httpTransport, type Transport } from './transports.ts';

let stack: Stack;
let transports: Transport[];
beforeAll(async () => {
  stack = await startStack({ env: { TRUST_PROXY: 'true', LOGIN_RATE_LIMIT_MAX: '3', LOGIN_RATE_LIMIT_WINDOW_SECONDS: '60' } });
  transports = [httpTransport(stack.api.url), grpcTransport(stack.grpc.address)];
});
afterAll(async () => {
  for (const t of transports ?? []) t.close();
  await stack?.stop();
});

describe.each(['http', 'grpc'] as const)('%s behind a trusted proxy', (name) => {
  const failLogin = (hop: string, spoof = '203.0.113.7') => {
    const transport = transports.find((t) => t.name === name)!;
    // A different unknown username each time, so only the per-address limit can trigger.
    return transport
      .call(AuthService, 'login', { username: uniqueName(), password: 'wrong password' }, { metadata: { 'x-forwarded-for': `${spoof}, ${hop}` } })
      .then(
        () => 'accepted',
        (error: { code?: string }) => error.code ?? 'error',
      );
  };

  it('limits by the hop the ingress appended, not by the proxy or by what the client claims', async () => {
    const hop = name === 'http' ? '198.51.100.10' : '198.51.100.20';
    const outcomes = [];
    for (let i = 0; i < 4; i++) outcomes.push(await failLogin(hop, `192.0.2.${i}`));
    expect(outcomes.slice(0, 3).every((code) => code === 'UNAUTHENTICATED')).toBe(true);
    expect(outcomes[3]).toBe('RATE_LIMITED');
    // Another client behind the same ingress is not punished for the first one's guesses.
    expect(await failLogin(name === 'http' ? '198.51.100.11' : '198.51.100.21')).toBe('UNAUTHENTICATED');
  });
});
