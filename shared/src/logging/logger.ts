import { pino, type DestinationStream, type Logger, type LoggerOptions } from 'pino';
import { traceLogFields } from '../observability/tracing.ts';

export type { Logger } from 'pino';

/**
 * Request fields that carry a secret, in both spellings a request body may use (the proto JSON
 * mapping accepts the lowerCamel and the proto name): passwords, the emailed verification and
 * login secrets, the device's login secret, the password-reset link's secret (its confirm request
 * calls it `secret`) and the tokens.
 */
const REQUEST_SECRETS = [
  'password',
  'currentPassword',
  'current_password',
  'newPassword',
  'new_password',
  'token',
  'secret',
  'secretCode',
  'secret_code',
  'loginSecret',
  'login_secret',
  'resetSecret',
  'reset_secret',
  'refreshToken',
  'refresh_token',
];

/** Paths that must never reach a log line, wherever they appear in a logged object. */
export const REDACTED_PATHS = dedupe([
  'password',
  '*.password',
  'currentPassword',
  '*.currentPassword',
  'newPassword',
  '*.newPassword',
  'token',
  '*.token',
  'accessToken',
  '*.accessToken',
  'refreshToken',
  '*.refreshToken',
  // Login codes travel as `code` inside email payloads; a bare `code` key is left alone on
  // purpose, because that is where errors keep ECONNREFUSED, SQLSTATEs and our domain codes.
  'payload.code',
  '*.payload.code',
  'loginCode',
  '*.loginCode',
  'secretCode',
  '*.secretCode',
  'loginToken',
  '*.loginToken',
  'secret',
  '*.secret',
  // The device's login secret (LoginResponse, ConfirmLoginRequest), the reset link's secret (its
  // email payload) and a webhook's signing secret (the create answer, the delivery rows the
  // worker signs with); the hash of a 6-digit login code with its session id gives the code
  // back in 10^6 hashes. Each `*.` path costs a walk on every line, so the snake-case spellings
  // (only a raw request body has them) are named where a body sits, below, not wildcarded.
  'loginSecret',
  '*.loginSecret',
  'resetSecret',
  '*.resetSecret',
  'signingSecret',
  '*.signingSecret',
  'signing_secret',
  'codeHash',
  '*.codeHash',
  // A request body, logged as `body` or two levels down as `req.body` / `request.body` (past the
  // `*.` paths); named paths cost nothing on a line without that key. A body's `code` is the
  // login code (ConfirmLoginRequest).
  ...REQUEST_SECRETS.flatMap((key) => [key, `body.${key}`, `req.body.${key}`, `request.body.${key}`]),
  'body.code',
  'req.body.code',
  'request.body.code',
  'res.headers["set-cookie"]',
  'hashedPassword',
  '*.hashedPassword',
  'hashed_password',
  '*.hashed_password',
  'authorization',
  '*.authorization',
  'req.headers.authorization',
  'req.headers.cookie',
  'databaseUrl',
  'redisUrl',
  'smtpUrl',
]);

/** The paths once each (pino would walk a repeated wildcard path twice on every line). */
function dedupe(paths: string[]): string[] {
  return [...new Set(paths)];
}

/**
 * Structured JSON logs (pino), each line with the active trace's `trace_id` and `span_id` when
 * tracing is on. `format: 'pretty'` (LOG_FORMAT, which `npm start` sets) prints pino-pretty's
 * coloured lines instead; unset, lines are pretty in a terminal. In production they stay one
 * JSON object per line whatever is asked: pino-pretty is a development dependency.
 */
export function createLogger(options: {
  name: string;
  level?: string;
  pretty?: boolean;
  format?: 'json' | 'pretty';
  destination?: DestinationStream;
}): Logger {
  const production = process.env.NODE_ENV === 'production';
  const format = options.format ?? (process.env.LOG_FORMAT as 'json' | 'pretty' | undefined);
  const pretty = !production && (options.pretty ?? (format ? format === 'pretty' : process.stdout.isTTY));
  const config: LoggerOptions = {
    name: options.name,
    level: options.level ?? process.env.LOG_LEVEL ?? 'info',
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    base: { service: options.name },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    mixin: traceLogFields,
  };
  if (options.destination) return pino(config, options.destination);
  if (pretty) {
    // The transport runs in a worker thread, whose stdout is no terminal: decide colour here.
    const colorize = process.env.NO_COLOR === undefined && (Boolean(process.stdout.isTTY) || Boolean(process.env.FORCE_COLOR));
    return pino({ ...config, transport: { target: 'pino-pretty', options: { colorize, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,service', singleLine: true } } });
  }
  return pino(config);
}

/** Masks an email for logs: `alice@example.com` -> `a***@example.com`. */
export function maskEmail(email: string): string {
  const at = email.lastIndexOf('@');
  if (at <= 0) return '***';
  return `${email.slice(0, 1)}***${email.slice(at)}`;
}
