import { spawn, type ChildProcess } from 'node:child_process';

export type ProcessSpec = {
  name: string;
  command: string;
  args: string[];
  env: NodeJS.ProcessEnv;
};

type Managed = {
  spec: ProcessSpec;
  child: ChildProcess | null;
  restarts: number;
  startedAt: number;
  timer: NodeJS.Timeout | null;
  exit: { code: number | null; signal: NodeJS.Signals | null; afterMs: number } | null;
};

export type ExitReport = { name: string; code: number | null; signal: NodeJS.Signals | null; afterMs: number; clean: boolean };

/**
 * Keeps a set of child processes running: a child that dies is started again after a backoff
 * (1 s, doubling to 30 s; reset once it has stayed up for a minute). `stop()` sends SIGTERM to
 * all, waits up to the deadline, SIGKILLs what is left and reports how each one exited.
 */
export class Supervisor {
  readonly #managed = new Map<string, Managed>();
  readonly #log: (line: string) => void;
  #stopping = false;

  constructor(log: (line: string) => void) {
    this.#log = log;
  }

  start(spec: ProcessSpec): void {
    const managed: Managed = { spec, child: null, restarts: 0, startedAt: 0, timer: null, exit: null };
    this.#managed.set(spec.name, managed);
    this.#spawn(managed);
  }

  pid(name: string): number | undefined {
    return this.#managed.get(name)?.child?.pid;
  }

  #spawn(managed: Managed): void {
    const { spec } = managed;
    managed.startedAt = Date.now();
    managed.exit = null;
    // Each child gets its own process group, so a Ctrl-C in the terminal reaches only the
    // supervisor, which then stops every child exactly once, in order, with SIGTERM.
    const child = spawn(spec.command, spec.args, { env: spec.env, stdio: ['ignore', 'inherit', 'inherit'], detached: true });
    managed.child = child;
    this.#log(`${spec.name}: started (pid ${child.pid})`);
    child.once('error', (error) => this.#log(`${spec.name}: could not start: ${error.message}`));
    child.once('exit', (code, signal) => {
      const afterMs = Date.now() - managed.startedAt;
      managed.exit = { code, signal, afterMs };
      managed.child = null;
      if (this.#stopping) return;
      if (afterMs > 60_000) managed.restarts = 0;
      const delay = Math.min(30_000, 1_000 * 2 ** managed.restarts);
      managed.restarts++;
      this.#log(`${spec.name}: exited (${signal ?? `code ${code}`}) after ${(afterMs / 1_000).toFixed(1)} s; restarting in ${delay / 1_000} s`);
      managed.timer = setTimeout(() => {
        managed.timer = null;
        if (!this.#stopping) this.#spawn(managed);
      }, delay);
    });
  }

  async stop(deadlineMs: number): Promise<ExitReport[]> {
    this.#stopping = true;
    const stoppedAt = Date.now();
    const waits = [...this.#managed.values()].map(async (managed): Promise<ExitReport> => {
      if (managed.timer) clearTimeout(managed.timer);
      const child = managed.child;
      if (!child) {
        return { name: managed.spec.name, code: managed.exit?.code ?? 0, signal: managed.exit?.signal ?? null, afterMs: 0, clean: true };
      }
      const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
        child.once('exit', (code, signal) => resolve({ code, signal })),
      );
      child.kill('SIGTERM');
      const killer = setTimeout(() => {
        this.#log(`${managed.spec.name}: still running after ${deadlineMs} ms; killing it`);
        child.kill('SIGKILL');
      }, deadlineMs);
      const { code, signal } = await exited;
      clearTimeout(killer);
      const afterMs = Date.now() - stoppedAt;
      return { name: managed.spec.name, code, signal, afterMs, clean: code === 0 };
    });
    return Promise.all(waits);
  }
}
