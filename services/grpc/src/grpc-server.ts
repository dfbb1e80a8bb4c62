import { randomUUID } from 'node:crypto';
import { fromBinary, type DescField, type DescMethod } from '@bufbuild/protobuf';
import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { HealthImplementation, protoPath as healthProtoPath } from 'grpc-health-check';
import { Counter, Histogram, type Registry } from 'prom-client';
import { createContainer, type Container, type ContainerOverrides } from '@bank/shared/app/container';
import type { Config } from '@bank/shared/config/config';
import { authenticateCall } from '@bank/shared/edge/authenticate';
import { BANK_SERVICES, createBankHandlers, type BoundHandler } from '@bank/shared/edge/handlers';
import { InvalidArgument } from '@bank/shared/errors/domain-error';
import { createLogger, type Logger } from '@bank/shared/logging/logger';
import { createRegistry } from '@bank/shared/observability/metrics';
import { fileDescriptorProtos, fullMethodName, misencodedField, serviceDefinition } from './descriptors.ts';
import { toServiceError } from './grpc-errors.ts';
import { startMetricsServer } from './metrics-server.ts';

export type GrpcServer = {
  port: number;
  /** host:port to dial. */
  address: string;
  metricsPort: number;
  container: Container;
  health: HealthImplementation;
  /** Stops taking calls, lets in-flight calls finish (up to SHUTDOWN_TIMEOUT_MS), closes pools. */
  close(): Promise<void>;
};

export type GrpcServerOverrides = ContainerOverrides & {
  container?: Container;
  host?: string;
  /** How often grpc.health.v1 re-checks the database and Redis. */
  healthIntervalMs?: number;
};

class DeadlineExceeded extends Error {}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
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

function withDeadline<T>(work: Promise<T>, ms: number | undefined): Promise<T> {
  if (ms === undefined) return work;
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    work,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new DeadlineExceeded()), Math.max(0, ms));
    }),
  ]).finally(() => clearTimeout(timer));
}

/**
 * The one wrapper every RPC goes through: request id, deadline, authentication from
 * `authorization: Bearer` metadata, decoding, the shared handler, error mapping, metrics, logs.
 */
function unaryHandler(method: DescMethod, handle: BoundHandler, container: Container, logger: Logger, metrics: { requests: Counter; latency: Histogram }) {
  const name = fullMethodName(method);
  return (call: grpc.ServerUnaryCall<Buffer, unknown>, callback: grpc.sendUnaryData<unknown>) => {
    const started = performance.now();
    const incoming = first(call.metadata, 'x-request-id') ?? '';
    const requestId = REQUEST_ID.test(incoming) ? incoming : randomUUID();
    let user: string | undefined;
    const finish = (code: number, errorCode?: string) => {
      const labels = { method: name, code: grpc.status[code] ?? String(code) };
      metrics.requests.inc(labels);
      metrics.latency.observe(labels, (performance.now() - started) / 1_000);
      // `status`, not `code`: the logger redacts `code` everywhere (login codes must never be logged).
      const line = { requestId, user, method: name, status: labels.code, errorCode, ms: Math.round(performance.now() - started) };
      if (code === grpc.status.INTERNAL) logger.error(line, 'rpc');
      else logger.info(line, 'rpc');
    };
    const run = async () => {
      const actor = await authenticateCall(method, first(call.metadata, 'authorization'), (token) => container.sessions.authenticate(token));
      user = actor?.username;
      let request: unknown;
      let misencoded: DescField | undefined;
      try {
        misencoded = misencodedField(method.input, call.request);
        request = fromBinary(method.input, call.request);
      } catch (error) {
        throw InvalidArgument.field('request', `is not a valid ${method.input.typeName} message (${(error as Error).message.slice(0, 100)})`);
      }
      if (misencoded) throw InvalidArgument.field(misencoded.name, `has the wrong wire type for a field of its type in ${method.input.typeName}`);
      return handle(request, {
        actor,
        requestId,
        clientIp: clientAddress(call, container.config.TRUST_PROXY),
        userAgent: first(call.metadata, 'user-agent'),
      });
    };
    const left = remainingMs(call);
    if ((left !== undefined && left <= 0) || call.cancelled) {
      finish(grpc.status.DEADLINE_EXCEEDED);
      callback({ code: grpc.status.DEADLINE_EXCEEDED, details: 'deadline exceeded before the call started' });
      return;
    }
    withDeadline(run(), left).then(
      (response) => {
        finish(grpc.status.OK);
        const trailer = new grpc.Metadata();
        trailer.set('x-request-id', requestId);
        callback(null, response, trailer);
      },
      (error: unknown) => {
        if (error instanceof DeadlineExceeded) {
          finish(grpc.status.DEADLINE_EXCEEDED);
          callback({ code: grpc.status.DEADLINE_EXCEEDED, details: 'deadline exceeded' });
          return;
        }
        const { error: serviceError, answer } = toServiceError(error, requestId);
        if (answer.internal) logger.error({ err: error, requestId, method: name }, 'internal error');
        finish(answer.grpc, answer.code);
        callback(serviceError);
      },
    );
  };
}

/**
 * Starts the gRPC server on GRPC_PORT (0 picks a free port) with every bank service, server
 * reflection, grpc.health.v1, and the /healthz /readyz /metrics HTTP server on METRICS_PORT.
 */
export async function startGrpcServer(config: Config, overrides: GrpcServerOverrides = {}): Promise<GrpcServer> {
  const logger = overrides.logger ?? createLogger({ name: 'grpc', level: config.LOG_LEVEL });
  const registry: Registry = overrides.registry ?? createRegistry('grpc');
  const ownsContainer = overrides.container === undefined;
  const container = overrides.container ?? (await createContainer(config, { ...overrides, logger, registry }));
  const metrics = {
    requests: new Counter({ name: 'grpc_server_handled_total', help: 'RPCs by method and status code.', labelNames: ['method', 'code'], registers: [registry] }),
    latency: new Histogram({
      name: 'grpc_server_handling_seconds',
      help: 'RPC latency by method and status code.',
      labelNames: ['method', 'code'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
  };

  const server = new grpc.Server({ 'grpc.max_receive_message_length': 1024 * 1024 });
  const handlers = createBankHandlers(container);
  for (const service of BANK_SERVICES) {
    const implementation: grpc.UntypedServiceImplementation = {};
    for (const method of service.methods) {
      const handler = handlers.get(fullMethodName(method));
      if (!handler) throw new Error(`no handler for ${fullMethodName(method)}`);
      implementation[method.name] = unaryHandler(method, handler.handle, container, logger, metrics);
    }
    server.addService(serviceDefinition(service), implementation);
  }

  const health = new HealthImplementation({ '': 'NOT_SERVING', ...Object.fromEntries(BANK_SERVICES.map((s) => [s.typeName, 'NOT_SERVING'])) });
  health.addToServer(server);
  const healthPackage = loadSync(healthProtoPath, { includeDirs: [] });
  new ReflectionService({
    ...healthPackage,
    'bank.v1': { format: 'Protocol Buffer 3 FileDescriptorProto', fileDescriptorProtos: fileDescriptorProtos(BANK_SERVICES) } as never,
  }).addToServer(server);

  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(`${overrides.host ?? '0.0.0.0'}:${config.GRPC_PORT}`, grpc.ServerCredentials.createInsecure(), (error, bound) =>
      error ? reject(error) : resolve(bound),
    );
  });
  const metricsServer = await startMetricsServer(container, registry, config.METRICS_PORT, overrides.host ?? '0.0.0.0');

  const refreshHealth = async () => {
    const { ready } = await container.checkReadiness();
    const status = ready ? 'SERVING' : 'NOT_SERVING';
    health.setStatus('', status);
    for (const service of BANK_SERVICES) health.setStatus(service.typeName, status);
  };
  await refreshHealth();
  const healthTimer = setInterval(() => void refreshHealth(), overrides.healthIntervalMs ?? 5_000);
  healthTimer.unref();
  logger.info({ port, metricsPort: metricsServer.port }, 'gRPC server listening');

  let closing: Promise<void> | undefined;
  return {
    port,
    address: `127.0.0.1:${port}`,
    metricsPort: metricsServer.port,
    container,
    health,
    close() {
      closing ??= (async () => {
        clearInterval(healthTimer);
        health.setStatus('', 'NOT_SERVING');
        await new Promise<void>((resolve) => {
          const timer = setTimeout(() => {
            server.forceShutdown();
            resolve();
          }, config.SHUTDOWN_TIMEOUT_MS);
          server.tryShutdown(() => {
            clearTimeout(timer);
            resolve();
          });
        });
        await metricsServer.close();
        if (ownsContainer) await container.close();
        logger.info('gRPC server stopped');
      })();
      return closing;
    },
  };
}

/**
 * The caller's address: the peer, or behind a trusted ingress the last X-Forwarded-For entry
 * (the one the ingress appended; anything before it is whatever the client sent).
 */
export function clientAddress(call: { getPeer(): string; metadata: grpc.Metadata }, trustProxy: boolean): string {
  if (trustProxy) {
    const forwarded = call.metadata.get('x-forwarded-for').map(String).join(',');
    const last = forwarded.split(',').map((part) => part.trim()).filter(Boolean).at(-1);
    if (last) return last;
  }
  return call.getPeer();
}
