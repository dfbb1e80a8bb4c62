import type { Context } from 'koa';
import { PayloadTooLarge, RequestCancelled } from '@bank/shared/errors/domain-error';

/** True once the client has closed the connection without waiting for the answer. */
export function clientGone(ctx: Context): boolean {
  return ctx.req.socket.destroyed || (ctx.res.closed && !ctx.res.writableFinished);
}

/**
 * Reads the whole request body, refusing more than `limit` bytes (by Content-Length up front, or
 * while streaming for chunked bodies) with PayloadTooLarge. A client that hangs up mid-body is
 * RequestCancelled (499, not an internal error).
 */
export async function readRawBody(ctx: Context, limit: number): Promise<Buffer> {
  const declared = Number(ctx.get('content-length') || '0');
  if (declared > limit) {
    ctx.set('Connection', 'close');
    throw new PayloadTooLarge(limit);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of ctx.req as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > limit) {
        ctx.set('Connection', 'close');
        throw new PayloadTooLarge(limit);
      }
      chunks.push(chunk);
    }
  } catch (error) {
    if (error instanceof PayloadTooLarge) throw error;
    if (clientGone(ctx) || (error as { code?: unknown }).code === 'ECONNRESET') throw new RequestCancelled({ cause: error });
    throw error;
  }
  return Buffer.concat(chunks);
}
