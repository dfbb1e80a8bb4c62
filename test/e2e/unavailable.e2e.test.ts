// When PostgreSQL stops answering after start-up, both edges say "unavailable, retry" (503 with Retry-After /
// UNAVAILABLE), never a 500 / INTERNAL that reads like a bug, and never the driver's message.
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { UserService } from '@bank/proto/bank/v1/user_service_pb';
import { startApiServer, type ApiServer } from '@bank/api/api-server';
import { startGrpcServer, type GrpcServer } from '@bank/grpc/grpc-server';
import net from 'node:net';
import { startStack, uniqueName, type Stack } from './harness.ts';
import { CallFailed, grpcTransport } from './transports.ts';

let stack: Stack;
let api: ApiServer;
let grpcServer: GrpcServer;

/** A TCP relay to PostgreSQL that the test can cut, as a network partition or a database crash would. */
function relay(target: URL) {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(target.port || 5432), target.hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => s.destroy());
      s.on('close', () => sockets.delete(s));
    }
    client.pipe(upstream).pipe(client);
  });
  return {
    listen: () => new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port))),
    cut: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

beforeAll(async () => {
  stack = await startStack();
  const database = new URL(stack.config.DATABASE_URL);
  const partition = relay(database);
  const port = await partition.listen();
  const viaRelay = new URL(database);
  viaRelay.port = String(port);
  const config = { ...stack.config, HTTP_PORT: 0, GRPC_PORT: 0, METRICS_PORT: 0, DATABASE_URL: viaRelay.toString() };
  api = await startApiServer(config, { host: '127.0.0.1', logger: stack.logger });
  grpcServer = await startGrpcServer(config, { host: '127.0.0.1', logger: stack.logger });
  expect((await fetch(`${api.url}/readyz`)).status).toBe(200);
  await partition.cut();
});
afterAll(async () => {
  await api?.close();
  await grpcServer?.close();
  await stack?.stop();
});

const signUp = () => ({ username: uniqueName(), fullName: 'Nobody Home', email: `${uniqueName()}@example.test`, password: 'correct horse battery' });

describe('database unreachable', () => {
  it('HTTP answers 503 problem+json with Retry-After, and /readyz says why', async () => {
    const response = await fetch(`${api.url}/v1/users`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(signUp()),
    });
    expect(response.status).toBe(503);
    expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(response.headers.get('retry-after')).toBe('1');
    const problem = (await response.json()) as Record<string, unknown>;
    expect(problem).toMatchObject({ code: 'UNAVAILABLE', status: 503 });
    expect(JSON.stringify(problem)).not.toMatch(/ECONNREFUSED|127\.0\.0\.1|postgres/);
    const ready = await fetch(`${api.url}/readyz`);
    expect(ready.status).toBe(503);
    expect(await ready.json()).toMatchObject({ ready: false, checks: { database: expect.not.stringMatching(/^ok$/) } });
  });

  it('gRPC answers UNAVAILABLE', async () => {
    const transport = grpcTransport(grpcServer.address);
    try {
      const failure = await transport.call(UserService, 'createUser', signUp()).then(
        () => null,
        (error: unknown) => error,
      );
      expect(failure).toBeInstanceOf(CallFailed);
      expect(failure).toMatchObject({ status: grpc.status.UNAVAILABLE, code: 'UNAVAILABLE' });
    } finally {
      transport.close();
    }
  });
});
