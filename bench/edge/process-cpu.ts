// Where a run's CPU went, by process: every process on the machine read from /proc before and
// after the run (utime + stime of all its threads), grouped into the stack's parts. The servers'
// own process_cpu_seconds_total says what one process used; this says what the whole machine
// spent per request, including PostgreSQL's backends and the worker, which share the cores.
import { readdir, readFile } from 'node:fs/promises';
import pg from 'pg';

/** The groups a process falls into; `load` (the load generator) is added from the run's own count. */
export const CPU_GROUPS = ['api', 'grpc', 'worker', 'postgres', 'redis', 'bench', 'other'] as const;
export type CpuGroup = (typeof CPU_GROUPS)[number];

/**
 * Whose work a PostgreSQL process did: the backends of the API's, the gRPC server's and the
 * worker's pools (by the application_name each pool sets), and the rest (the server's own
 * processes: WAL writer, checkpointer, autovacuum; and unnamed connections such as the bench's).
 */
export const PG_CLIENTS = ['api', 'grpc', 'worker', 'rest'] as const;
export type PgClient = (typeof PG_CLIENTS)[number];

/** application_name -> the client it stands for. */
export function pgClientOf(applicationName: string | undefined): PgClient {
  switch (applicationName) {
    case 'bank-api':
      return 'api';
    case 'bank-grpc':
      return 'grpc';
    case 'bank-worker':
      return 'worker';
    default:
      return 'rest';
  }
}

/** Seconds of CPU per process id, with the group each belongs to (and, for PostgreSQL's, whose backend). */
export type CpuSnapshot = Map<number, { group: CpuGroup; seconds: number; pgClient?: PgClient }>;

const TICKS_PER_SECOND = 100; // USER_HZ: 100 on every Linux this runs on

/**
 * The group of a process from its command line. PostgreSQL's backends name their database
 * (`postgres: user db host(port) state`); only those of `databaseName` and the server's own
 * processes (wal writer, checkpointer, ...) count as postgres, not another database's.
 */
export function groupOf(commandLine: string, databaseName: string, benchPid: number, pid: number): CpuGroup | null {
  if (pid === benchPid) return 'bench';
  if (commandLine.startsWith('postgres: ')) {
    // After the cluster's name when it has one (Debian's "15/main: "), backends show "<user>
    // <database> <host>(<port>) <state>" and server processes "walwriter", "checkpointer", ...
    const rest = commandLine.slice('postgres: '.length).replace(/^[^\s:]+: /, '');
    const backend = /^\S+ (\S+) \S+\(\d+\)/.exec(rest) ?? /^\S+ (\S+) \[local\]/.exec(rest);
    if (backend) return backend[1] === databaseName ? 'postgres' : null;
    return 'postgres';
  }
  if (/services\/api\/src\/main\.ts/.test(commandLine)) return 'api';
  if (/services\/grpc\/src\/main\.ts/.test(commandLine)) return 'grpc';
  if (/services\/worker\/src\/main\.ts/.test(commandLine)) return 'worker';
  if (/(^|\/)redis-server /.test(commandLine)) return 'redis';
  if (/(^|\/)(npm|node) /.test(commandLine) && /(npm start|scripts\/dev)/.test(commandLine)) return 'other';
  return null;
}

/** pid -> application_name of every backend of the database at `databaseUrl` (one short connection). */
export async function backendNames(databaseUrl: string): Promise<Map<number, string>> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ pid: number; name: string }>(
      'SELECT pid, application_name AS name FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()',
    );
    return new Map(rows.map((r) => [r.pid, r.name]));
  } finally {
    await client.end();
  }
}

/** The groups that are processes of the stack itself (the rest: PostgreSQL, Redis, this bench). */
const STACK_GROUPS: ReadonlySet<CpuGroup> = new Set(['api', 'grpc', 'worker', 'other']);

/** The stack's own processes: those under `rootPid` (the started `npm start`), itself included. */
export type StackScope = { rootPid: number };

/**
 * Every process's CPU so far, grouped; processes of no group (the rest of the machine) are left
 * out. `backendNames`: pid -> application_name of the database's backends (pg_stat_activity),
 * to say whose work each PostgreSQL backend did. `stack`: when given, the api, grpc, worker and
 * other groups count only processes under its root (another stack left running on the machine,
 * say by a run that died, looks the same by its command line).
 */
export async function cpuSnapshot(databaseName: string, backendNames: ReadonlyMap<number, string> = new Map(), stack?: StackScope): Promise<CpuSnapshot> {
  const processes: { pid: number; ppid: number; group: CpuGroup; seconds: number }[] = [];
  const parents = new Map<number, number>();
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    try {
      const stat = await readFile(`/proc/${entry}/stat`, 'utf8');
      // Fields after "(comm)": state is the 3rd field of the line, ppid the 4th, utime the 14th, stime the 15th.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const ppid = Number(fields[1]);
      parents.set(pid, ppid);
      const commandLine = (await readFile(`/proc/${entry}/cmdline`, 'utf8')).replace(/\0/g, ' ').trim();
      const group = groupOf(commandLine, databaseName, process.pid, pid);
      if (group) processes.push({ pid, ppid, group, seconds: (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND });
    } catch {
      // The process ended between the listing and the read.
    }
  }
  const underStack = (pid: number): boolean => {
    for (let at: number | undefined = pid, hops = 0; at !== undefined && at > 1 && hops < 64; at = parents.get(at), hops++) if (at === stack!.rootPid) return true;
    return false;
  };
  const snapshot: CpuSnapshot = new Map();
  for (const { pid, group, seconds } of processes) {
    if (stack && STACK_GROUPS.has(group) && !underStack(pid)) continue;
    snapshot.set(pid, group === 'postgres' ? { group, seconds, pgClient: pgClientOf(backendNames.get(pid)) } : { group, seconds });
  }
  return snapshot;
}

/**
 * CPU seconds per group between two snapshots. A process that started in between counts from
 * zero; one that ended in between is lost (the stack's processes and pooled backends live
 * through a run).
 */
export function cpuDelta(before: CpuSnapshot, after: CpuSnapshot): Record<CpuGroup, number> {
  const out = Object.fromEntries(CPU_GROUPS.map((g) => [g, 0])) as Record<CpuGroup, number>;
  for (const [pid, { group, seconds }] of after) {
    const earlier = before.get(pid);
    out[group] += Math.max(0, seconds - (earlier && earlier.group === group ? earlier.seconds : 0));
  }
  return out;
}

/**
 * PostgreSQL's CPU seconds between two snapshots by whose backend did the work. A backend counts
 * for the client named in the later snapshot (a pooled connection keeps its name for life).
 */
export function postgresDelta(before: CpuSnapshot, after: CpuSnapshot): Record<PgClient, number> {
  const out = Object.fromEntries(PG_CLIENTS.map((c) => [c, 0])) as Record<PgClient, number>;
  for (const [pid, { group, seconds, pgClient }] of after) {
    if (group !== 'postgres') continue;
    const earlier = before.get(pid);
    out[pgClient ?? 'rest'] += Math.max(0, seconds - (earlier && earlier.group === group ? earlier.seconds : 0));
  }
  return out;
}

/**
 * Milliseconds of CPU per 2xx answer by group, plus the load generator and the sum; `postgresBy`
 * splits `postgres` by whose backends did the work.
 */
export type CpuBudget = Record<CpuGroup | 'load' | 'total', number> & { coresBusy: number; postgresBy?: Record<PgClient, number> };

/**
 * The budget of one run: `seconds` of CPU by group over `ok` answers. `loadCpuSeconds` is the load
 * generator's own (wrk's, or the bench process's for its own clients: then `bench` is not counted twice).
 */
export function cpuBudget(
  delta: Record<CpuGroup, number>,
  loadCpuSeconds: number,
  ok: number,
  wallSeconds: number,
  loadIsBench: boolean,
  postgres?: Record<PgClient, number>,
): CpuBudget {
  const perRequest = (seconds: number) => (ok > 0 ? (seconds * 1_000) / ok : NaN);
  const groups = { ...delta, bench: loadIsBench ? 0 : delta.bench };
  const load = loadCpuSeconds;
  const total = Object.values(groups).reduce((sum, v) => sum + v, 0) + load;
  const budget = Object.fromEntries(Object.entries(groups).map(([g, v]) => [g, perRequest(v)])) as Record<CpuGroup, number>;
  const postgresBy = postgres && (Object.fromEntries(PG_CLIENTS.map((c) => [c, perRequest(postgres[c])])) as Record<PgClient, number>);
  return { ...budget, load: perRequest(load), total: perRequest(total), coresBusy: wallSeconds > 0 ? total / wallSeconds : NaN, ...(postgresBy ? { postgresBy } : {}) };
}
