import type { Context, Next } from 'koa';
import { errorAnswer, type ErrorAnswer } from '@bank/edge/errors/error-table';
import type { Logger } from '@bank/shared/logging/logger';

/**
 * Writes an error answer as application/problem+json (RFC 9457) with the stable `code`, the field
 * violations, the facts its code carries (`limit`, `remaining`...) as extension members, and the
 * request id.
 */
export function writeProblem(ctx: Context, answer: ErrorAnswer): void {
  ctx.status = answer.http;
  ctx.type = 'application/problem+json';
  if (answer.retryAfterSeconds !== undefined) ctx.set('Retry-After', String(answer.retryAfterSeconds));
  if (answer.http === 401) ctx.set('WWW-Authenticate', 'Bearer');
  ctx.body = JSON.stringify({
    type: `urn:bank:problem:${answer.code.toLowerCase()}`,
    title: answer.title,
    status: answer.http,
    code: answer.code,
    detail: answer.detail,
    errors: answer.fieldViolations,
    ...answer.fields,
    requestId: ctx.state.requestId as string | undefined,
  });
  ctx.state.errorCode = answer.code;
}

/**
 * Errors outside the contract's routes (unknown paths, wrong verbs, health and docs pages) get the
 * same problem+json through the same error table; the routes' own calls are mapped by the edge's
 * chain. Internal errors are logged with the request id and answered with a generic 500.
 */
export function problemMiddleware(logger: Logger) {
  return async (ctx: Context, next: Next): Promise<void> => {
    try {
      await next();
    } catch (error) {
      const answer = errorAnswer(error);
      if (answer.internal) {
        logger.error({ err: error, requestId: ctx.state.requestId as string | undefined, method: ctx.method, path: ctx.path }, 'internal error');
      }
      writeProblem(ctx, answer);
    }
  };
}
