// bcrypt runs on libuv's thread pool. On two cores, two password checks at once take both cores
// from the event loop that serves every other request, and from PostgreSQL: a burst of logins
// raised a cheap authenticated GET's p99 (issue 10's P4). Lowering the pool threads' scheduling
// priority (their nice value, per thread on Linux) keeps hashing on whatever CPU is left over:
// a login burst still uses idle cores to the full, but yields them to request serving.
import { readdir, readFile } from 'node:fs/promises';
import { pbkdf2 } from 'node:crypto';
import os from 'node:os';

/** The name libuv gives its pool threads (/proc/<pid>/task/<tid>/comm). */
const POOL_THREAD_NAME = 'libuv-worker';

export type ThreadPoolPriority = { threads: number; nice: number } | { threads: 0; skipped: string };

/**
 * Sets the nice value of every libuv thread-pool thread of this process to `nice` (0: leaves them
 * alone). The pool starts on its first job, so this queues one first. Linux only (elsewhere a
 * thread's priority is not its own); a refusal (a sandbox that forbids setpriority) is returned,
 * not thrown: the process serves as before, at the default priority.
 */
export async function lowerThreadPoolPriority(nice: number): Promise<ThreadPoolPriority> {
  if (nice === 0) return { threads: 0, skipped: 'THREAD_POOL_NICE is 0' };
  if (process.platform !== 'linux') return { threads: 0, skipped: `per-thread priority is Linux only (this is ${process.platform})` };
  await new Promise<void>((resolve, reject) => pbkdf2('', '', 1, 8, 'sha256', (error) => (error ? reject(error) : resolve())));
  const threads = await poolThreadIds();
  try {
    for (const tid of threads) os.setPriority(tid, nice);
  } catch (error) {
    return { threads: 0, skipped: `setpriority refused: ${error instanceof Error ? error.message : String(error)}` };
  }
  return { threads: threads.length, nice };
}

/** The thread ids of this process's libuv pool threads. */
export async function poolThreadIds(): Promise<number[]> {
  const ids: number[] = [];
  for (const entry of await readdir('/proc/self/task')) {
    const name = await readFile(`/proc/self/task/${entry}/comm`, 'utf8').catch(() => '');
    if (name.trim() === POOL_THREAD_NAME) ids.push(Number(entry));
  }
  return ids;
}
