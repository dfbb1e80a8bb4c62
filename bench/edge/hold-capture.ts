// Hold then capture over HTTP: each unit of work is a pair, POST /v1/transfers with `hold` and
// then POST /v1/transfers/{id}/capture of the id the first answer gave, from `concurrency` loops in
// this process (closed loop: a loop starts its next pair when its capture is answered). wrk times
// single requests and its Lua hooks see answers per thread, not per connection, so a request that
// depends on the previous answer fits it badly; this driver times the pair from the hold's start
// to the capture's answer. It uses node:http with one keep-alive connection per loop (in a trial
// run fetch cost this process five times the CPU per pair, taken from the stack's own cores), and
// its CPU is reported as the client's, as the gRPC client's is.
import http from 'node:http';
import { percentile } from './grpc-load.ts';
import type { BenchUser } from './users.ts';
import type { LoadResult } from './wrk.ts';

/** How long each hold would live uncaptured; every one is captured within milliseconds. */
const HOLD_TTL_SECONDS = 300;

type Step = { ok: true; body: string } | { ok: false; error: string };

function post(agent: http.Agent, url: URL, route: string, token: string, key: string, body: unknown, expect: number): Promise<Step> {
  const payload = JSON.stringify(body);
  return new Promise<Step>((resolve) => {
    const request = http.request(
      {
        agent,
        host: url.hostname,
        port: url.port,
        method: 'POST',
        path: route,
        timeout: 10_000,
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(payload),
          accept: 'application/json',
          authorization: `Bearer ${token}`,
          'idempotency-key': key,
        },
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.once('error', (error) => resolve({ ok: false, error: error.message }));
        response.once('end', () => {
          const text = Buffer.concat(chunks).toString();
          resolve(response.statusCode === expect ? { ok: true, body: text } : { ok: false, error: `${response.statusCode} ${text.replace(/\s+/g, ' ').slice(0, 300)}` });
        });
      },
    );
    request.once('timeout', () => request.destroy(new Error('no answer within 10 s')));
    request.once('error', (error) => resolve({ ok: false, error: error.message }));
    request.end(payload);
  });
}

/**
 * Pairs uniform over the accounts (sender and receiver distinct), 1 minor unit each, for
 * `seconds`. A pair counts when the hold answered 201 and its capture 200; anything else is an
 * error (a failed hold is not followed by a capture). Keys are `<tag>-<n>-hold` / `-capture`.
 */
export async function runHoldCapture(options: {
  baseUrl: string;
  users: readonly BenchUser[];
  tag: string;
  concurrency: number;
  seconds: number;
}): Promise<LoadResult> {
  const { users } = options;
  const base = new URL(options.baseUrl);
  const agent = new http.Agent({ keepAlive: true, maxSockets: options.concurrency });
  const n = users.length;
  const latencies: number[] = [];
  let errors = 0;
  let firstError = '';
  let seq = 0;
  const fail = (step: string, error: string) => {
    errors += 1;
    firstError ||= `${step}: ${error}`;
  };
  const pair = async () => {
    const from = Math.floor(Math.random() * n);
    const to = (from + 1 + Math.floor(Math.random() * (n - 1))) % n;
    const sender = users[from]!;
    const key = `${options.tag}-${seq++}`;
    const started = performance.now();
    const hold = await post(agent, base, '/v1/transfers', sender.accessToken, `${key}-hold`, {
      fromAccountId: String(sender.accountId),
      toAccountId: String(users[to]!.accountId),
      amount: '1',
      currency: 'USD',
      hold: { ttlSeconds: HOLD_TTL_SECONDS },
    }, 201);
    if (!hold.ok) return fail('hold', hold.error);
    const id = (JSON.parse(hold.body) as { transfer?: { id?: string } }).transfer?.id;
    if (!id) return fail('hold', `201 without transfer.id: ${hold.body.slice(0, 200)}`);
    const capture = await post(agent, base, `/v1/transfers/${id}/capture`, sender.accessToken, `${key}-capture`, {}, 200);
    if (!capture.ok) return fail('capture', capture.error);
    latencies.push(performance.now() - started);
  };
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  const deadline = started + options.seconds * 1_000;
  try {
    await Promise.all(
      Array.from({ length: options.concurrency }, async () => {
        while (performance.now() < deadline) await pair();
      }),
    );
  } finally {
    agent.destroy();
  }
  const seconds = (performance.now() - started) / 1_000;
  const cpu = process.cpuUsage(cpuBefore);
  latencies.sort((a, b) => a - b);
  return {
    requests: latencies.length + errors,
    errors,
    firstError,
    seconds: Number(seconds.toFixed(2)),
    okPerSecond: latencies.length / seconds,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    clientCpuSeconds: (cpu.user + cpu.system) / 1e6,
  };
}
