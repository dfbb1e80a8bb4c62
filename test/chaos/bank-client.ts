// The chaos clients: one call shape over HTTP (the generated REST client) and gRPC (grpc-js with
// short reconnect backoffs, so a restarted server is found again within ~0.5 s rather than
// grpc-js's default of up to two minutes), every failure sorted into what a client may do about it,
// and the retry loop of a well-behaved client: same key, same body, after a 503 or a timeout (after
// a shed call's Retry-After at the earliest).
import { create, fromBinary, type MessageInitShape, type MessageShape } from '@bufbuild/protobuf';
import type { GenService, GenServiceMethods } from '@bufbuild/protobuf/codegenv2';
import { anyUnpack } from '@bufbuild/protobuf/wkt';
import * as grpc from '@grpc/grpc-js';
import { AccountService } from '@bank/proto/bank/v1/account_service_pb';
import { AuthService } from '@bank/proto/bank/v1/auth_service_pb';
import { BankRestClient, RestError } from '@bank/proto/bank/v1/rest_client';
import { TransferService } from '@bank/proto/bank/v1/transfer_service_pb';
import { UserService } from '@bank/proto/bank/v1/user_service_pb';
import { RetryInfoSchema } from '@bank/proto/google/rpc/error_details_pb';
import { StatusSchema } from '@bank/proto/google/rpc/status_pb';
import { serviceDefinition } from '@bank/grpc/descriptors';
import { grpcStatusDetails } from '../e2e/transports.ts';

export type Protocol = 'http' | 'grpc';

/**
 * What one attempt came to. `unavailable` (503 / UNAVAILABLE), `timeout` (the client's own
 * deadline), `network` (refused or dropped connection) and `rate-limited` are worth a retry;
 * `server-error` is any other 5xx or gRPC INTERNAL/UNKNOWN/DATA_LOSS, the answers a bank must never
 * give (retried too: the client cannot know whether it happened); `refused` is a final answer.
 */
export type FailureKind = 'unavailable' | 'timeout' | 'network' | 'rate-limited' | 'server-error' | 'refused';

/** The bank's code of a call refused by load shedding (503 / UNAVAILABLE), before any work started. */
export const OVERLOADED = 'OVERLOADED';

export class AttemptFailed extends Error {
  readonly kind: FailureKind;
  /** `http 503`, `grpc UNAVAILABLE`, `timeout`, `network ECONNREFUSED`... */
  readonly label: string;
  /** The bank's error code of a refusal (INSUFFICIENT_FUNDS...). */
  readonly code: string;
  /** How long the server asked the client to wait before a retry (Retry-After / RetryInfo), if it did. */
  readonly retryAfterMs: number | undefined;
  constructor(kind: FailureKind, label: string, code: string, message: string, retryAfterMs?: number) {
    super(`${label} ${code}: ${message}`);
    this.kind = kind;
    this.label = label;
    this.code = code;
    this.retryAfterMs = retryAfterMs;
  }
}

type AnyService = GenService<GenServiceMethods>;
type Input<S extends AnyService, K extends keyof S['method']> = MessageInitShape<S['method'][K]['input']>;
type Output<S extends AnyService, K extends keyof S['method']> = MessageShape<S['method'][K]['output']>;

const REST_GROUP = new Map<string, 'user' | 'auth' | 'account' | 'transfer'>([
  [UserService.typeName, 'user'],
  [AuthService.typeName, 'auth'],
  [AccountService.typeName, 'account'],
  [TransferService.typeName, 'transfer'],
]);

const GRPC_SERVER_ERRORS = new Set<number>([grpc.status.INTERNAL, grpc.status.UNKNOWN, grpc.status.DATA_LOSS, grpc.status.UNIMPLEMENTED]);

function networkCode(error: unknown): string {
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 4; e = e.cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
  }
  return error instanceof Error ? error.message : String(error);
}

/** Retry-After in seconds (the only form the bank sends) as milliseconds; undefined when absent or unreadable. */
export function retryAfterMs(header: string | null | undefined): number | undefined {
  if (header === null || header === undefined || !/^\s*\d+\s*$/.test(header)) return undefined;
  return Number(header.trim()) * 1_000;
}

/** `retryAfterMs`: the 503's Retry-After, read by the client's fetch (RestError keeps no headers). */
export function httpFailure(error: unknown, retryAfter?: number): AttemptFailed {
  if (error instanceof RestError) {
    if (error.status === 503) return new AttemptFailed('unavailable', 'http 503', error.code, error.detail, retryAfter);
    if (error.status === 429) return new AttemptFailed('rate-limited', 'http 429', error.code, error.detail);
    if (error.status >= 500) return new AttemptFailed('server-error', `http ${error.status}`, error.code, error.detail);
    return new AttemptFailed('refused', `http ${error.status}`, error.code, error.detail);
  }
  if (error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError')) return new AttemptFailed('timeout', 'timeout', 'TIMEOUT', error.message);
  if (error instanceof TypeError) return new AttemptFailed('network', `network ${networkCode(error)}`, 'NETWORK', error.message);
  // A 2xx whose body is not the message: the server answered something it should not have.
  return new AttemptFailed('server-error', 'http bad answer', 'BAD_ANSWER', error instanceof Error ? error.message : String(error));
}

/** The RetryInfo delay of a gRPC error's google.rpc.Status details, in milliseconds. */
export function grpcRetryDelayMs(error: grpc.ServiceError): number | undefined {
  const bin = error.metadata?.get('grpc-status-details-bin')[0];
  if (!bin || typeof bin === 'string') return undefined;
  try {
    for (const any of fromBinary(StatusSchema, bin).details) {
      const info = anyUnpack(any, RetryInfoSchema);
      if (info?.retryDelay) return Number(info.retryDelay.seconds) * 1_000 + Math.round(info.retryDelay.nanos / 1e6);
    }
  } catch {
    return undefined;
  }
  return undefined;
}

export function grpcFailure(error: grpc.ServiceError): AttemptFailed {
  const name = grpc.status[error.code] ?? String(error.code);
  const reason = grpcStatusDetails(error).reason || name;
  const label = `grpc ${name}`;
  if (error.code === grpc.status.UNAVAILABLE) return new AttemptFailed('unavailable', label, reason, error.details, grpcRetryDelayMs(error));
  if (error.code === grpc.status.DEADLINE_EXCEEDED) return new AttemptFailed('timeout', 'timeout', 'TIMEOUT', error.details);
  if (error.code === grpc.status.CANCELLED) return new AttemptFailed('network', label, reason, error.details);
  if (error.code === grpc.status.RESOURCE_EXHAUSTED && reason === 'RATE_LIMITED') return new AttemptFailed('rate-limited', label, reason, error.details);
  if (GRPC_SERVER_ERRORS.has(error.code)) return new AttemptFailed('server-error', label, reason, error.details);
  return new AttemptFailed('refused', label, reason, error.details);
}

export type CallOptions = { token?: string | undefined; timeoutMs: number };

export type BankClient = {
  call<S extends AnyService, K extends keyof S['method'] & string>(
    protocol: Protocol,
    service: S,
    method: K,
    request: Input<S, K>,
    options: CallOptions,
  ): Promise<Output<S, K>>;
  close(): void;
};

/** Throws AttemptFailed for every failure. */
export function createBankClient(target: { httpUrl: string; grpcAddress: string }): BankClient {
  // Each call has a signal of its own: the Retry-After of its 503, kept by the signal it was sent with.
  const retryAfterBySignal = new WeakMap<AbortSignal, number>();
  const rest = new BankRestClient({
    baseUrl: target.httpUrl,
    fetch: async (input, init) => {
      const response = await fetch(input, init);
      const after = response.status === 503 ? retryAfterMs(response.headers.get('retry-after')) : undefined;
      if (after !== undefined && init?.signal) retryAfterBySignal.set(init.signal, after);
      return response;
    },
  });
  const grpcClients = new Map<string, grpc.Client & Record<string, unknown>>();
  const grpcClient = (service: AnyService) => {
    let client = grpcClients.get(service.typeName);
    if (!client) {
      const Ctor = grpc.makeGenericClientConstructor(serviceDefinition(service), service.name);
      client = new Ctor(target.grpcAddress, grpc.credentials.createInsecure(), {
        'grpc.initial_reconnect_backoff_ms': 100,
        'grpc.max_reconnect_backoff_ms': 500,
      }) as grpc.Client & Record<string, unknown>;
      grpcClients.set(service.typeName, client);
    }
    return client;
  };

  return {
    async call(protocol, service, method, request, options) {
      if (protocol === 'http') {
        const group = rest[REST_GROUP.get(service.typeName) ?? 'user'] as unknown as Record<string, (req: unknown, opts: unknown) => Promise<unknown>>;
        const fn = group[method];
        if (!fn) throw new Error(`no REST method ${service.typeName}.${method}`);
        const signal = AbortSignal.timeout(options.timeoutMs);
        try {
          return (await fn.call(group, request, { accessToken: options.token, signal })) as never;
        } catch (error) {
          throw httpFailure(error, retryAfterBySignal.get(signal));
        }
      }
      const desc = service.methods.find((m) => m.localName === method);
      if (!desc) throw new Error(`no RPC ${service.typeName}.${method}`);
      const client = grpcClient(service);
      const metadata = new grpc.Metadata();
      if (options.token) metadata.set('authorization', `Bearer ${options.token}`);
      const message = create(desc.input, request as never);
      return new Promise((resolve, reject) => {
        const fn = client[desc.name] as (req: unknown, md: grpc.Metadata, opts: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r: unknown) => void) => void;
        fn.call(client, message, metadata, { deadline: Date.now() + options.timeoutMs }, (error, response) => {
          if (error) reject(grpcFailure(error));
          else resolve(response as never);
        });
      });
    },
    close() {
      for (const client of grpcClients.values()) client.close();
    },
  };
}

/**
 * Every attempt the suite made, for the 5xx check and the per-fault counts. `abandoned` is an
 * impatient first attempt that ran out of its short deadline (the client's doing, not the bank's).
 */
export type AttemptRecord = {
  at: number;
  protocol: Protocol;
  op: string;
  kind: 'ok' | 'abandoned' | FailureKind;
  label: string;
  /** Of a failure: the bank's code (OVERLOADED: shed by load shedding; UNAVAILABLE: a store is down...). */
  code?: string;
  /** Of a 503 / UNAVAILABLE: the Retry-After (RetryInfo) it carried, when it did. */
  retryAfterMs?: number;
  detail?: string;
};

export type RetryPolicy = {
  /** Each attempt's own deadline. */
  timeoutMs: number;
  /** The first attempt's deadline when shorter: its answer is lost while the server may commit. */
  firstTimeoutMs?: number;
  /** Backoff before retry n: a random share of min(maxMs, baseMs * 2^n). */
  backoffBaseMs: number;
  backoffMaxMs: number;
  /** The client gives up this long after the first attempt. */
  giveUpAfterMs: number;
  /** Whether 429 is worth a retry (money) or a final answer (a login's rate limit). */
  retryRateLimited: boolean;
  /**
   * Whether a call shed by load shedding (OVERLOADED) is retried no sooner than its Retry-After,
   * as a careful client does (the storm). The canaries leave it off: they measure when the bank
   * answers again, and an outage's 503 is always retried on the backoff.
   */
  honourRetryAfter?: boolean;
};

export type Final<T> =
  | { status: 'acknowledged'; value: T; attempts: number }
  | { status: 'refused'; code: string; label: string; attempts: number }
  | { status: 'gave-up'; label: string; code: string; attempts: number };

/**
 * Sends `attempt` until it answers, is refused, or the policy gives up; `attempt` must send the
 * same request (key and body) every time. Each attempt is recorded.
 */
export async function withRetries<T>(
  op: string,
  protocol: Protocol,
  policy: RetryPolicy,
  record: (entry: AttemptRecord) => void,
  attempt: (timeoutMs: number) => Promise<T>,
): Promise<Final<T>> {
  const started = Date.now();
  for (let n = 0; ; n++) {
    const timeoutMs = n === 0 && policy.firstTimeoutMs !== undefined ? policy.firstTimeoutMs : policy.timeoutMs;
    try {
      const value = await attempt(timeoutMs);
      record({ at: Date.now(), protocol, op, kind: 'ok', label: 'ok' });
      return { status: 'acknowledged', value, attempts: n + 1 };
    } catch (error) {
      if (!(error instanceof AttemptFailed)) throw error;
      const abandoned = error.kind === 'timeout' && timeoutMs < policy.timeoutMs;
      record({
        at: Date.now(),
        protocol,
        op,
        kind: abandoned ? 'abandoned' : error.kind,
        label: error.label,
        code: error.code,
        ...(error.retryAfterMs !== undefined ? { retryAfterMs: error.retryAfterMs } : {}),
        ...(error.kind === 'server-error' ? { detail: error.message } : {}),
      });
      if (error.kind === 'refused' || (error.kind === 'rate-limited' && !policy.retryRateLimited)) {
        return { status: 'refused', code: error.code, label: error.label, attempts: n + 1 };
      }
      if (Date.now() - started >= policy.giveUpAfterMs) return { status: 'gave-up', label: error.label, code: error.code, attempts: n + 1 };
      // A 503 is retried like a timeout: with the same key, so a retry never moves money twice.
      const ceiling = Math.min(policy.backoffMaxMs, policy.backoffBaseMs * 2 ** n);
      const backoff = ceiling / 2 + Math.random() * (ceiling / 2);
      const asked = policy.honourRetryAfter && error.code === OVERLOADED ? (error.retryAfterMs ?? 0) : 0;
      await new Promise((resolve) => setTimeout(resolve, Math.max(backoff, asked)));
    }
  }
}
