import { describe, expect, it } from '@jest/globals';
import { groupWhileInFlight } from './group-while-in-flight.ts';

/** A `run` that records its groups and answers when the test says so. */
function controlledRun() {
  const groups: number[][] = [];
  const pending: { items: readonly number[]; finish: (error?: Error) => void }[] = [];
  const run = (items: readonly number[]) =>
    new Promise<string[]>((resolve, reject) => {
      groups.push([...items]);
      pending.push({ items, finish: (error) => (error ? reject(error) : resolve(items.map((n) => `answer ${n}`))) });
    });
  return { run, groups, pending };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('groupWhileInFlight', () => {
  it('sends the first call at once and the calls that arrive meanwhile as one group, each with its own answer', async () => {
    const { run, groups, pending } = controlledRun();
    const call = groupWhileInFlight(run);
    const first = call(1);
    await tick();
    expect(groups).toEqual([[1]]); // no wait when nothing is in flight
    const rest = [2, 3, 4, 5].map(call);
    await tick();
    expect(groups).toHaveLength(1); // they wait for the group in flight
    pending[0]!.finish();
    await expect(first).resolves.toBe('answer 1');
    await tick();
    expect(groups).toEqual([[1], [2, 3, 4, 5]]);
    pending[1]!.finish();
    await expect(Promise.all(rest)).resolves.toEqual(['answer 2', 'answer 3', 'answer 4', 'answer 5']);
  });

  it('caps a group at maxGroup; the rest go in the next', async () => {
    const { run, groups, pending } = controlledRun();
    const call = groupWhileInFlight(run, { maxGroup: 2 });
    const all = [1, 2, 3, 4, 5].map(call);
    for (let i = 0; i < 3; i++) {
      await tick();
      pending[i]!.finish();
    }
    await expect(Promise.all(all)).resolves.toEqual(['answer 1', 'answer 2', 'answer 3', 'answer 4', 'answer 5']);
    expect(groups).toEqual([[1], [2, 3], [4, 5]]);
  });

  it("a failed group rejects each of its calls, and the next group goes ahead", async () => {
    const { run, groups, pending } = controlledRun();
    const call = groupWhileInFlight(run);
    const first = call(1);
    const second = [2, 3].map(call);
    await tick();
    pending[0]!.finish(new Error('connection lost'));
    await expect(first).rejects.toThrow('connection lost');
    await tick();
    pending[1]!.finish();
    await expect(Promise.all(second)).resolves.toEqual(['answer 2', 'answer 3']);
    expect(groups).toEqual([[1], [2, 3]]);
  });

  it('rejects the group when run answers a different number of items', async () => {
    const call = groupWhileInFlight(async (items: readonly number[]) => items.slice(1));
    await expect(call(1)).rejects.toThrow('1 items got 0 answers');
    expect(() => groupWhileInFlight(async () => [], { maxGroup: 0 })).toThrow('maxGroup');
  });
});
