// The edge's chain over the real use cases, PostgreSQL and Redis: a call given up before its use
// case runs (deadline passed, client gone) issues no query at all. Queries are counted by a Slonik
// interceptor on the pool the use cases run on, not timed.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { AuthService } from '@bank/proto/bank/v1/auth_service_pb';
import { TransferService } from '@bank/proto/bank/v1/transfer_service_pb';
import { UserService } from '@bank/proto/bank/v1/user_service_pb';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { createBank, type Bank } from '@bank/shared/app/bank';
import { generatePasetoKeyPair } from '@bank/shared/auth/token-maker';
import { parseConfig } from '@bank/shared/config/config';
import { createDatabasePool, type DatabasePool } from '@bank/shared/db/pool';
import { migrateUp } from '@bank/migrator/migrator';
import { createEmptyDatabase } from '../../test/db.ts';
import { TEST_REDIS_URL } from '../../test/services.ts';
import { createBankEdge, type BankEdge } from './bank-edge.ts';
import { answerOf } from './call/interceptors.ts';
import type { UnaryCall } from './call/call.ts';

let drop: () => Promise<void>;
let pool: DatabasePool;
let bank: Bank;
let edge: BankEdge;
let queries = 0;

beforeAll(async () => {
  const db = await createEmptyDatabase('bank_edge');
  drop = db.drop;
  await migrateUp(db.url);
  pool = await createDatabasePool(db.url, {
    maximumPoolSize: 2,
    interceptors: [
      {
        name: 'count-queries',
        beforeQueryExecution: async () => {
          queries += 1;
          return null;
        },
      },
    ],
  });
  const keys = await generatePasetoKeyPair();
  const run = randomBytes(4).toString('hex');
  const config = parseConfig({
    REDIS_URL: TEST_REDIS_URL,
    PASETO_SECRET_KEY: keys.secretKey,
    BCRYPT_COST: '4',
    EMAIL_QUEUE_NAME: `bank-email-edge-${run}`,
    REDIS_KEY_PREFIX: `bank:edge:${run}:`,
  });
  const logger = pino({ level: 'silent' });
  bank = await createBank(config, { pool, logger });
  edge = createBankEdge({ useCases: bank, logger, registry: new Registry() });
});

afterAll(async () => {
  await bank?.close();
  await pool?.end();
  await drop?.();
});

function call(method: UnaryCall['method'], options: { decode: () => Promise<unknown>; clientSignal?: AbortSignal; deadlineMs?: number; authorization?: string }): UnaryCall {
  const clientSignal = options.clientSignal ?? new AbortController().signal;
  return {
    transport: { protocol: 'http', logMessage: 'request', outcome: () => ({}) },
    method,
    header: (name) => (name === 'authorization' ? options.authorization : undefined),
    setResponseHeader: () => undefined,
    clientIp: '127.0.0.1',
    deadlineMs: options.deadlineMs,
    clientSignal,
    decode: options.decode,
    requestId: '',
    actor: undefined,
    signal: clientSignal,
  };
}

const signUpRequest = () => ({ username: `u_${randomBytes(5).toString('hex')}`, fullName: 'Edge Test', email: `${randomBytes(5).toString('hex')}@example.test`, password: 'correct horse battery' });

describe('a call given up before its use case runs', () => {
  it('is answered CANCELLED with zero queries when the client is already gone, even before authentication', async () => {
    const gone = new AbortController();
    gone.abort();
    const before = queries;
    const failure = await edge
      .handle(call(TransferService.method.createTransfer, { decode: async () => ({}), clientSignal: gone.signal, authorization: 'Bearer v4.public.anything' }))
      .catch((error: unknown) => error);
    expect(answerOf(failure).code).toBe('CANCELLED');
    expect(queries - before).toBe(0);
  });

  it('is answered DEADLINE_EXCEEDED with zero queries when the deadline passed while its body was still arriving', async () => {
    let bodyRead!: () => void;
    const bodyDone = new Promise<void>((resolve) => (bodyRead = resolve));
    const before = queries;
    const pending = edge.handle(
      call(UserService.method.createUser, {
        deadlineMs: 20,
        decode: async () => {
          await new Promise((resolve) => setTimeout(resolve, 100));
          bodyRead();
          return signUpRequest();
        },
      }),
    );
    const failure = await pending.catch((error: unknown) => error);
    expect(answerOf(failure).code).toBe('DEADLINE_EXCEEDED');
    await bodyDone;
    await new Promise((resolve) => setImmediate(resolve));
    expect(queries - before).toBe(0);
  });

  it('is answered CANCELLED with zero queries when the client hangs up while its body was still arriving', async () => {
    const client = new AbortController();
    let bodyRead!: () => void;
    const bodyDone = new Promise<void>((resolve) => (bodyRead = resolve));
    const before = queries;
    const failure = await edge
      .handle(
        call(AuthService.method.login, {
          clientSignal: client.signal,
          decode: async () => {
            client.abort();
            await new Promise((resolve) => setTimeout(resolve, 20));
            bodyRead();
            return { username: 'nobody', password: 'whatever password' };
          },
        }),
      )
      .catch((error: unknown) => error);
    expect(answerOf(failure).code).toBe('CANCELLED');
    await bodyDone;
    await new Promise((resolve) => setImmediate(resolve));
    expect(queries - before).toBe(0);
  });

  it('runs and queries as usual when nothing was given up (the counter sees the use case)', async () => {
    const before = queries;
    const user = await edge.handle(call(UserService.method.createUser, { decode: async () => signUpRequest() }));
    expect(user).toMatchObject({ fullName: 'Edge Test' });
    expect(queries - before).toBeGreaterThan(0);
  });
});
