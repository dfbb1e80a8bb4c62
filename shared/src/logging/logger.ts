import { pino, type DestinationStream, type Logger, type LoggerOptions } from 'pino';

export type { Logger } from 'pino';

/** Paths that must never reach a log line, wherever they appear in a logged object. */
export const REDACTED_PATHS = [
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
];

/**
 * Structured JSON logs (pino). In a terminal (and not in production) lines are pretty-printed
 * so a person can read them; in containers they stay one JSON object per line.
 */
export function createLogger(options: { name: string; level?: string; pretty?: boolean; destination?: DestinationStream }): Logger {
  const pretty = options.pretty ?? (process.stdout.isTTY && process.env.NODE_ENV !== 'production');
  const config: LoggerOptions = {
    name: options.name,
    level: options.level ?? process.env.LOG_LEVEL ?? 'info',
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    base: { service: options.name },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  };
  if (options.destination) return pino(config, options.destination);
  if (pretty) {
    return pino({ ...config, transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l' } } });
  }
  return pino(config);
}

/** Masks an email for logs: `alice@example.com` -> `a***@example.com`. */
export function maskEmail(email: string): string {
  const at = email.lastIndexOf('@');
  if (at <= 0) return '***';
  return `${email.slice(0, 1)}***${email.slice(at)}`;
}
