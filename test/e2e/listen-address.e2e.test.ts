// Where the servers listen. By default (HOST unset: `npm start`, a laptop) every listener binds the
// loopback address only, so the development stack is not open to the network the laptop is on;
// HOST=0.0.0.0 (the images and manifests) binds every interface. Checked by connecting to each
// port through an address of this machine that is not loopback.
import net from 'node:net';
import os from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startApiServer } from '@bank/api/api-server';
import { startGrpcServer } from '@bank/grpc/grpc-server';
import { generatePasetoKeyPair } from '@bank/shared/auth/token-maker';
import { parseConfig, type Config } from '@bank/shared/config/config';
import { createLogger } from '@bank/shared/logging/logger';
import { startWorker } from '@bank/worker/worker';
import { randomBytes } from 'node:crypto';
import { createTestDatabase, type TestDatabase } from '../db.ts';
import { TEST_REDIS_URL } from '../services.ts';

const logger = createLogger({ name: 'e2e', level: 'silent', pretty: false });
let db: TestDatabase;
let env: Record<string, string>;

/** An IPv4 address of this machine other than loopback, if it has one. */
const externalAddress = Object.values(os.networkInterfaces())
  .flat()
  .find((address) => address !== undefined && address.family === 'IPv4' && !address.internal)?.address;

/** True when a TCP connection to host:port is accepted. */
function accepts(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    socket.setTimeout(2_000);
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => (socket.destroy(), resolve(false)));
  });
}

type Listener = { name: string; port: number; host: string };

/** Starts the API, the gRPC server and the worker with `HOST` as given (unset: the default). */
async function startAll(host: string | undefined): Promise<{ listeners: Listener[]; close: () => Promise<void> }> {
  const config: Config = parseConfig({ ...env, ...(host === undefined ? {} : { HOST: host }) });
  const api = await startApiServer(config, { logger, pool: db.pool });
  const grpc = await startGrpcServer(config, { logger, pool: db.pool });
  const worker = await startWorker(config, { logger, pool: db.pool });
  return {
    listeners: [
      { name: 'HTTP API', port: api.port, host: api.host },
      { name: 'API metrics', port: api.metricsPort, host: api.metricsHost },
      { name: 'gRPC', port: grpc.port, host: grpc.host },
      { name: 'gRPC metrics', port: grpc.metricsPort, host: grpc.metricsHost },
      { name: 'worker metrics', port: worker.metricsPort, host: worker.metricsHost },
    ],
    close: async () => {
      await Promise.all([api.close(), grpc.close()]);
      await worker.close();
    },
  };
}

beforeAll(async () => {
  db = await createTestDatabase({ poolSize: 4 });
  const keys = await generatePasetoKeyPair();
  const run = randomBytes(4).toString('hex');
  env = {
    NODE_ENV: 'test',
    LOG_LEVEL: 'silent',
    DATABASE_URL: db.url,
    REDIS_URL: TEST_REDIS_URL,
    SMTP_URL: 'smtp://127.0.0.1:1',
    PUBLIC_BASE_URL: 'http://bank.test',
    HTTP_PORT: '0',
    GRPC_PORT: '0',
    METRICS_PORT: '0',
    PASETO_SECRET_KEY: keys.secretKey,
    SHUTDOWN_TIMEOUT_MS: '2000',
    EMAIL_QUEUE_NAME: `bank-email-listen-${run}`,
    REDIS_KEY_PREFIX: `bank:listen:${run}:`,
  };
});

afterAll(async () => {
  await db?.drop();
});

describe('listening addresses', () => {
  it('by default every listener (HTTP, gRPC, the metrics servers) binds loopback only', async () => {
    expect(parseConfig({}).HOST).toBe('127.0.0.1');
    const started = await startAll(undefined);
    try {
      for (const listener of started.listeners) {
        expect({ [listener.name]: await accepts('127.0.0.1', listener.port) }).toEqual({ [listener.name]: true });
        if (externalAddress) {
          expect({ [listener.name]: await accepts(externalAddress, listener.port) }).toEqual({ [listener.name]: false });
        } else {
          // No address but loopback on this machine: the bound address says it instead.
          expect({ [listener.name]: listener.host }).toEqual({ [listener.name]: '127.0.0.1' });
        }
      }
    } finally {
      await started.close();
    }
  });

  it('HOST=0.0.0.0 binds every interface', async () => {
    const started = await startAll('0.0.0.0');
    try {
      for (const listener of started.listeners) {
        expect({ [listener.name]: listener.host }).toEqual({ [listener.name]: '0.0.0.0' });
        expect({ [listener.name]: await accepts(externalAddress ?? '127.0.0.1', listener.port) }).toEqual({ [listener.name]: true });
      }
    } finally {
      await started.close();
    }
  });
});
