// The edge both servers share: the handler table behind the one interceptor chain. A server turns
// its protocol's request into a UnaryCall, hands it to `handle`, and encodes what comes back.
import type { DescService } from '@bufbuild/protobuf';
import type { Registry } from 'prom-client';
import { createBank, type Bank, type BankConfig } from '@bank/shared/app/bank';
import type { Config } from '@bank/shared/config/config';
import { createDatabasePool, type DatabasePool } from '@bank/shared/db/pool';
import { lowerThreadPoolPriority } from '@bank/shared/process/thread-pool-priority';
import type { Logger } from '@bank/shared/logging/logger';
import type { ShutdownStep } from '@bank/shared/process/shutdown';
import { throwIfAborted } from '@bank/shared/use-case/use-case-options';
import { admissionInterceptor, createAdmissionGate, registerAdmissionMetrics, type AdmissionLimits } from './call/admission.ts';
import { chain, type CallHandler, type Interceptor } from './call/call.ts';
import {
  authenticationInterceptor,
  deadlineInterceptor,
  errorInterceptor,
  fullMethodName,
  loggingInterceptor,
  metricsInterceptor,
  requestIdInterceptor,
} from './call/interceptors.ts';
import { BANK_SERVICES, createBankHandlers, type UseCases } from './handlers/bank-handlers.ts';

export type BankEdge = {
  readonly services: readonly DescService[];
  /** Runs one call through the chain: resolves with the response message or rejects with a CallFailure. */
  readonly handle: CallHandler;
};

/**
 * The chain, outermost first: request id, log line, metrics, error mapping, deadline and
 * client-gone signal, admission control (with `admission`), authentication, then any
 * `interceptors` given, then decoding and the handler. Throws at start-up when a method of the
 * contract has no handler.
 */
export function createBankEdge(options: {
  useCases: UseCases;
  logger: Logger;
  registry: Registry;
  admission?: AdmissionLimits;
  interceptors?: readonly Interceptor[];
}): BankEdge {
  const handlers = createBankHandlers(options.useCases);
  const handler: CallHandler = async (call) => {
    const entry = handlers.get(fullMethodName(call));
    if (!entry) throw new Error(`no handler for ${fullMethodName(call)}`);
    const request = await call.decode();
    // Decoding may have waited on a slow body: start no use case for a call already given up.
    throwIfAborted(call.signal);
    return entry.handle(request, { actor: call.actor, signal: call.signal, clientIp: call.clientIp, userAgent: call.header('user-agent'), setResponseHeader: (name, value) => call.setResponseHeader(name, value) });
  };
  const gate = options.admission ? createAdmissionGate(options.admission) : undefined;
  if (gate) registerAdmissionMetrics(options.registry, gate);
  const interceptors: Interceptor[] = [
    requestIdInterceptor(),
    loggingInterceptor(options.logger),
    metricsInterceptor(options.registry),
    errorInterceptor(options.logger),
    deadlineInterceptor(),
    ...(gate ? [admissionInterceptor(gate)] : []),
    authenticationInterceptor((token, useCase) => options.useCases.sessions.authenticate(token, useCase)),
    ...(options.interceptors ?? []),
  ];
  return { services: BANK_SERVICES, handle: chain(interceptors, handler) };
}

/** What a server process may be handed instead of opening it itself (tests, a shared process). */
export type EdgeServerDeps = {
  logger?: Logger;
  registry?: Registry;
  /** A pool the caller owns (closed by the caller). */
  pool?: DatabasePool;
  /** Use cases the caller owns (closed by the caller); otherwise built over the pool. */
  bank?: Bank;
  /** Extra interceptors, run after authentication on every call. */
  interceptors?: readonly Interceptor[];
  /** The address to listen on instead of HOST (loopback unless set). */
  host?: string;
};

export type EdgeServerConfig = Pick<
  Config,
  | 'DATABASE_URL'
  | 'DATABASE_POOL_SIZE'
  | 'DATABASE_PREPARED_STATEMENTS'
  | 'DATABASE_POOL_QUEUE_LIMIT'
  | 'DATABASE_POOL_WAIT_TIMEOUT_MS'
  | 'MAX_INFLIGHT_REQUESTS'
  | 'MAX_QUEUED_REQUESTS'
  | 'REQUEST_QUEUE_TIMEOUT_MS'
  | 'THREAD_POOL_NICE'
> &
  BankConfig;

/**
 * The part of a server's composition root both servers share: the pool and the use cases unless
 * handed in, and the edge over them. `release` closes, in order, only what was opened here.
 */
export async function openBankEdge(
  config: EdgeServerConfig,
  deps: EdgeServerDeps,
  own: { logger: Logger; registry: Registry; /** 'api' or 'grpc': its connections show as bank-<process> in PostgreSQL. */ process: string },
): Promise<{ bank: Bank; edge: BankEdge; release: ShutdownStep[] }> {
  const release: ShutdownStep[] = [];
  let bank = deps.bank;
  if (!bank) {
    let pool = deps.pool;
    if (!pool) {
      const opened = await createDatabasePool(config.DATABASE_URL, {
        maximumPoolSize: config.DATABASE_POOL_SIZE,
        queueLimit: config.DATABASE_POOL_QUEUE_LIMIT,
        waitTimeoutMs: config.DATABASE_POOL_WAIT_TIMEOUT_MS,
        applicationName: `bank-${own.process}`,
        preparedStatements: config.DATABASE_PREPARED_STATEMENTS,
      });
      release.push(['database pool', () => opened.end()]);
      pool = opened;
    }
    const created = await createBank(config, { pool, logger: own.logger, registry: own.registry });
    release.unshift(['use cases', () => created.close()]);
    bank = created;
    const priority = await lowerThreadPoolPriority(config.THREAD_POOL_NICE);
    if ('skipped' in priority) own.logger.info({ reason: priority.skipped }, 'libuv thread pool (bcrypt) left at the process priority');
    else own.logger.info({ threads: priority.threads, nice: priority.nice }, 'libuv thread pool (bcrypt) runs at a lower priority than request serving');
  }
  const edge = createBankEdge({
    useCases: bank,
    logger: own.logger,
    registry: own.registry,
    admission: { maxInFlight: config.MAX_INFLIGHT_REQUESTS, maxQueued: config.MAX_QUEUED_REQUESTS, queueTimeoutMs: config.REQUEST_QUEUE_TIMEOUT_MS },
    ...(deps.interceptors ? { interceptors: deps.interceptors } : {}),
  });
  return { bank, edge, release };
}
