import type { Context, Next } from 'koa';
import { errorAnswer } from '@bank/shared/edge/error-codes';
import type { Logger } from '@bank/shared/logging/logger';

/**
 * The one place the HTTP edge maps errors: every failure becomes application/problem+json
 * (RFC 9457) with the stable `code`, the field violations, and the request id. Internal errors
 * are logged with the request id and answered with a generic 500.
 */
export function problemMiddleware(logger: Logger) {
  return async (ctx: Context, next: Next): Promise<void> => {
    try {
      await next();
    } catch (error) {
      const answer = errorAnswer(error);
      const requestId = ctx.state.requestId as string | undefined;
      if (answer.internal) {
        logger.error({ err: error, requestId, method: ctx.method, path: ctx.path }, 'internal error');
      }
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
        requestId,
      });
      ctx.state.errorCode = answer.code;
    }
  };
}
