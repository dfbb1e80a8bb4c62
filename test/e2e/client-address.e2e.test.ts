// The client address behind an ingress, and the login limits that key on it. With
// TRUSTED_PROXIES=1 the address is the last X-Forwarded-For entry (the hop the ingress appended), so
// clients behind one ingress are told apart, and what a client writes into X-Forwarded-For itself
// cannot move it to another bucket. Wrong passwords are refused per address and per user + address,
// and only slowed per user: a stranger's spray from many addresses cannot lock the owner out.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { AuthService } from '@bank/proto/bank/v1/auth_service_pb';
import { signUp } from './flows.ts';
import { startStack, uniqueName, type Stack } from './harness.ts';
import { grpcTransport, httpTransport, type Transport } from './transports.ts';

let stack: Stack;
let transports: Transport[];
beforeAll(async () => {
  stack = await startStack({ env: { TRUSTED_PROXIES: '1', LOGIN_RATE_LIMIT_MAX: '3', LOGIN_RATE_LIMIT_WINDOW_SECONDS: '60' } });
  transports = [httpTransport(stack.api.url), grpcTransport(stack.grpc.address)];
});
afterAll(async () => {
  for (const t of transports ?? []) t.close();
  await stack?.stop();
});

describe.each(['http', 'grpc'] as const)('%s behind a trusted proxy', (name) => {
  const transport = () => transports.find((t) => t.name === name)!;
  const login = (username: string, password: string, hop: string, spoof = '203.0.113.7') =>
    transport()
      .call(AuthService, 'login', { username, password }, { metadata: { 'x-forwarded-for': `${spoof}, ${hop}` } })
      .then(
        () => 'accepted',
        (error: { code?: string }) => error.code ?? 'error',
      );

  it('limits by the hop the ingress appended, not by the proxy or by what the client claims', async () => {
    const hop = name === 'http' ? '198.51.100.10' : '198.51.100.20';
    const outcomes = [];
    // A different unknown username each time, so only the per-address limit can trigger.
    for (let i = 0; i < 4; i++) outcomes.push(await login(uniqueName(), 'wrong password', hop, `192.0.2.${i}`));
    expect(outcomes.slice(0, 3).every((code) => code === 'UNAUTHENTICATED')).toBe(true);
    expect(outcomes[3]).toBe('RATE_LIMITED');
    // Another client behind the same ingress is not punished for the first one's guesses.
    expect(await login(uniqueName(), 'wrong password', name === 'http' ? '198.51.100.11' : '198.51.100.21')).toBe('UNAUTHENTICATED');
  });

  it("the owner logs in from their address during a stranger's password spray from many addresses; each spraying address is stopped", async () => {
    const owner = await signUp(transport(), stack.smtp);
    const net = name === 'http' ? '198.51.101' : '198.51.102';
    // Five addresses, four guesses each (five times the limit of wrong passwords for one user).
    const spray = await Promise.all(
      Array.from({ length: 5 }, async (_, address) => {
        const outcomes = [];
        for (let guess = 0; guess < 4; guess++) outcomes.push(await login(owner.username, `guess ${address}.${guess}`, `${net}.${address + 1}`));
        return outcomes;
      }),
    );
    for (const outcomes of spray) expect(outcomes).toEqual(['UNAUTHENTICATED', 'UNAUTHENTICATED', 'UNAUTHENTICATED', 'RATE_LIMITED']);
    expect(await login(owner.username, owner.password, `${net}.200`)).toBe('accepted');
    // The spraying addresses stay stopped, for the owner's username and for any other.
    expect(await login(owner.username, 'one more guess', `${net}.1`)).toBe('RATE_LIMITED');
    expect(await login(uniqueName(), 'one more guess', `${net}.2`)).toBe('RATE_LIMITED');
  });
});
