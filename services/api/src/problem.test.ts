import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { describe, expect, it } from '@jest/globals';
import Koa from 'koa';
import { pino } from 'pino';
import { InvalidArgument, LimitExceeded } from '@bank/shared/errors/domain-error';
import { problemMiddleware } from './problem.ts';

async function serve(error: unknown): Promise<{ status: number; body: Record<string, unknown>; type: string | null; logs: string }> {
  const lines: string[] = [];
  const logger = pino({ level: 'info' }, new Writable({ write: (chunk: Buffer, _enc, done) => (lines.push(chunk.toString()), done()) }));
  const app = new Koa();
  app.use(async (ctx, next) => {
    ctx.state.requestId = 'req-42';
    await next();
  });
  app.use(problemMiddleware(logger));
  app.use(() => {
    throw error;
  });
  app.on('error', () => undefined);
  const server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  try {
    const response = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
    return { status: response.status, body: (await response.json()) as Record<string, unknown>, type: response.headers.get('content-type'), logs: lines.join('') };
  } finally {
    server.close();
  }
}

describe('problemMiddleware', () => {
  it('answers a domain error as problem+json with its code, field violations and the request id', async () => {
    const { status, body, type } = await serve(InvalidArgument.field('amount', 'must be positive'));
    expect(status).toBe(400);
    expect(type).toMatch(/^application\/problem\+json/);
    expect(body).toEqual({
      type: 'urn:bank:problem:invalid_argument',
      title: 'Invalid argument',
      status: 400,
      code: 'INVALID_ARGUMENT',
      detail: 'amount: must be positive',
      errors: [{ field: 'amount', description: 'must be positive' }],
      requestId: 'req-42',
    });
  });

  it('puts the facts a refusal carries beside the problem\'s own members, amounts as decimal strings', async () => {
    const { status, body } = await serve(new LimitExceeded('deposit_max_amount', 1_000_000n));
    expect(status).toBe(422);
    expect(body).toEqual({
      type: 'urn:bank:problem:limit_exceeded',
      title: 'Limit exceeded',
      status: 422,
      code: 'LIMIT_EXCEEDED',
      detail: 'a single deposit may be at most 1000000 minor units',
      errors: [],
      limit: 'deposit_max_amount',
      remaining: '1000000',
      requestId: 'req-42',
    });
  });

  it('answers an unexpected error as a bare 500, and logs it with the request id', async () => {
    const { status, body, logs } = await serve(new Error('connect ECONNREFUSED db.internal:5432 password=hunter2'));
    expect(status).toBe(500);
    expect(body).toMatchObject({ code: 'INTERNAL', detail: 'internal error', requestId: 'req-42' });
    expect(JSON.stringify(body)).not.toContain('hunter2');
    expect(logs).toContain('"requestId":"req-42"');
    expect(logs).toContain('ECONNREFUSED');
  });
});
