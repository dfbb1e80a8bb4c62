// The interceptors every call runs through, on both edges, in this order (outermost first):
// request id, log line, metrics, error mapping, deadline and client-gone, admission control
// (./admission.ts), authentication.
import { getOption, type DescMethod } from '@bufbuild/protobuf';
import { Counter, Histogram, type Registry } from 'prom-client';
import type { Actor } from '@bank/shared/auth/actor';
import { DeadlineExceeded, RequestCancelled } from '@bank/shared/errors/domain-error';
import type { Logger } from '@bank/shared/logging/logger';
import type { UseCaseOptions } from '@bank/shared/use-case/use-case-options';
import { allow_anonymous } from '@bank/proto/bank/v1/options_pb';
import { errorAnswer, GrpcCode, type ErrorAnswer } from '../errors/error-table.ts';
import { authenticateCall } from './authenticate.ts';
import { CallFailure, type Interceptor, type UnaryCall } from './call.ts';
import { requestIdFrom } from './request-id.ts';

/** `bank.v1.AccountService.OpenAccount`: how logs, metrics and handler keys name a method. */
export const fullMethodName = (call: Pick<UnaryCall, 'method'>): string => `${call.method.parent.typeName}.${call.method.name}`;

/** The answer a failed call gets: the mapped one, or (for anything that escaped mapping) INTERNAL. */
export const answerOf = (error: unknown): ErrorAnswer => (error instanceof CallFailure ? error.answer : errorAnswer(error));

const GRPC_CODE_NAMES = Object.fromEntries(Object.entries(GrpcCode).map(([name, code]) => [code, name])) as Record<number, string>;

/** The gRPC status name of an outcome (`OK` for success), as metrics and gRPC logs label it. */
export const grpcStatusName = (answer: ErrorAnswer | undefined): string => (answer ? (GRPC_CODE_NAMES[answer.grpc] ?? String(answer.grpc)) : 'OK');

/** An interceptor that only watches: `done` gets each call's answer (undefined on success) and its duration. */
function observeOutcome(done: (call: UnaryCall, answer: ErrorAnswer | undefined, seconds: number) => void): Interceptor {
  return (next) => async (call) => {
    const started = performance.now();
    let answer: ErrorAnswer | undefined;
    try {
      return await next(call);
    } catch (error) {
      answer = answerOf(error);
      throw error;
    } finally {
      done(call, answer, (performance.now() - started) / 1_000);
    }
  };
}

/** Adopts the id the transport already settled on (HTTP sets it for every path) or applies the rule. */
export function requestIdInterceptor(): Interceptor {
  return (next) => async (call) => {
    call.requestId ||= requestIdFrom(call.header('x-request-id'));
    call.setResponseHeader('x-request-id', call.requestId);
    return next(call);
  };
}

/**
 * One JSON line per call with the request id, the user, the outcome and the latency: what an
 * operator reads at 3 a.m. Server-side failures (5xx) are logged at error level, except calls shed
 * for overload (info, like any refusal): refusing them is the server working as designed, a burst
 * would bury real errors under thousands of lines, and a log line per refusal must cost nothing
 * where the level leaves out the access lines. bank_admission_shed_total and
 * bank_db_pool_shed_total count them.
 */
export function loggingInterceptor(logger: Logger): Interceptor {
  return observeOutcome((call, answer, seconds) => {
    const line = {
      requestId: call.requestId,
      user: call.actor?.username,
      ...call.transport.outcome(answer),
      ms: Math.round(seconds * 10_000) / 10,
      // Not `code`: the logger redacts that key everywhere (login codes must never be logged).
      errorCode: answer?.code,
      // Why a 401 was answered: the caller only ever reads the one text.
      ...(answer?.reason ? { reason: answer.reason } : {}),
    };
    if (answer && answer.http >= 500 && answer.code !== 'OVERLOADED') logger.error(line, call.transport.logMessage);
    else logger.info(line, call.transport.logMessage);
  });
}

/**
 * Calls and latency by method and outcome. The names are go-grpc-prometheus's: REST calls run the
 * same handlers (as a grpc-gateway's do) and count here too, told apart by `protocol`.
 */
export function metricsInterceptor(registry: Registry): Interceptor {
  const labelNames = ['protocol', 'method', 'code'] as const;
  const handled = new Counter({ name: 'grpc_server_handled_total', help: 'Calls by protocol, method and status code.', labelNames, registers: [registry] });
  const latency = new Histogram({
    name: 'grpc_server_handling_seconds',
    help: 'Call latency by protocol, method and status code.',
    labelNames,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  return observeOutcome((call, answer, seconds) => {
    const labels = { protocol: call.transport.protocol, method: fullMethodName(call), code: grpcStatusName(answer) };
    handled.inc(labels);
    latency.observe(labels, seconds);
  });
}

/**
 * The one place calls' errors are mapped: anything thrown below becomes a CallFailure with the
 * answer from the error table. Internal errors are logged here with the request id; the client
 * only ever sees a generic message.
 */
export function errorInterceptor(logger: Logger): Interceptor {
  return (next) => async (call) => {
    try {
      return await next(call);
    } catch (error) {
      if (error instanceof CallFailure) throw error;
      const answer = errorAnswer(error);
      if (answer.internal) logger.error({ err: error, requestId: call.requestId, method: fullMethodName(call) }, 'internal error');
      throw new CallFailure(answer, error);
    }
  };
}

/**
 * Gives the call its AbortSignal: aborted with DeadlineExceeded when the caller's deadline
 * passes, with RequestCancelled when the client goes away. The use cases take the signal and
 * start no database work once it is aborted; the call is answered at once either way.
 */
export function deadlineInterceptor(): Interceptor {
  return (next) => async (call) => {
    if (call.clientSignal.aborted) throw new RequestCancelled();
    if (call.deadlineMs !== undefined && call.deadlineMs <= 0) throw new DeadlineExceeded('deadline exceeded before the call started');
    const controller = new AbortController();
    const abort = (reason: Error) => {
      if (!controller.signal.aborted) controller.abort(reason);
    };
    const onClientGone = () => abort(new RequestCancelled());
    call.clientSignal.addEventListener('abort', onClientGone, { once: true });
    const timer = call.deadlineMs === undefined ? undefined : setTimeout(() => abort(new DeadlineExceeded()), call.deadlineMs);
    call.signal = controller.signal;
    const aborted = new Promise<never>((_, reject) => {
      controller.signal.addEventListener('abort', () => reject(controller.signal.reason as Error), { once: true });
    });
    try {
      return await Promise.race([next(call), aborted]);
    } finally {
      clearTimeout(timer);
      call.clientSignal.removeEventListener('abort', onClientGone);
    }
  };
}

/** True when the contract marks the method `(bank.v1.allow_anonymous) = true`. */
export function isAnonymousMethod(call: Pick<UnaryCall, 'method'>): boolean {
  // Reading an option decodes the method's options message each time (a measurable share of a
  // transfer's CPU in the profile); the contract does not change while the process runs.
  let anonymous = ANONYMOUS.get(call.method);
  if (anonymous === undefined) {
    anonymous = getOption(call.method, allow_anonymous);
    ANONYMOUS.set(call.method, anonymous);
  }
  return anonymous;
}
const ANONYMOUS = new WeakMap<DescMethod, boolean>();

/**
 * The one authentication step: anonymous methods need nothing; every other method needs
 * `authorization: Bearer <access token>` of a live session.
 */
export function authenticationInterceptor(verify: (accessToken: string, options: UseCaseOptions) => Promise<Actor>): Interceptor {
  return (next) => async (call) => {
    call.actor = isAnonymousMethod(call)
      ? undefined
      : await authenticateCall(call.header('authorization'), (token) => verify(token, { signal: call.signal }));
    return next(call);
  };
}
