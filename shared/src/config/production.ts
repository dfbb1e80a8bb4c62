import { configSchema } from './config.schema.ts';

/** The processes that read the configuration, each with its own slice of it. */
export type ProcessName = 'api' | 'grpc' | 'worker' | 'migrator' | 'admin';

/**
 * What each process must be given in production, because the schema's default for it is a
 * development one (a local database, Redis or inbox, a localhost link, a key `npm start` makes):
 * only the settings that process reads.
 */
export const PRODUCTION_REQUIRED: Readonly<Record<ProcessName, readonly string[]>> = {
  api: ['DATABASE_URL', 'REDIS_URL', 'PASETO_SECRET_KEY'],
  grpc: ['DATABASE_URL', 'REDIS_URL', 'PASETO_SECRET_KEY'],
  worker: ['DATABASE_URL', 'REDIS_URL', 'SMTP_URL', 'MAIL_FROM', 'PUBLIC_BASE_URL'],
  // The migrator connects as the schema's owner; DATABASE_URL (the app's DML-only role) is never
  // a fallback in production.
  migrator: ['MIGRATION_DATABASE_URL'],
  admin: ['DATABASE_URL', 'REDIS_URL'],
};

const LOOPBACK = /^(localhost|.*\.localhost|127(\.\d{1,3}){3}|\[::1\]|0\.0\.0\.0)$/i;
const DEVELOPMENT_MAIL_DOMAIN = /@[^>]*\.(local|localhost|test|invalid)>?\s*$/i;

const DEFAULT_REFUSED = new Set(['SMTP_URL', 'MAIL_FROM', 'PUBLIC_BASE_URL']);
const defaults = configSchema.shape;
function developmentDefault(key: string): string | undefined {
  const field = (defaults as Record<string, { safeParse(value: undefined): { success: boolean; data?: unknown } } | undefined>)[key];
  const parsed = field?.safeParse(undefined);
  return parsed?.success && typeof parsed.data === 'string' ? parsed.data : undefined;
}

function host(value: string): string | undefined {
  try {
    return new URL(value).hostname;
  } catch {
    return undefined;
  }
}

/**
 * Every missing or unsafe production setting of `process`, one line each, naming the variable and
 * never its value. Empty when `env` is not production (NODE_ENV other than `production`).
 */
export function productionProblems(process: ProcessName, env: NodeJS.ProcessEnv): string[] {
  if (env.NODE_ENV !== 'production') return [];
  const problems: string[] = [];
  for (const key of PRODUCTION_REQUIRED[process]) {
    const value = env[key]?.trim();
    if (!value) {
      problems.push(`${key}: must be set in production (no development default)`);
      continue;
    }
    // The local inbox and its sender, and the localhost link, are never production values. A
    // database or Redis URL given explicitly is the operator's choice (a sidecar may be local).
    if (DEFAULT_REFUSED.has(key) && value === developmentDefault(key)) {
      problems.push(`${key}: is the development default; set the production value`);
      continue;
    }
    if (key === 'PUBLIC_BASE_URL') {
      if (!value.toLowerCase().startsWith('https://')) problems.push('PUBLIC_BASE_URL: must be an https:// URL in production (emailed links carry secrets)');
      else if (LOOPBACK.test(host(value) ?? '')) problems.push('PUBLIC_BASE_URL: must not point at this machine (localhost) in production');
    }
    if (key === 'MAIL_FROM' && DEVELOPMENT_MAIL_DOMAIN.test(value)) {
      problems.push('MAIL_FROM: a development domain (.local, .localhost, .test, .invalid) in production');
    }
  }
  // Local development and tests only: in production webhook endpoints could reach internal
  // addresses (the cloud metadata service, the database) through the API and the worker.
  if (process !== 'migrator' && process !== 'admin' && env.WEBHOOK_ALLOW_PRIVATE_TARGETS?.trim().toLowerCase() === 'true') {
    problems.push('WEBHOOK_ALLOW_PRIVATE_TARGETS: must not be true in production (webhooks could reach loopback, private and link-local addresses)');
  }
  return problems;
}
