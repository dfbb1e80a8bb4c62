// One trace across real processes: the API and the worker run as `node --import <preload> main.ts`
// (OpenTelemetry's ESM hooks only work that way), exporting OTLP/HTTP JSON to a receiver in this
// test. A sign-up's trace must hold the HTTP request, its PostgreSQL queries, the BullMQ job in the
// worker and the SMTP send, under one trace id; the test prints the tree.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { generatePasetoKeyPair } from '@bank/shared/auth/token-maker';
import { createTestDatabase, type TestDatabase } from '../db.ts';
import { TEST_REDIS_URL } from '../services.ts';
import { startTestSmtpServer, type TestSmtpServer } from '../smtp.ts';
import { renderTrace, startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from '../support/otlp-receiver.ts';
import { UserService } from '@bank/proto/bank/v1/user_service_pb';
import { uniqueName } from './harness.ts';
import { grpcTransport } from './transports.ts';

const root = path.resolve(import.meta.dirname, '../..');
const SERVER = 2;
const CONSUMER = 5;

type Running = { child: ChildProcess; line: Record<string, unknown>; lines: () => Record<string, unknown>[] };

/** Starts `node --import <preload> <entry>` and resolves with the first JSON log line whose msg is `message`. */
function start(service: 'api' | 'grpc' | 'worker', env: NodeJS.ProcessEnv, message: string): Promise<Running> {
  const args = ['--disable-warning=ExperimentalWarning', `--import=./services/${service}/src/instrument.ts`, `services/${service}/src/main.ts`];
  const child = spawn(process.execPath, args, { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  // Whole lines only: a chunk may end inside a line that the next one completes.
  const lines = () => output.split('\n').slice(0, -1).filter((text) => text.startsWith('{')).map((text) => JSON.parse(text) as Record<string, unknown>);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${service} did not log "${message}":\n${output}`)), 30_000);
    child.stdout?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      const line = lines().find((candidate) => candidate.msg === message);
      if (line) {
        clearTimeout(timer);
        resolve({ child, line, lines });
      }
    });
    child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${service} exited with ${code}:\n${output}`));
    });
  });
}

/**
 * The first log line of `running` that `matches`, read up to `attempts` times 20 ms apart: a
 * request's log line reaches this process through a pipe, after the answer may have.
 */
async function loggedLine(running: Running, matches: (line: Record<string, unknown>) => boolean, attempts = 250) {
  for (let attempt = 1; ; attempt++) {
    const line = running.lines().find(matches);
    if (line || attempt >= attempts) return line;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const stop = (child: ChildProcess) =>
  new Promise<void>((resolve) => {
    if (child.exitCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });

let db: TestDatabase;
let smtp: TestSmtpServer;
let receiver: OtlpReceiver;
let api: Running;
let worker: Running;
let grpc: Running;

let env: NodeJS.ProcessEnv;

beforeAll(async () => {
  [db, smtp, receiver] = await Promise.all([createTestDatabase({ poolSize: 1 }), startTestSmtpServer(), startOtlpReceiver()]);
  const keys = await generatePasetoKeyPair();
  env = {
    PATH: process.env.PATH,
    NODE_ENV: 'test',
    LOG_LEVEL: 'info',
    LOG_FORMAT: 'json',
    DATABASE_URL: db.url,
    REDIS_URL: TEST_REDIS_URL,
    SMTP_URL: smtp.url,
    HTTP_PORT: '0',
    GRPC_PORT: '0',
    METRICS_PORT: '0',
    PASETO_SECRET_KEY: keys.secretKey,
    BCRYPT_COST: '4',
    SHUTDOWN_TIMEOUT_MS: '3000',
    EMAIL_QUEUE_NAME: `bank-email-trace-${Date.now()}`,
    REDIS_KEY_PREFIX: `bank:trace:${Date.now()}:`,
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint,
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
    OTEL_BSP_SCHEDULE_DELAY: '100',
  };
  [api, worker, grpc] = await Promise.all([
    start('api', env, 'HTTP API listening'),
    start('worker', env, 'worker started'),
    start('grpc', env, 'gRPC server listening'),
  ]);
  // Three processes starting at once on two cores, each loading the SDK: allow for a busy machine.
}, 120_000);

afterAll(async () => {
  await Promise.all([api, worker, grpc].filter(Boolean).map((running) => stop(running.child)));
  await Promise.allSettled([receiver?.close(), smtp?.close(), db?.drop()]);
});

describe('tracing across processes', () => {
  it('one trace id spans the sign-up request, its PostgreSQL queries, the BullMQ job in the worker and the SMTP send', async () => {
    const username = uniqueName('trace');
    const response = await fetch(`http://127.0.0.1:${Number(api.line.port)}/v1/users`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username, fullName: 'Trace Example', email: `${username}@example.test`, password: 'correct horse battery' }),
    });
    expect(response.status).toBeLessThan(300);
    await smtp.waitForMessageTo(`${username}@example.test`);

    const request = (spans: ReceivedSpan[]) => spans.find((span) => span.service === 'api' && span.kind === SERVER && span.name === 'POST /v1/users');
    const inTrace = (spans: ReceivedSpan[]) => spans.filter((span) => span.traceId === request(spans)?.traceId);
    const spans = inTrace(await receiver.waitFor((all) => inTrace(all).some((span) => span.name === 'smtp send')));
    console.log(`trace ${request(spans)?.traceId} of one sign-up (${spans.length} spans):\n${renderTrace(spans)}`);

    const postgres = spans.filter((span) => span.attributes['db.system.name'] === 'postgresql' || span.attributes['db.system'] === 'postgresql');
    expect(postgres.filter((span) => span.service === 'api').length).toBeGreaterThan(0);
    expect(postgres.filter((span) => span.service === 'worker').length).toBeGreaterThan(0);
    // Redis too: the sign-up's rate limit and the enqueue are ioredis commands inside the request.
    const redis = spans.filter((span) => span.attributes['db.system.name'] === 'redis' || span.attributes['db.system'] === 'redis');
    expect(redis.filter((span) => span.service === 'api').length).toBeGreaterThan(0);
    const job = spans.find((span) => span.service === 'worker' && span.kind === CONSUMER);
    expect(job?.attributes['bank.email.kind']).toBe('send-verification-email');
    const send = spans.find((span) => span.name === 'smtp send');
    expect(send?.service).toBe('worker');
    // The SMTP send happens inside the job, whose parent is the enqueue in the API's request.
    expect(send?.parentSpanId).toBe(job?.spanId);
    expect(spans.find((span) => span.spanId === job?.parentSpanId)?.service).toBe('api');
  });

  it('the log lines written inside the request and the job carry its trace id', async () => {
    const request = receiver.spans.find((span) => span.service === 'api' && span.kind === SERVER && span.name === 'POST /v1/users');
    const apiLine = await loggedLine(api, (line) => line.msg === 'request' && line.route === '/v1/users');
    const workerLine = await loggedLine(worker, (line) => line.msg === 'email sent');
    expect({ api: apiLine?.trace_id, worker: workerLine?.trace_id }).toEqual({ api: request?.traceId, worker: request?.traceId });
  });

  it('a gRPC call is traced too: the server span and its PostgreSQL queries under one trace id', async () => {
    const username = uniqueName('tracegrpc');
    const transport = grpcTransport(`127.0.0.1:${Number(grpc.line.port)}`);
    try {
      await transport.call(UserService, 'createUser', { username, fullName: 'Trace Example', email: `${username}@example.test`, password: 'correct horse battery' });
    } finally {
      transport.close();
    }
    const call = (spans: ReceivedSpan[]) => spans.find((span) => span.service === 'grpc' && span.kind === SERVER && span.name.includes('UserService/CreateUser'));
    const spans = await receiver.waitFor((all) => all.some((span) => span.traceId === call(all)?.traceId && span.name === 'send ' + String(span.attributes['messaging.destination.name'])));
    const trace = spans.filter((span) => span.traceId === call(spans)?.traceId);
    expect(trace.filter((span) => span.service === 'grpc' && span.name.startsWith('pg.query')).length).toBeGreaterThan(0);
  });

  it('the same preload without OTEL_EXPORTER_OTLP_ENDPOINT leaves tracing off: no trace ids in the logs, nothing exported', async () => {
    const { OTEL_EXPORTER_OTLP_ENDPOINT: _endpoint, ...untracedEnv } = env;
    const untraced = await start('api', untracedEnv, 'HTTP API listening');
    try {
      const exportedBefore = receiver.spans.length;
      const username = uniqueName('untraced');
      const response = await fetch(`http://127.0.0.1:${Number(untraced.line.port)}/v1/users`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ username, fullName: 'Untraced Example', email: `${username}@example.test`, password: 'correct horse battery' }),
      });
      expect(response.status).toBeLessThan(300);
      const line = await loggedLine(untraced, (candidate) => candidate.msg === 'request' && candidate.route === '/v1/users');
      expect(line).toBeDefined();
      expect(line).not.toHaveProperty('trace_id');
      // The traced processes are idle: any span exported meanwhile would be this request's.
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(receiver.spans.slice(exportedBefore).filter((span) => span.name === 'POST /v1/users')).toEqual([]);
    } finally {
      await stop(untraced.child);
    }
  });
});
