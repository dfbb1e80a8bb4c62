// What every handler of the edge shares: the call's context, the shape of a service's handlers,
// and the two helpers each one uses (the actor, the use-case options). Its own module so that the
// handler files (bank-handlers.ts, webhook-handlers.ts) import it and never each other.
import type { DescMessage, MessageInitShape, MessageShape } from '@bufbuild/protobuf';
import type { GenService, GenServiceMethods } from '@bufbuild/protobuf/codegenv2';
import type { Actor } from '@bank/shared/auth/actor';
import { Unauthenticated } from '@bank/shared/errors/domain-error';

/** What a handler knows about its call besides the request message. */
export type HandlerContext = {
  /** Set by the authentication interceptor; undefined for anonymous methods. */
  actor: Actor | undefined;
  /** Aborted when the deadline passes or the client goes away; handed to every use case. */
  signal: AbortSignal;
  clientIp?: string | undefined;
  userAgent?: string | undefined;
  /** Sets a response header (HTTP) or trailer (gRPC), e.g. a file's Content-Disposition. */
  setResponseHeader?: ((name: string, value: string) => void) | undefined;
};

export type Handler<I extends DescMessage, O extends DescMessage> = (request: MessageShape<I>, ctx: HandlerContext) => Promise<MessageInitShape<O>>;

export type ServiceHandlers<S extends GenService<GenServiceMethods>> = {
  [K in keyof S['method']]: Handler<S['method'][K]['input'], S['method'][K]['output']>;
};

/** An operation bound to its use case, found by method. */
export type BoundHandler = (request: unknown, ctx: HandlerContext) => Promise<unknown>;

/** The caller, for a method that needs one. @throws Unauthenticated */
export function actorOf(ctx: HandlerContext): Actor {
  if (!ctx.actor) throw new Unauthenticated();
  return ctx.actor;
}

/** What every use case takes last: the call's abort signal. */
export const opts = (ctx: HandlerContext) => ({ signal: ctx.signal });
