import { describe, expect, it } from '@jest/globals';
import { Semaphore } from './semaphore.ts';

/** A task that stays in flight until released, recording how many were in flight at its start. */
function gate() {
  let inFlight = 0;
  let most = 0;
  const started: number[] = [];
  const releases: (() => void)[] = [];
  const task = (id: number) => async () => {
    inFlight += 1;
    most = Math.max(most, inFlight);
    started.push(id);
    await new Promise<void>((resolve) => releases.push(resolve));
    inFlight -= 1;
    return id;
  };
  const releaseOne = async () => {
    releases.shift()?.();
    // Let the finished task hand its permit on and the next one start.
    for (let i = 0; i < 5; i += 1) await Promise.resolve();
  };
  return { task, releaseOne, started, most: () => most, inFlight: () => inFlight };
}

describe('Semaphore', () => {
  it('runs at most `permits` tasks at once and starts the rest in arrival order', async () => {
    const semaphore = new Semaphore(2);
    const g = gate();
    const results = Array.from({ length: 7 }, (_, i) => semaphore.run(g.task(i)));
    await Promise.resolve();
    expect(g.started).toEqual([0, 1]);
    expect(semaphore.waiting).toBe(5);
    for (let i = 0; i < 7; i += 1) {
      expect(semaphore.inFlight).toBeLessThanOrEqual(2);
      await g.releaseOne();
    }
    expect(await Promise.all(results)).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(g.started).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(g.most()).toBe(2);
    expect({ inFlight: semaphore.inFlight, waiting: semaphore.waiting }).toEqual({ inFlight: 0, waiting: 0 });
  });

  it('gives the permit back when a task fails', async () => {
    const semaphore = new Semaphore(1);
    await expect(semaphore.run(async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    await expect(semaphore.run(async () => 'next')).resolves.toBe('next');
    expect(semaphore.inFlight).toBe(0);
  });

  it('refuses a permit count that is not a positive integer', () => {
    for (const permits of [0, -1, 1.5, Number.NaN]) expect(() => new Semaphore(permits)).toThrow(RangeError);
  });
});
