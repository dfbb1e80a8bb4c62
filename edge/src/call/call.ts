// One call through the edge, whichever protocol brought it. The HTTP gateway and the gRPC server
// each build a UnaryCall from their own request, run it through the one interceptor chain, and
// encode what comes back (a response message, or a CallFailure carrying the mapped error).
import type { DescMethod } from '@bufbuild/protobuf';
import type { Actor } from '@bank/shared/auth/actor';
import type { ErrorAnswer } from '../errors/error-table.ts';

export type Protocol = 'http' | 'grpc';

/** What a protocol tells the chain about itself, so that logs and metrics read the same on both edges. */
export type CallTransport = {
  readonly protocol: Protocol;
  /** The fields of the call's log line that only this protocol knows (route, status as it answers it). */
  outcome(answer: ErrorAnswer | undefined): Record<string, unknown>;
  /** The log line's message (`request` over HTTP, `rpc` over gRPC: what operators grep for). */
  readonly logMessage: string;
};

export type UnaryCall = {
  readonly transport: CallTransport;
  /** The contract method being called (`bank.v1.TransferService.CreateTransfer`). */
  readonly method: DescMethod;
  /** A request header (HTTP) or metadata value (gRPC), lower-case name. */
  header(name: string): string | undefined;
  /** Sets a response header (HTTP) or trailer (gRPC). */
  setResponseHeader(name: string, value: string): void;
  /** The caller's address (after the TRUSTED_PROXIES rule). */
  readonly clientIp: string | undefined;
  /** Milliseconds until the caller's deadline, when it set one (gRPC `grpc-timeout`). */
  readonly deadlineMs: number | undefined;
  /** Aborted by the transport when the client goes away. */
  readonly clientSignal: AbortSignal;
  /** Reads and decodes the request message; throws InvalidArgument (or PayloadTooLarge, ...) for bad input. */
  decode(): Promise<unknown>;

  // Filled in by the interceptors, in chain order.
  requestId: string;
  actor: Actor | undefined;
  /** Aborted when the deadline passes or the client goes away; its reason is the DomainError to answer with. */
  signal: AbortSignal;
};

/** Runs a call further down the chain; resolves with the response message. */
export type CallHandler = (call: UnaryCall) => Promise<unknown>;

/** One step of the chain (connect-es style): wraps the rest of the chain. */
export type Interceptor = (next: CallHandler) => CallHandler;

/** A failure after error mapping: what the transport encodes (problem+json, or status + details). */
export class CallFailure extends Error {
  readonly answer: ErrorAnswer;
  constructor(answer: ErrorAnswer, cause: unknown) {
    super(answer.detail, { cause });
    this.name = 'CallFailure';
    this.answer = answer;
  }
}

/** `interceptors[0]` is outermost: it sees the call first and the outcome last. */
export function chain(interceptors: readonly Interceptor[], handler: CallHandler): CallHandler {
  return interceptors.reduceRight<CallHandler>((next, interceptor) => interceptor(next), handler);
}
