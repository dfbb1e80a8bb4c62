import os from 'node:os';
import { describe, expect, it } from '@jest/globals';
import { lowerThreadPoolPriority, poolThreadIds } from './thread-pool-priority.ts';

// Linux is where this runs (CI, the containers): each pool thread's own nice value is read back.
describe('lowerThreadPoolPriority', () => {
  it("lowers every libuv pool thread's priority and leaves the event loop's alone", async () => {
    const before = os.getPriority();
    const done = await lowerThreadPoolPriority(10);
    const threads = await poolThreadIds();
    expect(threads.length).toBeGreaterThanOrEqual(1);
    expect(done).toEqual({ threads: threads.length, nice: 10 });
    for (const tid of threads) expect(os.getPriority(tid)).toBe(10);
    expect(os.getPriority()).toBe(before); // the main thread (the process id) is untouched
  });

  it('does nothing when told 0', async () => {
    await expect(lowerThreadPoolPriority(0)).resolves.toEqual({ threads: 0, skipped: 'THREAD_POOL_NICE is 0' });
  });
});
