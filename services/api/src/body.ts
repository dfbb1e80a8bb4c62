import type { Context } from 'koa';
import { PayloadTooLarge } from '@bank/shared/errors/domain-error';

/**
 * Reads the whole request body, refusing more than `limit` bytes (by Content-Length up front, or
 * while streaming for chunked bodies) with PayloadTooLarge.
 */
export async function readRawBody(ctx: Context, limit: number): Promise<Buffer> {
  const declared = Number(ctx.get('content-length') || '0');
  if (declared > limit) {
    ctx.set('Connection', 'close');
    throw new PayloadTooLarge(limit);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of ctx.req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) {
      ctx.set('Connection', 'close');
      throw new PayloadTooLarge(limit);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}
