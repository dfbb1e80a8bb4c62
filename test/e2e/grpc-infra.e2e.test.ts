// What grpcurl, Evans and Kubernetes rely on: reflection, grpc.health.v1, deadlines, the metrics
// port, and a graceful shutdown that finishes in-flight calls.
import { createRequire } from 'node:module';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { fromBinary } from '@bufbuild/protobuf';
import { FileDescriptorProtoSchema } from '@bufbuild/protobuf/wkt';
import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { service as healthService } from 'grpc-health-check';
import { AccountService } from '@bank/proto/bank/v1/account_service_pb';
import { AuthService } from '@bank/proto/bank/v1/auth_service_pb';
import { startGrpcServer } from '@bank/grpc/grpc-server';
import { holdAccountLock, idemKey } from '../factories.ts';
import { signUpAndLogIn } from './flows.ts';
import { startStack, type Stack } from './harness.ts';
import type { CallFailed} from './transports.ts';
import { grpcTransport, httpTransport } from './transports.ts';

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => {
  await stack?.stop();
});

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

function healthCheck(address: string, serviceName: string): Promise<string> {
  const Client = grpc.makeGenericClientConstructor(healthService as grpc.ServiceDefinition, 'Health');
  const client = new Client(address, grpc.credentials.createInsecure()) as grpc.Client & Record<string, (...args: unknown[]) => void>;
  return new Promise((resolve, reject) => {
    client.check!({ service: serviceName }, (error: grpc.ServiceError | null, response: { status: string }) => {
      client.close();
      if (error) reject(error);
      else resolve(response.status);
    });
  });
}

describe('gRPC server infrastructure', () => {
  it('lists every service through the reflection API, as grpcurl list does', async () => {
    const response = await reflect(stack.grpc.address, { listServices: '' });
    const names = (response.listServicesResponse?.service ?? []).map((s) => s.name).sort();
    expect(names).toEqual(
      expect.arrayContaining(['bank.v1.AccountService', 'bank.v1.AuthService', 'bank.v1.TransferService', 'bank.v1.UserService', 'grpc.health.v1.Health']),
    );
  });

  it('describes a service by symbol, as grpcurl describe does', async () => {
    const response = await reflect(stack.grpc.address, { fileContainingSymbol: 'bank.v1.TransferService' });
    const files = (response.fileDescriptorResponse?.fileDescriptorProto ?? []).map((bin) => fromBinary(FileDescriptorProtoSchema, bin));
    const file = files.find((f) => f.service.some((s) => s.name === 'TransferService'));
    expect(file?.service.find((s) => s.name === 'TransferService')?.method.map((m) => m.name)).toEqual([
      'CreateTransfer',
      'GetTransfer',
      'ListTransfers',
      'CaptureTransfer',
      'VoidTransfer',
      'ReverseTransfer',
      'RefundTransfer',
    ]);
  });

  it('answers grpc.health.v1 Check for the server and each service', async () => {
    expect(await healthCheck(stack.grpc.address, '')).toBe('SERVING');
    expect(await healthCheck(stack.grpc.address, 'bank.v1.AccountService')).toBe('SERVING');
  });

  it('honours deadlines: a call that cannot finish in time gets DEADLINE_EXCEEDED', async () => {
    const t = grpcTransport(stack.grpc.address);
    const error = await t.call(AuthService, 'login', { username: 'nobody_here', password: 'whatever password' }, { deadlineMs: 1 }).then(
      () => undefined,
      (e: unknown) => e as CallFailed,
    );
    t.close();
    expect(error?.status).toBe(grpc.status.DEADLINE_EXCEEDED);
  });

  it('serves /healthz, /readyz and /metrics on METRICS_PORT', async () => {
    const t = grpcTransport(stack.grpc.address);
    await t.call(AccountService, 'listAccounts', {}).catch(() => undefined);
    t.close();
    const base = `http://127.0.0.1:${stack.grpc.metricsPort}`;
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    const ready = await fetch(`${base}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ ready: true, checks: { database: 'ok', redis: 'ok' } });
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toMatch(/grpc_server_handled_total\{[^}]*method="bank.v1.AccountService.ListAccounts"[^}]*code="UNAUTHENTICATED"[^}]*\} 1/);
    expect(metrics).toContain('grpc_server_handling_seconds_bucket');
  });

  it('shuts down gracefully: an in-flight call finishes, new calls are refused', async () => {
    const http = httpTransport(stack.api.url);
    const user = await signUpAndLogIn(http, stack.smtp);
    const server = await startGrpcServer({ ...stack.config, GRPC_PORT: 0, METRICS_PORT: 0 }, { bank: stack.api.bank, host: '127.0.0.1', logger: stack.logger });
    const t = grpcTransport(server.address);
    const account = await t.call(AccountService, 'openAccount', { currency: 'CHF' }, { token: user.accessToken });
    // Hold the account's row lock so the deposit is still in flight when close() starts.
    const lock = await holdAccountLock(stack.db.pool, account.id);
    const inFlight = t.call(AccountService, 'deposit', { accountId: account.id, amount: 700n, idempotencyKey: idemKey() }, { token: user.accessToken });
    await new Promise((resolve) => setTimeout(resolve, 100));
    const closing = server.close();
    await new Promise((resolve) => setTimeout(resolve, 100));
    await lock.release();
    const answer = await inFlight;
    expect(answer.balance).toBe(700n);
    await closing;
    const after = await t.call(AccountService, 'listAccounts', {}, { token: user.accessToken, deadlineMs: 2_000 }).then(
      () => 'answered',
      (e: unknown) => (e as CallFailed).status,
    );
    expect(after).toBe(grpc.status.UNAVAILABLE);
    t.close();
    // The shared use cases (owned by the API server) are still usable.
    expect((await stack.api.bank.readiness()).ready).toBe(true);
  });
});
