import { fromBinary, type DescField, type DescMethod } from '@bufbuild/protobuf';
import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { HealthImplementation, protoPath as healthProtoPath } from 'grpc-health-check';
import type { Registry } from 'prom-client';
import { openBankEdge, type BankEdge, type EdgeServerConfig, type EdgeServerDeps } from '@bank/edge/bank-edge';
import type { CallTransport, UnaryCall } from '@bank/edge/call/call';
import { grpcStatusName } from '@bank/edge/call/interceptors';
import type { Bank } from '@bank/shared/app/bank';
import type { Config } from '@bank/shared/config/config';
import { InvalidArgument } from '@bank/shared/errors/domain-error';
import { createLogger } from '@bank/shared/logging/logger';
import { createRegistry } from '@bank/shared/observability/metrics';
import { startHealthServer } from '@bank/shared/process/health-server';
import { dialAddress, hostPort } from '@bank/shared/process/listen-address';
import { shutdownSequence } from '@bank/shared/process/shutdown';
import { fileDescriptorProtos, fullMethodName, misencodedField, serviceDefinition } from './descriptors.ts';
import { toServiceError } from './grpc-errors.ts';

export type GrpcServer = {
  port: number;
  /** The address it is bound to (HOST unless the caller chose one), and its metrics server's. */
  host: string;
  /** host:port to dial. */
  address: string;
  metricsPort: number;
  metricsHost: string;
  bank: Bank;
  health: HealthImplementation;
  /** Stops taking calls, lets in-flight calls finish (up to SHUTDOWN_TIMEOUT_MS), closes what it opened. */
  close(): Promise<void>;
};

/** The part of the configuration the gRPC process reads besides the use cases' slice. */
export type GrpcConfig = Pick<
  Config,
  | 'NODE_ENV'
  | 'LOG_LEVEL'
  | 'HOST'
  | 'GRPC_PORT'
  | 'METRICS_PORT'
  | 'TRUSTED_PROXIES'
  | 'SHUTDOWN_TIMEOUT_MS'
  | 'GRPC_REFLECTION'
  | 'GRPC_MAX_CONCURRENT_STREAMS'
  | 'GRPC_MAX_MESSAGE_BYTES'
  | 'GRPC_MAX_METADATA_BYTES'
  | 'GRPC_KEEPALIVE_TIME_MS'
  | 'GRPC_KEEPALIVE_TIMEOUT_MS'
  | 'GRPC_MAX_CONNECTION_IDLE_MS'
  | 'GRPC_MAX_CONNECTION_AGE_MS'
  | 'GRPC_MAX_CONNECTION_AGE_GRACE_MS'
> &
  EdgeServerConfig;

/** Server reflection: as GRPC_REFLECTION says, else on everywhere but production. */
export const reflectionEnabled = (config: Pick<Config, 'NODE_ENV' | 'GRPC_REFLECTION'>): boolean => config.GRPC_REFLECTION ?? config.NODE_ENV !== 'production';

/** grpc-js server options: message, stream and connection limits, keepalive. */
export function grpcServerOptions(config: GrpcConfig): grpc.ServerOptions {
  return {
    'grpc.max_receive_message_length': config.GRPC_MAX_MESSAGE_BYTES,
    'grpc.max_send_message_length': config.GRPC_MAX_MESSAGE_BYTES,
    'grpc.max_concurrent_streams': config.GRPC_MAX_CONCURRENT_STREAMS,
    'grpc.keepalive_time_ms': config.GRPC_KEEPALIVE_TIME_MS,
    'grpc.keepalive_timeout_ms': config.GRPC_KEEPALIVE_TIMEOUT_MS,
    'grpc.max_connection_idle_ms': config.GRPC_MAX_CONNECTION_IDLE_MS,
    'grpc.max_connection_age_ms': config.GRPC_MAX_CONNECTION_AGE_MS,
    'grpc.max_connection_age_grace_ms': config.GRPC_MAX_CONNECTION_AGE_GRACE_MS,
  };
}

/** Bytes of a call's metadata as HTTP/2 counts a header list: name, value and 32 per entry. */
export function metadataBytes(metadata: grpc.Metadata): number {
  let total = 0;
  for (const [key, values] of Object.entries(metadata.getMap())) {
    total += key.length + 32 + (Buffer.isBuffer(values) ? values.length : Buffer.byteLength(String(values)));
  }
  return total;
}

export type GrpcServerDeps = EdgeServerDeps & {
  /** How often grpc.health.v1 re-checks the database and Redis. */
  healthIntervalMs?: number;
};

const first = (metadata: grpc.Metadata, key: string): string | undefined => {
  const value = metadata.get(key)[0];
  return typeof value === 'string' ? value : undefined;
};

/** Milliseconds left before the call's deadline, or undefined when it has none. */
function remainingMs(call: grpc.ServerUnaryCall<unknown, unknown>): number | undefined {
  const deadline = call.getDeadline();
  if (deadline === Infinity) return undefined;
  const at = deadline instanceof Date ? deadline.getTime() : Number(deadline);
  return Number.isFinite(at) ? at - Date.now() : undefined;
}

/** The request bytes as the method's input message; a malformed message is INVALID_ARGUMENT naming the field. */
function decodeRequest(method: DescMethod, bytes: Buffer): unknown {
  let request: unknown;
  let misencoded: DescField | undefined;
  try {
    misencoded = misencodedField(method.input, bytes);
    request = fromBinary(method.input, bytes);
  } catch (error) {
    throw InvalidArgument.field('request', `is not a valid ${method.input.typeName} message (${(error as Error).message.slice(0, 100)})`);
  }
  if (misencoded) throw InvalidArgument.field(misencoded.name, `has the wrong wire type for a field of its type in ${method.input.typeName}`);
  return request;
}

/**
 * The call's client signal: aborted when the client cancels (or goes away) before the call is
 * answered. grpc-js emits 'cancelled' whenever the call's stream closes, after an answer too;
 * aborting then would only build an AbortError (a DOMException and its stack, 2.5% of the
 * server's CPU under a transfer load) for a call that is done.
 */
export function clientSignal(call: { readonly cancelled: boolean; once(event: 'cancelled', listener: () => void): unknown }): { signal: AbortSignal; answered(): void } {
  const controller = new AbortController();
  let answered = false;
  if (call.cancelled) controller.abort();
  else call.once('cancelled', () => answered || controller.abort());
  return {
    signal: controller.signal,
    answered: () => {
      answered = true;
    },
  };
}

/** One RPC as a UnaryCall for the edge's chain; the answer or the mapped error goes back to grpc-js. */
function unaryHandler(method: DescMethod, edge: BankEdge, trustedProxies: number, maxMetadataBytes: number) {
  const name = fullMethodName(method);
  const transport: CallTransport = {
    protocol: 'grpc',
    logMessage: 'rpc',
    outcome: (answer) => ({ method: name, status: grpcStatusName(answer) }),
  };
  return (call: grpc.ServerUnaryCall<Buffer, unknown>, callback: grpc.sendUnaryData<unknown>) => {
    // grpc-js has no server option for it (Node's HTTP/2 allows a 64 KiB header list): checked
    // here, before anything of the call is read.
    if (metadataBytes(call.metadata) > maxMetadataBytes) {
      callback({ code: grpc.status.RESOURCE_EXHAUSTED, details: `metadata larger than ${maxMetadataBytes} bytes` });
      return;
    }
    const client = clientSignal(call);
    const trailer = new grpc.Metadata();
    const unary: UnaryCall = {
      transport,
      method,
      header: (key) => first(call.metadata, key),
      setResponseHeader: (key, value) => trailer.set(key, value),
      clientIp: clientAddress(call, trustedProxies),
      deadlineMs: remainingMs(call),
      clientSignal: client.signal,
      decode: async () => decodeRequest(method, call.request),
      requestId: '',
      actor: undefined,
      signal: client.signal,
    };
    edge.handle(unary).then(
      (response) => {
        client.answered();
        callback(null, response, trailer);
      },
      (error: unknown) => {
        client.answered();
        callback(toServiceError(error, unary.requestId).error);
      },
    );
  };
}

/**
 * The gRPC process's composition root: pool, use cases, the edge's chain, every bank service on
 * GRPC_PORT (0 picks a free port) with its limits (grpcServerOptions), server reflection unless
 * turned off (reflectionEnabled), grpc.health.v1, and the /healthz /readyz /metrics server on
 * METRICS_PORT.
 */
export async function startGrpcServer(config: GrpcConfig, deps: GrpcServerDeps = {}): Promise<GrpcServer> {
  const logger = deps.logger ?? createLogger({ name: 'grpc', level: config.LOG_LEVEL });
  const registry: Registry = deps.registry ?? createRegistry('grpc');
  const { bank, edge, release } = await openBankEdge(config, deps, { logger, registry, process: 'grpc' });
  const host = deps.host ?? config.HOST;

  const server = new grpc.Server(grpcServerOptions(config));
  for (const service of edge.services) {
    const implementation: grpc.UntypedServiceImplementation = {};
    for (const method of service.methods) implementation[method.name] = unaryHandler(method, edge, config.TRUSTED_PROXIES, config.GRPC_MAX_METADATA_BYTES);
    server.addService(serviceDefinition(service), implementation);
  }

  const health = new HealthImplementation({ '': 'NOT_SERVING', ...Object.fromEntries(edge.services.map((s) => [s.typeName, 'NOT_SERVING'])) });
  health.addToServer(server);
  if (reflectionEnabled(config)) {
    const healthPackage = loadSync(healthProtoPath, { includeDirs: [] });
    new ReflectionService({
      ...healthPackage,
      'bank.v1': { format: 'Protocol Buffer 3 FileDescriptorProto', fileDescriptorProtos: fileDescriptorProtos(edge.services) } as never,
    }).addToServer(server);
  }

  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(hostPort(host, config.GRPC_PORT), grpc.ServerCredentials.createInsecure(), (error, bound) => (error ? reject(error) : resolve(bound)));
  });
  const healthServer = await startHealthServer({ port: config.METRICS_PORT, host, readiness: bank.readiness, registry });

  const refreshHealth = async () => {
    const { ready } = await bank.readiness();
    const status = ready ? 'SERVING' : 'NOT_SERVING';
    health.setStatus('', status);
    for (const service of edge.services) health.setStatus(service.typeName, status);
  };
  await refreshHealth();
  const healthTimer = setInterval(() => void refreshHealth(), deps.healthIntervalMs ?? 5_000);
  healthTimer.unref();
  logger.info({ host, port, metricsPort: healthServer.port }, 'gRPC server listening');

  const stopServing = () =>
    new Promise<void>((resolve) => {
      clearInterval(healthTimer);
      health.setStatus('', 'NOT_SERVING');
      const timer = setTimeout(() => {
        server.forceShutdown();
        resolve();
      }, config.SHUTDOWN_TIMEOUT_MS);
      server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  return {
    port,
    host,
    address: dialAddress(host, port),
    metricsPort: healthServer.port,
    metricsHost: healthServer.host,
    bank,
    health,
    close: shutdownSequence(
      [
        ['grpc server', stopServing],
        ['health server', () => healthServer.close()],
        ...release,
      ],
      logger,
      'gRPC server stopped',
    ),
  };
}

/**
 * The caller's address: the peer, or behind `trustedProxies` proxies the X-Forwarded-For entry
 * that many hops from the right (the one the outermost trusted proxy appended; anything before it
 * is whatever the client sent). With fewer entries than hops, the first (as Koa does).
 */
export function clientAddress(call: { getPeer(): string; metadata: grpc.Metadata }, trustedProxies: number): string {
  if (trustedProxies > 0) {
    const entries = call.metadata.get('x-forwarded-for').map(String).join(',').split(',').map((part) => part.trim()).filter(Boolean);
    const entry = entries.at(-Math.min(trustedProxies, entries.length));
    if (entry) return entry;
  }
  return call.getPeer();
}
