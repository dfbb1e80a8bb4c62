// The stack under measurement: a fresh database on the local server and `npm start` on it, run
// the way the stack tests run it (own process group, free ports, its own queue and data folder).
import { spawnSync } from 'node:child_process';
import { createEmptyDatabase } from '../../test/db.ts';
import { alive, startNpmStart, type NpmStart } from '../../test/stack/npm-start-process.ts';

/**
 * DEPOSIT_MAX_AMOUNT, DEPOSIT_DAILY_LIMIT and OUTGOING_DAILY_LIMIT of the bench's stack: the
 * largest each may be (10^15 minor units), far above what the bench funds and moves per account
 * (10^11 each), so the runs measure speed and not limit refusals. pgbench's ledger_apply() calls
 * pass the same.
 */
export const BENCH_MONEY_LIMIT = 1_000_000_000_000_000n;

export type BenchStack = {
  readonly databaseUrl: string;
  readonly databaseName: string;
  readonly httpUrl: string;
  readonly grpcAddress: string;
  readonly inboxUrl: string;
  /** /metrics of the API process (its METRICS_PORT: npm start's METRICS_PORT + 2). */
  readonly apiMetricsUrl: string;
  /** /metrics of the gRPC process (its METRICS_PORT). */
  readonly grpcMetricsUrl: string;
  /** The pid of the started `npm start`: every process of this stack runs under it. */
  readonly rootPid: number;
  /** SIGTERM to the supervisor's group, waits for it, then removes what is left and drops the database. */
  stop(): Promise<void>;
};

/** The one line printed (exit code 2) when a program the bench drives is not installed. */
export function missingTool(): string | null {
  const has = (program: string) => spawnSync('sh', ['-c', `command -v ${program}`], { stdio: 'ignore' }).status === 0;
  if (!has('wrk')) return 'bench:edge needs wrk: sudo apt-get install wrk';
  if (!has('pgbench')) return 'bench:edge needs pgbench: sudo apt-get install postgresql-client';
  return null;
}

async function stopGroup(handle: NpmStart, timeoutMs: number): Promise<void> {
  const { child } = handle;
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    process.kill(-child.pid, 'SIGTERM');
  } catch {
    return; // the group is already gone
  }
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([exited, new Promise((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
  clearTimeout(timer);
}

/**
 * Creates `bank_bench_<random>` and starts `npm start` on it with `env` over the test defaults;
 * the migrations run as `npm start` runs them. Drops the database again when the start fails.
 */
export async function startBenchStack(env: NodeJS.ProcessEnv): Promise<BenchStack> {
  const db = await createEmptyDatabase('bank_bench');
  let handle: NpmStart;
  try {
    // BENCH_STACK_NODE_OPTIONS reaches the stack's processes only, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`
    // to profile the servers under the bench's load (profiles are written when they exit).
    const nodeOptions = process.env.BENCH_STACK_NODE_OPTIONS;
    handle = await startNpmStart({ name: 'bench', env: { ...env, DATABASE_URL: db.url, ...(nodeOptions ? { NODE_OPTIONS: nodeOptions } : {}) }, readyTimeoutMs: 120_000 });
  } catch (error) {
    await db.drop();
    throw error;
  }
  let stopped: Promise<void> | null = null;
  return {
    databaseUrl: db.url,
    databaseName: db.name,
    httpUrl: `http://127.0.0.1:${handle.ports.http}`,
    grpcAddress: `127.0.0.1:${handle.ports.grpc}`,
    inboxUrl: `http://127.0.0.1:${handle.ports.inboxHttp}`,
    apiMetricsUrl: `http://127.0.0.1:${handle.ports.metrics + 2}/metrics`,
    grpcMetricsUrl: `http://127.0.0.1:${handle.ports.metrics}/metrics`,
    rootPid: handle.child.pid ?? -1,
    stop() {
      stopped ??= (async () => {
        try {
          await stopGroup(handle, 30_000);
          // The children finish their own graceful exit (and write a --cpu-prof profile) before
          // anything left is killed.
          const deadline = Date.now() + 30_000;
          while (handle.startedPids().some(alive) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
        } finally {
          await handle.cleanUp();
          await db.drop();
        }
      })();
      return stopped;
    },
  };
}
