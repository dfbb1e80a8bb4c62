// Where a run's CPU went, by process: every process on the machine read from /proc before and
// after the run (utime + stime of all its threads), grouped into the stack's parts. The servers'
// own process_cpu_seconds_total says what one process used; this says what the whole machine
// spent per request, including PostgreSQL's backends and the worker, which share the cores.
import { readdir, readFile } from 'node:fs/promises';

/** The groups a process falls into; `load` (the load generator) is added from the run's own count. */
export const CPU_GROUPS = ['api', 'grpc', 'worker', 'postgres', 'redis', 'bench', 'other'] as const;
export type CpuGroup = (typeof CPU_GROUPS)[number];

/** Seconds of CPU per process id, with the group each belongs to. */
export type CpuSnapshot = Map<number, { group: CpuGroup; seconds: number }>;

const TICKS_PER_SECOND = 100; // USER_HZ: 100 on every Linux this runs on

/**
 * The group of a process from its command line. PostgreSQL's backends name their database
 * (`postgres: user db host(port) state`); only those of `databaseName` and the server's own
 * processes (wal writer, checkpointer, ...) count as postgres, not another database's.
 */
export function groupOf(commandLine: string, databaseName: string, benchPid: number, pid: number): CpuGroup | null {
  if (pid === benchPid) return 'bench';
  if (commandLine.startsWith('postgres: ')) {
    const rest = commandLine.slice('postgres: '.length);
    // Backends: "<user> <database> <host>(<port>) <state>"; server processes: "walwriter", "checkpointer", ...
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

/** Every process's CPU so far, grouped; processes of no group (the rest of the machine) are left out. */
export async function cpuSnapshot(databaseName: string): Promise<CpuSnapshot> {
  const snapshot: CpuSnapshot = new Map();
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    try {
      const commandLine = (await readFile(`/proc/${entry}/cmdline`, 'utf8')).replace(/\0/g, ' ').trim();
      const group = groupOf(commandLine, databaseName, process.pid, pid);
      if (!group) continue;
      const stat = await readFile(`/proc/${entry}/stat`, 'utf8');
      // Fields after "(comm)": state is the 3rd field of the line, utime the 14th, stime the 15th.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      snapshot.set(pid, { group, seconds: (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND });
    } catch {
      // The process ended between the listing and the read.
    }
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

/** Milliseconds of CPU per 2xx answer by group, plus the load generator and the sum. */
export type CpuBudget = Record<CpuGroup | 'load' | 'total', number> & { coresBusy: number };

/**
 * The budget of one run: `seconds` of CPU by group over `ok` answers. `loadCpuSeconds` is the load
 * generator's own (wrk's, or the bench process's for its own clients: then `bench` is not counted twice).
 */
export function cpuBudget(delta: Record<CpuGroup, number>, loadCpuSeconds: number, ok: number, wallSeconds: number, loadIsBench: boolean): CpuBudget {
  const perRequest = (seconds: number) => (ok > 0 ? (seconds * 1_000) / ok : NaN);
  const groups = { ...delta, bench: loadIsBench ? 0 : delta.bench };
  const load = loadCpuSeconds;
  const total = Object.values(groups).reduce((sum, v) => sum + v, 0) + load;
  const budget = Object.fromEntries(Object.entries(groups).map(([g, v]) => [g, perRequest(v)])) as Record<CpuGroup, number>;
  return { ...budget, load: perRequest(load), total: perRequest(total), coresBusy: wallSeconds > 0 ? total / wallSeconds : NaN };
}
