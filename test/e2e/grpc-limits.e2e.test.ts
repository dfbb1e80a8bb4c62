// The gRPC server's own limits: reflection per GRPC_REFLECTION (off by default in production), the
// HTTP/2 stream limit it advertises, the largest message and metadata, and idle connections closed.
import http2 from 'node:http2';
import { createRequire } from 'node:module';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { AuthService } from '@bank/proto/bank/v1/auth_service_pb';
import { startGrpcServer, type GrpcServer } from '@bank/grpc/grpc-server';
import type { Config } from '@bank/shared/config/config';
import { startStack, type Stack } from './harness.ts';
import { failure, grpcTransport } from './transports.ts';

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => {
  await stack?.stop();
});

async function withServer<T>(overrides: Partial<Config>, use: (server: GrpcServer) => Promise<T>): Promise<T> {
  const server = await startGrpcServer({ ...stack.config, GRPC_PORT: 0, METRICS_PORT: 0, ...overrides }, { bank: stack.api.bank, host: '127.0.0.1', logger: stack.logger });
  try {
    return await use(server);
  } finally {
    await server.close();
  }
}

type ReflectionResponse = {
  listServicesResponse?: { service: { name: string }[] };
  fileDescriptorResponse?: { fileDescriptorProto: Buffer[] };
};

function reflect(address: string, request: Record<string, string>): Promise<ReflectionResponse> {
  const protoPath = createRequire(import.meta.url).resolve('@grpc/reflection/build/proto/grpc/reflection/v1/reflection.proto');
  const definition = grpc.loadPackageDefinition(loadSync(protoPath, { keepCase: false })) as unknown as {
    grpc: { reflection: { v1: { ServerReflection: grpc.ServiceClientConstructor } } };
  };
  const client = new definition.grpc.reflection.v1.ServerReflection(address, grpc.credentials.createInsecure());
  return new Promise((resolve, reject) => {
    const call = (client as unknown as { ServerReflectionInfo: () => grpc.ClientDuplexStream<unknown, ReflectionResponse> }).ServerReflectionInfo();
    call.on('data', (response: ReflectionResponse) => {
      resolve(response);
      call.end();
      client.close();
    });
    call.on('error', reject);
    call.write(request);
  });
}

const reflects = (address: string) =>
  reflect(address, { listServices: '' }).then(
    () => true,
    (error: grpc.ServiceError) => (error.code === grpc.status.UNIMPLEMENTED ? false : Promise.reject(error)),
  );

describe('gRPC server reflection', () => {
  it.each([
    ['production, unset', { NODE_ENV: 'production', GRPC_REFLECTION: undefined }, false],
    ['production, GRPC_REFLECTION=true', { NODE_ENV: 'production', GRPC_REFLECTION: true }, true],
    ['development, unset', { NODE_ENV: 'development', GRPC_REFLECTION: undefined }, true],
    ['development, GRPC_REFLECTION=false', { NODE_ENV: 'development', GRPC_REFLECTION: false }, false],
  ] as const)('%s (%j): reflection served %s', async (_, overrides, served) => {
    await withServer(overrides, async (server) => expect(await reflects(server.address)).toBe(served));
  });
});

describe('gRPC limits', () => {
  it('advertises GRPC_MAX_CONCURRENT_STREAMS streams per connection in its HTTP/2 settings', async () => {
    await withServer({ GRPC_MAX_CONCURRENT_STREAMS: 7 }, async (server) => {
      const session = http2.connect(`http://${server.address}`);
      const settings = await new Promise<http2.Settings>((resolve) => session.once('remoteSettings', resolve));
      session.close();
      expect(settings.maxConcurrentStreams).toBe(7);
    });
  });

  it('refuses a request message over GRPC_MAX_MESSAGE_BYTES with RESOURCE_EXHAUSTED, and takes one under it', async () => {
    await withServer({ GRPC_MAX_MESSAGE_BYTES: 2_048 }, async (server) => {
      const t = grpcTransport(server.address);
      try {
        expect((await failure(t.call(AuthService, 'login', { username: 'x'.repeat(4_000), password: 'a password' }))).status).toBe(grpc.status.RESOURCE_EXHAUSTED);
        expect((await failure(t.call(AuthService, 'login', { username: 'x'.repeat(1_000), password: 'a password' }))).status).toBe(grpc.status.UNAUTHENTICATED);
      } finally {
        t.close();
      }
    });
  });

  it('refuses metadata over GRPC_MAX_METADATA_BYTES with RESOURCE_EXHAUSTED, and takes metadata under it', async () => {
    await withServer({ GRPC_MAX_METADATA_BYTES: 4_096 }, async (server) => {
      const t = grpcTransport(server.address);
      try {
        const big = await failure(t.call(AuthService, 'login', { username: 'nobody', password: 'a password' }, { metadata: { 'x-padding': 'p'.repeat(5_000) } }));
        expect(big.status).toBe(grpc.status.RESOURCE_EXHAUSTED);
        const small = await failure(t.call(AuthService, 'login', { username: 'nobody', password: 'a password' }, { metadata: { 'x-padding': 'p'.repeat(2_000) } }));
        expect(small.status).toBe(grpc.status.UNAUTHENTICATED);
      } finally {
        t.close();
      }
    });
  });

  it('closes a connection idle for GRPC_MAX_CONNECTION_IDLE_MS with GOAWAY', async () => {
    await withServer({ GRPC_MAX_CONNECTION_IDLE_MS: 300 }, async (server) => {
      const session = http2.connect(`http://${server.address}`);
      const goaway = await new Promise<number>((resolve) => session.once('goaway', (code: number) => resolve(code)));
      session.destroy();
      // The GOAWAY itself is the behaviour; the test's own timeout bounds the wait.
      expect(goaway).toBe(http2.constants.NGHTTP2_NO_ERROR);
    });
  });
});
