import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { waitFor } from '@bank/dev-tools/start/ports';
import { VERIFICATION_SUBJECT, waitForMail } from '@bank/dev-tools/smoke/mailbox';
import { runSmoke } from '@bank/dev-tools/smoke/smoke';
import { createEmptyDatabase } from '../db.ts';
import { alive, SHUTDOWN_TIMEOUT_MS, startNpmStart, type NpmStart, type StackPorts } from './npm-start-process.ts';

// The whole stack as a user runs it: `npm start` as a child process in a fresh data folder, on
// free ports, with its own database and queue, driven through the smoke walkthrough.
let npm: NpmStart;
let dropDb: () => Promise<void>;
let ports: StackPorts;
const output = () => npm.output();

/** Sum of every counter sample (`*_total`) a /metrics page shows. */
async function countersTotal(url: string): Promise<number> {
  const text = await (await fetch(url)).text();
  return text
    .split('\n')
    .filter((l) => /^[a-z_]+_total(\{.*\})? /.test(l))
    .reduce((sum, l) => sum + Number(l.split(' ').at(-1)), 0);
}

beforeAll(async () => {
  const db = await createEmptyDatabase('bank_stack');
  dropDb = db.drop;
  npm = await startNpmStart({ name: 'stack', env: { DATABASE_URL: db.url }, readyTimeoutMs: 90_000 });
  ports = npm.ports;
}, 120_000);

afterAll(async () => {
  await npm?.cleanUp();
  await dropDb?.();
});

describe('npm start', () => {
  it('prints where each process listens and generated development keys in the data folder', () => {
    expect(output()).toContain(`HTTP API     http://localhost:${ports.http}`);
    expect(output()).toContain(`gRPC         localhost:${ports.grpc}`);
    expect(output()).toContain(`inbox        http://127.0.0.1:${ports.inboxHttp}`);
    expect(output()).toMatch(/generated development PASETO keys/);
  });

  it('serves the built web app under /app (no dev server), under the same Content-Security-Policy as production', async () => {
    const root = await fetch(`http://127.0.0.1:${ports.http}/`, { redirect: 'manual' });
    expect(root.status).toBe(302);
    expect(root.headers.get('location')).toBe('/app/');
    const page = await fetch(`http://127.0.0.1:${ports.http}/app/login`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(page.headers.get('content-security-policy')).not.toContain('unsafe-inline');
    const src = /<script[^>]* src="(\/app\/assets\/[\w-]+\.js)"/.exec(await page.text())?.[1];
    expect((await fetch(`http://127.0.0.1:${ports.http}${src}`)).status).toBe(200);
  });

  it('passes the smoke walkthrough over HTTP and gRPC, and every process’s counters move', async () => {
    const metricsUrls = {
      api: `http://127.0.0.1:${ports.metrics + 2}/metrics`,
      grpc: `http://127.0.0.1:${ports.metrics}/metrics`,
      worker: `http://127.0.0.1:${ports.metrics + 1}/metrics`,
    };
    const before = Object.fromEntries(await Promise.all(Object.entries(metricsUrls).map(async ([k, u]) => [k, await countersTotal(u)])));
    const steps: string[] = [];
    await runSmoke({
      httpUrl: `http://127.0.0.1:${ports.http}`,
      grpcAddress: `127.0.0.1:${ports.grpc}`,
      inboxUrl: `http://127.0.0.1:${ports.inboxHttp}`,
      log: (line) => steps.push(line),
    });
    expect(steps).toHaveLength(5);
    expect(steps.at(-1)).toMatch(/^grpc: accounts, deposit, transfer/);
    for (const [name, url] of Object.entries(metricsUrls)) {
      const after = await countersTotal(url);
      expect({ name, moved: after > (before[name] as number) }).toEqual({ name, moved: true });
    }
    // The walkthrough's money: USD over HTTP (with one replayed deposit), EUR over gRPC.
    const api = await (await fetch(metricsUrls.api)).text();
    expect(api).toMatch(/bank_money_movements_total\{[^}]*operation="deposit",currency="USD",outcome="ok"[^}]*\} [1-9]/);
    expect(api).toMatch(/bank_money_movements_total\{[^}]*operation="transfer",currency="USD",outcome="ok"[^}]*\} [1-9]/);
    expect(api).toMatch(/bank_idempotent_replays_total\{[^}]*operation="deposit"[^}]*\} 1/);
    expect(api).toMatch(/bank_db_pool_connections\{[^}]*state="idle"/);
    // The walkthrough's money went through the group commit: its batches were timed.
    expect(api).toMatch(/bank_ledger_batch_seconds_count\{[^}]*\} [1-9]/);
    const grpcMetrics = await (await fetch(metricsUrls.grpc)).text();
    expect(grpcMetrics).toMatch(/bank_money_movements_total\{[^}]*operation="transfer",currency="EUR",outcome="ok"[^}]*\} 1/);
    const worker = await (await fetch(metricsUrls.worker)).text();
    expect(worker).toMatch(/bank_emails_sent_total\{[^}]*\} [1-9]/);
  }, 120_000);

  it('restarts a worker killed with SIGKILL, and the email requested meanwhile is delivered', async () => {
    const [pid] = npm.startedPids('worker').slice(-1);
    expect(pid).toBeGreaterThan(0);
    process.kill(pid!, 'SIGKILL');
    const username = `killed_${randomBytes(4).toString('hex')}`;
    const email = `${username}@example.test`;
    const response = await fetch(`http://127.0.0.1:${ports.http}/v1/users`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username, fullName: 'Killed Worker', email, password: 'correct horse battery' }),
    });
    expect(response.status).toBe(201);
    expect(await waitFor(async () => npm.startedPids('worker').some((p) => p !== pid && npm.startedPids('worker').indexOf(p) > npm.startedPids('worker').indexOf(pid!)), 20_000)).toBe(true);
    expect(output()).toMatch(/worker: exited \(SIGKILL\)/);
    const mail = await waitForMail(`http://127.0.0.1:${ports.inboxHttp}`, email, VERIFICATION_SUBJECT, { timeoutMs: 30_000 });
    expect(mail.text).toContain('/app/verify-email?');
  }, 60_000);

  it('stops every process cleanly within the deadline on SIGTERM', async () => {
    const started = Date.now();
    const children = npm.startedPids().filter(alive);
    expect(children.length).toBeGreaterThanOrEqual(4); // inbox, api, grpc, worker
    process.kill(-npm.child.pid!, 'SIGTERM');
    const stopped = await waitFor(async () => /\[start\] stopped: /.test(output()), SHUTDOWN_TIMEOUT_MS + 5_000, 100);
    const elapsed = Date.now() - started;
    expect(stopped).toBe(true);
    expect(elapsed).toBeLessThan(SHUTDOWN_TIMEOUT_MS + 5_000);
    expect(output()).toMatch(/\[start\] stopped: every process exited cleanly/);
    for (const name of ['api', 'grpc', 'worker', 'inbox']) {
      expect(output()).toMatch(new RegExp(`\\[start\\] ${name}: exited cleanly \\(code 0\\)`));
    }
    expect(await waitFor(async () => children.every((pid) => !alive(pid)), 2_000)).toBe(true);
  }, 30_000);
});
