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

  it('redacts the login, reset and signing secrets wherever the code would log them: request bodies, answers, email payloads, rows', () => {
    const { lines, logger } = capture();
    // Each value unique, so a leak names the path it came from.
    const secrets = {
      loginSecret: 'LS-answer-top',
      answerLoginSecret: 'LS-answer-nested',
      restLoginSecret: 'LS-rest-body',
      restLoginCode: '246801',
      grpcLoginSecret: 'LS-grpc-snake',
      grpcLoginCode: '135792',
      bodySnakeSecret: 'LS-body-snake',
      bodyLoginCode: '975310',
      resetSecretPayload: 'RS-email-payload',
      resetSecretJob: 'RS-job-data',
      resetConfirmSecret: 'RS-confirm-secret',
      resetConfirmPassword: 'RS-new-password',
      resetSnake: 'RS-snake',
      currentSnake: 'PW-current-snake',
      newSnake: 'PW-new-snake',
      verifySnake: 'SC-verify-snake',
      refreshSnake: 'RT-refresh-snake',
      signingAnswer: 'whsec_answer',
      signingRow: 'whsec_row',
      signingSnake: 'whsec_snake',
      codeHash: 'CH-6a1f',
      cookie: 'bank_refresh=v4.public.cookie',
    };
    logger.info({ loginSecret: secrets.loginSecret, sessionId: 'session-1' }, 'login answer');
    logger.info({ response: { sessionId: 'session-1', loginSecret: secrets.answerLoginSecret } }, 'login answer nested');
    logger.info({ req: { method: 'POST', url: '/v1/sessions/s/confirm', body: { loginSecret: secrets.restLoginSecret, code: secrets.restLoginCode } } }, 'REST confirm');
    logger.info({ request: { body: { session_id: 'session-1', login_secret: secrets.grpcLoginSecret, code: secrets.grpcLoginCode } } }, 'gRPC confirm');
    logger.info({ body: { login_secret: secrets.bodySnakeSecret, code: secrets.bodyLoginCode } }, 'body');
    logger.info({ payload: { resetId: 'reset-1', resetSecret: secrets.resetSecretPayload } }, 'reset email');
    logger.info({ data: { resetSecret: secrets.resetSecretJob } }, 'reset job');
    logger.info({ req: { body: { secret: secrets.resetConfirmSecret, newPassword: secrets.resetConfirmPassword } } }, 'reset confirm');
    logger.info({ req: { body: { reset_secret: secrets.resetSnake, current_password: secrets.currentSnake, new_password: secrets.newSnake } } }, 'snake body');
    logger.info({ request: { body: { secret_code: secrets.verifySnake, refresh_token: secrets.refreshSnake } } }, 'snake request');
    logger.info({ signingSecret: secrets.signingAnswer, webhook: { id: 'wh-1' } }, 'webhook created');
    logger.info({ delivery: { id: 'd-1', signingSecret: secrets.signingRow }, signing_secret: secrets.signingSnake }, 'delivery');
    logger.info({ challenge: { id: 'c-1', codeHash: secrets.codeHash } }, 'challenge');
    logger.info({ res: { statusCode: 200, headers: { 'set-cookie': secrets.cookie } } }, 'response');
    logger.info({ err: { code: 'ECONNREFUSED' }, errorCode: 'LOGIN_NOT_APPROVED' }, 'still readable');
    const text = lines.join('');
    expect(lines).toHaveLength(15);
    for (const [where, secret] of Object.entries(secrets)) expect({ where, leaked: text.includes(secret) }).toEqual({ where, leaked: false });
    // What is not secret stays readable.
    for (const kept of ['session-1', 'reset-1', 'wh-1', 'd-1', 'c-1', 'ECONNREFUSED', 'LOGIN_NOT_APPROVED', '/v1/sessions/s/confirm']) expect(text).toContain(kept);
    expect(text.match(/\[redacted\]/g)).toHaveLength(Object.keys(secrets).length);
  });

  it('masks emails for logs', () => {
    expect(maskEmail('alice@example.com')).toBe('a***@example.com');
    expect(maskEmail('nonsense')).toBe('***');
  });
});
