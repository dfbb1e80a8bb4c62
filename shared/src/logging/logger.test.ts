import { Writable } from 'node:stream';
import { describe, expect, it } from '@jest/globals';
import { createLogger, maskEmail } from './logger.ts';

function capture() {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  return { lines, logger: createLogger({ name: 'test', level: 'info', destination }) };
}

describe('logger', () => {
  it('writes one JSON object per line with the service name, level label and ISO time', () => {
    const { lines, logger } = capture();
    logger.info({ requestId: 'r-1' }, 'hello');
    const line = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(line).toMatchObject({ service: 'test', level: 'info', requestId: 'r-1', msg: 'hello' });
    expect(String(line.time)).toMatch(/^\d{4}-\d\d-\d\dT/);
  });

  it('redacts passwords, tokens and emailed secrets but keeps error codes readable', () => {
    const { lines, logger } = capture();
    logger.info(
      {
        password: 'hunter2hunter2',
        user: { newPassword: 'n3w-pass-word', hashedPassword: '$2b$12$abc' },
        accessToken: 'v4.public.access',
        auth: { refreshToken: 'v4.public.refresh' },
        payload: { code: '654321', loginToken: 'v4.public.login', secretCode: 'S3CRET' },
        req: { headers: { authorization: 'Bearer v4.public.x', cookie: 'a=b' } },
        err: { code: 'ECONNREFUSED', message: 'connect failed' },
        errorCode: 'INSUFFICIENT_FUNDS',
      },
      'event',
    );
    const text = lines.join('');
    for (const secret of ['hunter2hunter2', 'n3w-pass-word', '$2b$12$abc', 'v4.public', '654321', 'S3CRET', 'a=b']) {
      expect(text).not.toContain(secret);
    }
    const line = JSON.parse(text) as { err: { code: string }; errorCode: string };
    expect(line.err.code).toBe('ECONNREFUSED');
    expect(line.errorCode).toBe('INSUFFICIENT_FUNDS');
  });

  it('masks emails for logs', () => {
    expect(maskEmail('alice@example.com')).toBe('a***@example.com');
    expect(maskEmail('nonsense')).toBe('***');
  });
});
