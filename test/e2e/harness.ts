// Starts the real stack in-process for end-to-end tests: a fresh migrated PostgreSQL database,
// the shared Redis (unique queue name and key prefixes), a real SMTP receiver, the email worker,
// the HTTP gateway and the gRPC server, each on a free port.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll } from '@jest/globals';
import { generatePasetoKeyPair } from '@bank/shared/auth/token-maker';
import { parseConfig, type Config } from '@bank/shared/config/config';
import type { DestinationStream } from 'pino';
import { createLogger, type Logger } from '@bank/shared/logging/logger';
import { startApiServer, type ApiServer } from '@bank/api/api-server';
import { startGrpcServer, type GrpcServer } from '@bank/grpc/grpc-server';
import { startWorker, type RunningWorker } from '@bank/worker/worker';
import type { Interceptor } from '@bank/edge/call/call';
import { createTestDatabase, type TestDatabase } from '../db.ts';
import { grpcTransport, httpTransport, type Transport, type TransportName } from './transports.ts';
import { TEST_REDIS_URL } from '../services.ts';
import { startTestSmtpServer, type TestSmtpServer } from '../smtp.ts';

export type Stack = {
  config: Config;
  db: TestDatabase;
  smtp: TestSmtpServer;
  worker: RunningWorker;
  api: ApiServer;
  grpc: GrpcServer;
  logger: Logger;
  stop(): Promise<void>;
};

export async function startStack(
  options: {
    env?: Record<string, string>;
    poolSize?: number;
    logDestination?: DestinationStream;
    /** Extra interceptors for both edges' chains. */
    interceptors?: readonly Interceptor[];
  } = {},
): Promise<Stack> {
  const db = await createTestDatabase({ poolSize: 4 });
  const smtp = await startTestSmtpServer();
  const keys = await generatePasetoKeyPair();
  const run = randomBytes(4).toString('hex');
  const config = parseConfig({
    NODE_ENV: 'test',
    LOG_LEVEL: process.env.E2E_LOG_LEVEL ?? 'silent',
    DATABASE_URL: db.url,
    DATABASE_POOL_SIZE: String(options.poolSize ?? 10),
    REDIS_URL: TEST_REDIS_URL,
    SMTP_URL: smtp.url,
    PUBLIC_BASE_URL: 'http://bank.test',
    HTTP_PORT: '0',
    GRPC_PORT: '0',
    METRICS_PORT: '0',
    PASETO_SECRET_KEY: keys.secretKey,
    PASETO_PUBLIC_KEYS: keys.publicKey,
    BCRYPT_COST: '4',
    LOGIN_RATE_LIMIT_MAX: '1000',
    // Every suite signs up (and may reset passwords) from 127.0.0.1: abuse limits far above them.
    SIGNUP_RATE_LIMIT_PER_ADDRESS: '100000',
    SIGNUP_RATE_LIMIT_GLOBAL: '100000',
    PASSWORD_RESET_RATE_LIMIT_PER_EMAIL: '100000',
    PASSWORD_RESET_RATE_LIMIT_PER_ADDRESS: '100000',
    CORS_ORIGINS: 'https://app.bank.test',
    HTTP_BODY_LIMIT_BYTES: '16384',
    SHUTDOWN_TIMEOUT_MS: '5000',
    EMAIL_QUEUE_NAME: `bank-email-e2e-${run}`,
    REDIS_KEY_PREFIX: `bank:e2e:${run}:`,
    OUTBOX_SWEEP_INTERVAL_MS: '1000',
    ...options.env,
  });
  const logger = createLogger({
    name: 'e2e',
    level: options.logDestination ? 'info' : config.LOG_LEVEL,
    pretty: false,
    ...(options.logDestination ? { destination: options.logDestination } : {}),
  });
  const worker = await startWorker(config, { logger, host: '127.0.0.1' });
  const api = await startApiServer(config, { logger, host: '127.0.0.1', ...(options.interceptors ? { interceptors: options.interceptors } : {}) });
  const grpc = await startGrpcServer(config, { logger, host: '127.0.0.1', ...(options.interceptors ? { interceptors: options.interceptors } : {}) });
  return {
    config,
    db,
    smtp,
    worker,
    api,
    grpc,
    logger,
    async stop() {
      await Promise.allSettled([api.close(), grpc.close()]);
      await worker.close();
      await smtp.close();
      await db.drop();
    },
  };
}

/** A username unique to this run. */
export const uniqueName = (prefix = 'u'): string => `${prefix}_${randomBytes(5).toString('hex')}`;

/**
 * The set-up most suites share: the stack started before the suite's tests, a transport of each
 * kind on it, everything stopped after. Read `stack` and `transports` inside tests, not at load.
 */
export function stackPerSuite(options: Parameters<typeof startStack>[0] = {}): { readonly stack: Stack; readonly transports: ReadonlyMap<TransportName, Transport> } {
  let stack: Stack | undefined;
  const transports = new Map<TransportName, Transport>();
  beforeAll(async () => {
    stack = await startStack(options);
    transports.set('http', httpTransport(stack.api.url));
    transports.set('grpc', grpcTransport(stack.grpc.address));
  });
  afterAll(async () => {
    for (const t of transports.values()) t.close();
    await stack?.stop();
  });
  return {
    get stack() {
      if (!stack) throw new Error('the stack starts in beforeAll; read it inside a test');
      return stack;
    },
    transports,
  };
}
