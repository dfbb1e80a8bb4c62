// One webhook attempt against a real HTTP receiver on 127.0.0.1: the SSRF checks at delivery time
// (literal addresses and what a host name resolves to), the connection made to the address that
// was checked, redirects not followed, the timeout.
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startWebhookReceiver, type WebhookReceiver } from '../../../test/webhook-receiver.ts';
import { sendWebhook, webhookConnections, type Resolver } from './webhook-sender.ts';

const strict = { requireHttps: false, allowPrivateTargets: false };
const local = { requireHttps: false, allowPrivateTargets: true };
const body = '{"id":"e","type":"transfer.posted","createdAt":"2026-12-01T00:00:00.000Z","data":{}}';

let receiver: WebhookReceiver;
let port: number;

beforeAll(async () => {
  receiver = await startWebhookReceiver();
  port = Number(new URL(receiver.url).port);
});
afterAll(async () => {
  await receiver?.close();
});

/** A DNS stand-in: each name answers what the test says, and how many times it was asked is counted. */
function resolverOf(answers: Record<string, string[]>): Resolver & { calls: string[] } {
  const calls: string[] = [];
  const resolve = async (hostname: string) => {
    calls.push(hostname);
    const addresses = answers[hostname];
    if (!addresses) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' });
    return addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
  };
  return Object.assign(resolve, { calls });
}

describe('sendWebhook', () => {
  it('refuses a loopback endpoint when private targets are not allowed, and sends nothing', async () => {
    const before = receiver.received.length;
    const result = await sendWebhook(`${receiver.url}/private`, body, {}, { timeoutMs: 1_000, policy: strict });
    expect(result).toMatchObject({ outcome: 'refused_target', statusCode: null, error: 'refused: the URL must not point at a loopback address (127.0.0.1)' });
    expect(receiver.received.length).toBe(before);
  });

  it('refuses a host name that resolves to a private address (checked at every delivery, not only at registration)', async () => {
    const before = receiver.received.length;
    const resolve = resolverOf({ 'hooks.example.test': ['93.184.215.14', '10.0.0.7'] });
    const result = await sendWebhook(`http://hooks.example.test:${port}/x`, body, {}, { timeoutMs: 1_000, policy: strict, resolve });
    expect(result).toMatchObject({ outcome: 'refused_target', error: 'refused: hooks.example.test resolves to 10.0.0.7 (private network)' });
    expect(resolve.calls).toEqual(['hooks.example.test']);
    expect(receiver.received.length).toBe(before);
  });

  it.each([['::1'], ['::ffff:127.0.0.1'], ['169.254.169.254'], ['0.0.0.0']])('refuses a name that resolves to %s', async (address) => {
    const resolve = resolverOf({ 'rebind.example.test': [address] });
    const result = await sendWebhook(`http://rebind.example.test:${port}/x`, body, {}, { timeoutMs: 1_000, policy: strict, resolve });
    expect(result.outcome).toBe('refused_target');
  });

  it('connects to the address it resolved and checked, keeping the name in the Host header', async () => {
    const resolve = resolverOf({ 'hooks.example.test': ['127.0.0.1'] });
    const result = await sendWebhook(`http://hooks.example.test:${port}/pinned?a=1`, body, { 'bank-event-id': 'e' }, { timeoutMs: 1_000, policy: local, resolve });
    expect(result).toMatchObject({ outcome: 'delivered', statusCode: 200, error: null });
    const request = receiver.received.at(-1)!;
    expect(request).toMatchObject({ method: 'POST', path: '/pinned?a=1', rawBody: body });
    expect(request.headers.host).toBe(`hooks.example.test:${port}`);
    expect(request.headers['bank-event-id']).toBe('e');
    // Resolved once, for the check; the connection used that answer instead of asking again.
    expect(resolve.calls).toEqual(['hooks.example.test']);
  });

  it('reports a name that does not resolve', async () => {
    const result = await sendWebhook(`http://nowhere.example.test:${port}/`, body, {}, { timeoutMs: 1_000, policy: local, resolve: resolverOf({}) });
    expect(result).toMatchObject({ outcome: 'dns_error', statusCode: null, error: expect.stringContaining('could not resolve nowhere.example.test') });
  });

  it('does not follow a redirect', async () => {
    receiver.answer((request) => (request.path === '/moved' ? { status: 307, headers: { location: `${receiver.url}/target` } } : { status: 200 }));
    const result = await sendWebhook(`${receiver.url}/moved`, body, {}, { timeoutMs: 1_000, policy: local });
    expect(result).toMatchObject({ outcome: 'redirect', statusCode: 307 });
    expect(receiver.received.filter((r) => r.path === '/target')).toHaveLength(0);
    receiver.answer(() => ({ status: 200 }));
  });

  it('gives up after the timeout', async () => {
    receiver.answer(() => ({ status: 200, delayMs: 2_000 }));
    const result = await sendWebhook(`${receiver.url}/slow`, body, {}, { timeoutMs: 200, policy: local });
    expect(result).toMatchObject({ outcome: 'timeout', statusCode: null, error: 'timed out after 200 ms' });
    receiver.answer(() => ({ status: 200 }));
  });

  it('reports a refused connection', async () => {
    const closed = await startWebhookReceiver();
    const url = closed.url;
    await closed.close();
    const result = await sendWebhook(`${url}/`, body, {}, { timeoutMs: 1_000, policy: local });
    expect(result).toMatchObject({ outcome: 'network_error', statusCode: null, error: expect.stringContaining('ECONNREFUSED') });
  });

  it('refuses plain http in production', async () => {
    const result = await sendWebhook(`${receiver.url}/`, body, {}, { timeoutMs: 1_000, policy: { requireHttps: true, allowPrivateTargets: true } });
    expect(result).toMatchObject({ outcome: 'refused_target', error: expect.stringContaining('https://') });
  });
});

describe('sendWebhook over kept-alive connections', () => {
  /** A real HTTP endpoint that counts the TCP connections it accepted. */
  async function countingEndpoint(options: { keepAliveTimeoutMs?: number } = {}) {
    let connections = 0;
    let requests = 0;
    const server = http.createServer((req, res) => {
      requests += 1;
      req.resume();
      req.on('end', () => res.writeHead(204).end());
    });
    if (options.keepAliveTimeoutMs !== undefined) server.keepAliveTimeout = options.keepAliveTimeoutMs;
    server.on('connection', () => (connections += 1));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return {
      url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`,
      counts: () => ({ connections, requests }),
      close: () => {
        server.closeAllConnections();
        return new Promise<void>((resolve) => server.close(() => resolve()));
      },
    };
  }

  it('sends one delivery after another over the same connection', async () => {
    const endpoint = await countingEndpoint();
    const connections = webhookConnections({ maxSockets: 4, idleMs: 10_000 });
    try {
      for (let i = 0; i < 5; i++) {
        const result = await sendWebhook(endpoint.url, body, {}, { timeoutMs: 1_000, policy: local, connections });
        expect(result).toMatchObject({ outcome: 'delivered', statusCode: 204 });
      }
      expect(endpoint.counts()).toEqual({ connections: 1, requests: 5 });
    } finally {
      connections.close();
      await endpoint.close();
    }
  });

  it('opens no more connections to an endpoint than maxSockets, however many deliveries are in flight', async () => {
    const endpoint = await countingEndpoint();
    const connections = webhookConnections({ maxSockets: 2, idleMs: 10_000 });
    try {
      const results = await Promise.all(Array.from({ length: 8 }, () => sendWebhook(endpoint.url, body, {}, { timeoutMs: 2_000, policy: local, connections })));
      expect(results.every((r) => r.outcome === 'delivered')).toBe(true);
      expect(endpoint.counts()).toEqual({ connections: 2, requests: 8 });
    } finally {
      connections.close();
      await endpoint.close();
    }
  });

  it('without connections (a one-off send), each delivery has a connection of its own', async () => {
    const endpoint = await countingEndpoint();
    try {
      for (let i = 0; i < 3; i++) await sendWebhook(endpoint.url, body, {}, { timeoutMs: 1_000, policy: local });
      expect(endpoint.counts()).toEqual({ connections: 3, requests: 3 });
    } finally {
      await endpoint.close();
    }
  });

  it('a connection closed by the endpoint between deliveries is not reused', async () => {
    // The endpoint closes idle connections after 50 ms (and says so in Keep-Alive: timeout=).
    const endpoint = await countingEndpoint({ keepAliveTimeoutMs: 50 });
    const connections = webhookConnections({ maxSockets: 4, idleMs: 10_000 });
    try {
      expect((await sendWebhook(endpoint.url, body, {}, { timeoutMs: 1_000, policy: local, connections })).outcome).toBe('delivered');
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect((await sendWebhook(endpoint.url, body, {}, { timeoutMs: 1_000, policy: local, connections })).outcome).toBe('delivered');
      expect(endpoint.counts()).toEqual({ connections: 2, requests: 2 });
    } finally {
      connections.close();
      await endpoint.close();
    }
  });

  it('a kept-alive connection reset as the next delivery goes out: sent again at once on a new connection, delivered', async () => {
    // A raw endpoint: its first connection answers one request with keep-alive, then resets when
    // the second request arrives on it (a server closing an idle connection just as it is reused).
    const seen: string[] = [];
    let connectionNumber = 0;
    const server = net.createServer((socket) => {
      connectionNumber += 1;
      const mine = connectionNumber;
      let requestsHere = 0;
      let buffered = '';
      socket.on('data', (chunk) => {
        buffered += chunk.toString('latin1');
        while (buffered.includes('\r\n\r\n') && buffered.includes(body)) {
          buffered = buffered.slice(buffered.indexOf(body) + body.length);
          requestsHere += 1;
          seen.push(`connection ${mine} request ${requestsHere}`);
          if (mine === 1 && requestsHere === 2) {
            socket.resetAndDestroy();
            return;
          }
          socket.write('HTTP/1.1 204 No Content\r\nConnection: keep-alive\r\n\r\n');
        }
      });
      socket.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`;
    const connections = webhookConnections({ maxSockets: 1, idleMs: 10_000 });
    try {
      expect(await sendWebhook(url, body, {}, { timeoutMs: 1_000, policy: local, connections })).toMatchObject({ outcome: 'delivered', statusCode: 204 });
      expect(await sendWebhook(url, body, {}, { timeoutMs: 1_000, policy: local, connections })).toMatchObject({ outcome: 'delivered', statusCode: 204 });
      expect(seen).toEqual(['connection 1 request 1', 'connection 1 request 2', 'connection 2 request 1']);
    } finally {
      connections.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
