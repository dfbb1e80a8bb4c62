// The same operations over both transports, so one scenario runs against HTTP and gRPC alike.
// HTTP goes through the generated typed REST client; gRPC through a client built from the same
// protobuf-es descriptors.
import { create, fromBinary, type MessageInitShape, type MessageShape } from '@bufbuild/protobuf';
import type { GenService, GenServiceMethods } from '@bufbuild/protobuf/codegenv2';
import { anyUnpack } from '@bufbuild/protobuf/wkt';
import * as grpc from '@grpc/grpc-js';
import { AccountService } from '@bank/proto/bank/v1/account_service_pb';
import { AuditService } from '@bank/proto/bank/v1/audit_service_pb';
import { AuthService } from '@bank/proto/bank/v1/auth_service_pb';
import { PasswordService } from '@bank/proto/bank/v1/password_service_pb';
import { BankRestClient, RestError } from '@bank/proto/bank/v1/rest_client';
import { TransferService } from '@bank/proto/bank/v1/transfer_service_pb';
import { UserService } from '@bank/proto/bank/v1/user_service_pb';
import { WebhookService } from '@bank/proto/bank/v1/webhook_service_pb';
import { BadRequestSchema, ErrorInfoSchema } from '@bank/proto/google/rpc/error_details_pb';
import { StatusSchema } from '@bank/proto/google/rpc/status_pb';
import { serviceDefinition } from '@bank/grpc/descriptors';

export type TransportName = 'http' | 'grpc';

/** A failure as either transport reports it. */
export class CallFailed extends Error {
  readonly transport: TransportName;
  /** HTTP status, or gRPC status code. */
  readonly status: number;
  /** The stable bank error code (problem `code` / ErrorInfo reason). */
  readonly code: string;
  readonly fieldViolations: { field: string; description: string }[];
  /** The facts the refusal carries (`limit`, `remaining`...): problem extension members / ErrorInfo metadata. */
  readonly facts: Record<string, string>;
  constructor(
    transport: TransportName,
    status: number,
    code: string,
    message: string,
    fieldViolations: { field: string; description: string }[],
    facts: Record<string, string> = {},
  ) {
    super(`${transport} ${status} ${code}: ${message}`);
    this.transport = transport;
    this.status = status;
    this.code = code;
    this.fieldViolations = fieldViolations;
    this.facts = facts;
  }
}

type AnyService = GenService<GenServiceMethods>;
type Input<S extends AnyService, K extends keyof S['method']> = MessageInitShape<S['method'][K]['input']>;
type Output<S extends AnyService, K extends keyof S['method']> = MessageShape<S['method'][K]['output']>;
export type CallOptions = { token?: string | undefined; deadlineMs?: number; metadata?: Record<string, string> };

export type Transport = {
  name: TransportName;
  call<S extends AnyService, K extends keyof S['method'] & string>(service: S, method: K, request: Input<S, K>, options?: CallOptions): Promise<Output<S, K>>;
  close(): void;
};

const REST_PROPERTY = new Map<string, 'user' | 'auth' | 'password' | 'account' | 'transfer' | 'audit' | 'webhook'>([
  [UserService.typeName, 'user'],
  [AuthService.typeName, 'auth'],
  [PasswordService.typeName, 'password'],
  [AccountService.typeName, 'account'],
  [TransferService.typeName, 'transfer'],
  [AuditService.typeName, 'audit'],
  [WebhookService.typeName, 'webhook'],
]);

export function httpTransport(baseUrl: string): Transport & { client: BankRestClient } {
  const client = new BankRestClient({ baseUrl });
  return {
    name: 'http',
    client,
    async call(service, method, request, options = {}) {
      const group = client[REST_PROPERTY.get(service.typeName) ?? 'user'] as unknown as Record<string, (req: unknown, opts: unknown) => Promise<unknown>>;
      const fn = group[method];
      if (!fn) throw new Error(`no REST method ${service.typeName}.${method}`);
      try {
        return (await fn.call(group, request, { accessToken: options.token, headers: options.metadata })) as never;
      } catch (error) {
        if (error instanceof RestError) throw new CallFailed('http', error.status, error.code, error.detail, error.errors, { ...error.extensions });
        throw error;
      }
    },
    close() {},
  };
}

/** Decodes the google.rpc.Status in grpc-status-details-bin; `facts` is the ErrorInfo metadata less the request id. */
export function grpcStatusDetails(error: grpc.ServiceError): {
  reason: string;
  fieldViolations: { field: string; description: string }[];
  facts: Record<string, string>;
} {
  const bin = error.metadata?.get('grpc-status-details-bin')[0];
  if (!bin || typeof bin === 'string') return { reason: '', fieldViolations: [], facts: {} };
  const status = fromBinary(StatusSchema, bin);
  let reason = '';
  let facts: Record<string, string> = {};
  const fieldViolations: { field: string; description: string }[] = [];
  for (const any of status.details) {
    const info = anyUnpack(any, ErrorInfoSchema);
    if (info) {
      reason = info.reason;
      const { requestId: _requestId, ...rest } = info.metadata;
      facts = rest;
    }
    const bad = anyUnpack(any, BadRequestSchema);
    if (bad) fieldViolations.push(...bad.fieldViolations.map((v) => ({ field: v.field, description: v.description })));
  }
  return { reason, fieldViolations, facts };
}

export function grpcTransport(address: string): Transport {
  const clients = new Map<string, grpc.Client & Record<string, unknown>>();
  const clientFor = (service: AnyService) => {
    let client = clients.get(service.typeName);
    if (!client) {
      const Ctor = grpc.makeGenericClientConstructor(serviceDefinition(service), service.name);
      client = new Ctor(address, grpc.credentials.createInsecure()) as grpc.Client & Record<string, unknown>;
      clients.set(service.typeName, client);
    }
    return client;
  };
  return {
    name: 'grpc',
    call(service, method, request, options = {}) {
      const desc = service.methods.find((m) => m.localName === method);
      if (!desc) throw new Error(`no RPC ${service.typeName}.${method}`);
      const client = clientFor(service);
      const metadata = new grpc.Metadata();
      if (options.token) metadata.set('authorization', `Bearer ${options.token}`);
      for (const [key, value] of Object.entries(options.metadata ?? {})) metadata.set(key, value);
      const message = create(desc.input, request as never);
      return new Promise((resolve, reject) => {
        const fn = client[desc.name] as (req: unknown, md: grpc.Metadata, opts: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r: unknown) => void) => void;
        fn.call(client, message, metadata, { deadline: Date.now() + (options.deadlineMs ?? 15_000) }, (error, response) => {
          if (error) {
            const details = grpcStatusDetails(error);
            reject(new CallFailed('grpc', error.code, details.reason || grpc.status[error.code] || '', error.details, details.fieldViolations, details.facts));
          } else resolve(response as never);
        });
      });
    },
    close() {
      for (const client of clients.values()) client.close();
    },
  };
}

/** The CallFailed a call ends in; fails the test when the call succeeds or fails otherwise. */
export async function failure(promise: Promise<unknown>): Promise<CallFailed> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof CallFailed) return error;
    throw error;
  }
  throw new Error('expected the call to fail');
}
