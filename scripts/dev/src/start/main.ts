// `npm start`: the whole bank on one machine. Migrates, then runs the HTTP API, the gRPC server,
// the email worker (and, unless SMTP_URL is set, a development inbox) as separate processes,
// restarting any that dies; Ctrl-C (SIGINT) or SIGTERM stops them all cleanly.
// Every default gives way to the environment: DATABASE_URL, REDIS_URL, SMTP_URL, HTTP_PORT,
// GRPC_PORT, METRICS_PORT, PUBLIC_BASE_URL, INBOX_HTTP_PORT, BANK_DATA_DIR.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { generatePasetoKeyPair } from '@bank/shared/auth/token-maker';
import { loadSecretsIntoEnv } from '@bank/shared/config/secrets';
import { freePort, isListening, waitFor } from './ports.ts';
import { resolvePostgres, resolveRedis, StoreUnavailable, type Store } from './stores.ts';
import { Supervisor } from './supervisor.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');
/** Lines given together are one write: a reader of the pipe never sees part of them. */
const log = (...lines: string[]) => console.log(lines.map((line) => `[start] ${line}`).join('\n'));
const NODE_ARGS = ['--disable-warning=ExperimentalWarning'];

class StartError extends Error {}

async function portOr(value: string | undefined, fallback: number): Promise<number> {
  if (value) return Number(value);
  return (await isListening('127.0.0.1', fallback, 300)) ? freePort() : fallback;
}

async function devKeys(dataDir: string): Promise<{ secretKey: string; publicKey: string }> {
  const file = path.join(dataDir, 'paseto-dev-key.json');
  if (existsSync(file)) return JSON.parse(readFileSync(file, 'utf8')) as { secretKey: string; publicKey: string };
  const pair = await generatePasetoKeyPair();
  writeFileSync(file, `${JSON.stringify({ secretKey: pair.secretKey, publicKey: pair.publicKey }, null, 2)}\n`, { mode: 0o600 });
  log(`generated development PASETO keys in ${path.relative(process.cwd(), file) || file}`);
  return pair;
}

function runToEnd(name: string, args: string[], env: NodeJS.ProcessEnv): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...NODE_ARGS, ...args], { env, stdio: ['ignore', 'inherit', 'inherit'] });
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new StartError(`${name} failed (exit code ${code})`))));
  });
}

async function httpOk(url: string): Promise<boolean> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(1_000) });
    return response.ok;
  } catch {
    return false;
  }
}

async function main(): Promise<number> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  await loadSecretsIntoEnv(env);
  const production = env.NODE_ENV === 'production';
  if (production) {
    const missing = ['DATABASE_URL', 'REDIS_URL', 'SMTP_URL', 'PASETO_SECRET_KEY'].filter((key) => !env[key]);
    if (missing.length > 0) throw new StartError(`production mode needs ${missing.join(', ')} configured (no development defaults)`);
  }
  const dataDir = path.resolve(env.BANK_DATA_DIR ?? path.join(ROOT, '.data'));
  mkdirSync(dataDir, { recursive: true });

  const stores: Store[] = [];
  const postgres = await resolvePostgres(env, dataDir, log);
  stores.push(postgres);
  const redis = await resolveRedis(env, dataDir, {}, log);
  stores.push(redis);
  log(`database: ${postgres.description}`);
  log(`redis: ${redis.description}`);

  const supervisor = new Supervisor(log);
  const httpPort = await portOr(env.HTTP_PORT, 8080);
  const grpcPort = await portOr(env.GRPC_PORT, 9090);
  const grpcMetricsPort = await portOr(env.METRICS_PORT, 9464);
  const workerMetricsPort = env.METRICS_PORT ? Number(env.METRICS_PORT) + 1 : await portOr(undefined, 9465);
  const apiMetricsPort = env.METRICS_PORT ? Number(env.METRICS_PORT) + 2 : await portOr(undefined, 9466);
  const base: NodeJS.ProcessEnv = {
    ...env,
    DATABASE_URL: postgres.url,
    REDIS_URL: redis.url,
    HTTP_PORT: String(httpPort),
    GRPC_PORT: String(grpcPort),
    PUBLIC_BASE_URL: env.PUBLIC_BASE_URL ?? `http://localhost:${httpPort}`,
    // libuv reads it once, when the child's thread pool starts: only the parent can set it. bcrypt
    // takes at most BCRYPT_CONCURRENCY (2) threads, the rest stay free during a login burst.
    UV_THREADPOOL_SIZE: env.UV_THREADPOOL_SIZE ?? '8',
    // Readable, coloured lines for the person at the terminal (pino-pretty); JSON in production.
    LOG_FORMAT: env.LOG_FORMAT ?? (production ? 'json' : 'pretty'),
    // Every sign-up on a laptop comes from 127.0.0.1, and `npm run smoke` makes four: the
    // production default (10 an hour per address) would stop the third smoke run of the hour.
    ...(production || env.SIGNUP_RATE_LIMIT_PER_ADDRESS ? {} : { SIGNUP_RATE_LIMIT_PER_ADDRESS: '1000' }),
  };

  let inboxUrl: string | null = null;
  if (!env.SMTP_URL) {
    const smtpPort = await portOr(env.INBOX_SMTP_PORT, 1025);
    const inboxHttpPort = await portOr(env.INBOX_HTTP_PORT, 8025);
    supervisor.start({
      name: 'inbox',
      command: process.execPath,
      args: [...NODE_ARGS, path.join(ROOT, 'scripts/dev/src/inbox/main.ts')],
      env: { ...base, INBOX_SMTP_PORT: String(smtpPort), INBOX_HTTP_PORT: String(inboxHttpPort), INBOX_DIR: path.join(dataDir, 'inbox') },
    });
    base.SMTP_URL = `smtp://127.0.0.1:${smtpPort}`;
    inboxUrl = `http://127.0.0.1:${inboxHttpPort}`;
    await waitFor(() => isListening('127.0.0.1', smtpPort), 10_000);
  }
  if (!env.PASETO_SECRET_KEY) {
    const keys = await devKeys(dataDir);
    base.PASETO_SECRET_KEY = keys.secretKey;
  }

  log('migrating');
  await runToEnd('migrator', [path.join(ROOT, 'services/migrator/src/main.ts'), 'up'], base);

  // Each with its tracing preload, which does nothing unless OTEL_EXPORTER_OTLP_ENDPOINT is set.
  const service = (name: string, extra: NodeJS.ProcessEnv = {}) =>
    supervisor.start({
      name,
      command: process.execPath,
      args: [...NODE_ARGS, `--import=${pathToFileURL(path.join(ROOT, `services/${name}/src/instrument.ts`)).href}`, path.join(ROOT, `services/${name}/src/main.ts`)],
      env: { ...base, ...extra },
    });
  service('api', { METRICS_PORT: String(apiMetricsPort) });
  service('grpc', { METRICS_PORT: String(grpcMetricsPort) });
  service('worker', { METRICS_PORT: String(workerMetricsPort) });

  let stopping: Promise<number> | null = null;
  const shutdown = (signal: string) => {
    stopping ??= (async () => {
      log(`${signal}: stopping every process`);
      const deadline = Number(env.SHUTDOWN_TIMEOUT_MS ?? 20_000) + 2_000;
      const reports = await supervisor.stop(deadline);
      for (const r of reports) {
        log(`${r.name}: exited ${r.clean ? 'cleanly' : 'UNCLEANLY'} (${r.signal ?? `code ${r.code}`}) in ${(r.afterMs / 1_000).toFixed(1)} s`);
      }
      for (const store of stores) await store.stop?.();
      const clean = reports.every((r) => r.clean);
      log(clean ? 'stopped: every process exited cleanly' : 'stopped: some processes did not exit cleanly');
      return clean ? 0 : 1;
    })();
    return stopping;
  };
  const exitCode = new Promise<number>((resolve) => {
    process.once('SIGINT', () => void shutdown('SIGINT').then(resolve));
    process.once('SIGTERM', () => void shutdown('SIGTERM').then(resolve));
  });

  const checks = [
    { name: 'api', url: `http://127.0.0.1:${httpPort}/readyz` },
    { name: 'grpc', url: `http://127.0.0.1:${grpcMetricsPort}/readyz` },
    { name: 'worker', url: `http://127.0.0.1:${workerMetricsPort}/readyz` },
  ];
  const ready = await Promise.all(checks.map((c) => waitFor(() => httpOk(c.url), 60_000, 300)));
  const notReady = checks.filter((_, i) => !ready[i]).map((c) => c.name);
  // One write for the whole block: a reader of the pipe (a test, a script) that sees `ready` sees
  // the addresses with it, never a chunk boundary between them.
  log(
    notReady.length > 0 ? `not ready after 60 s: ${notReady.join(', ')} (still supervising; see their logs above)` : 'ready',
    `HTTP API     http://localhost:${httpPort}   (web app: /app/, docs: /docs, OpenAPI: /openapi.json; metrics: http://localhost:${apiMetricsPort}/metrics)`,
    `gRPC         localhost:${grpcPort}   (reflection ${(env.GRPC_REFLECTION ? env.GRPC_REFLECTION === 'true' : !production) ? 'on' : 'off'}; metrics: http://localhost:${grpcMetricsPort}/metrics)`,
    `worker       metrics: http://localhost:${workerMetricsPort}/metrics`,
    ...(inboxUrl ? [`inbox        ${inboxUrl}   (every email the stack sends)`] : []),
    'Ctrl-C stops everything',
  );
  return exitCode;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    const message = error instanceof StartError || error instanceof StoreUnavailable ? error.message : String((error as Error)?.message ?? error);
    console.error(`[start] cannot start: ${message.split('\n')[0]}`);
    process.exit(1);
  },
);
