import { afterEach, describe, expect, it, jest } from '@jest/globals';
import { Overloaded, RequestCancelled, Unavailable } from '../errors/domain-error.ts';
import { AdmissionGate, type Release } from './admission-gate.ts';

/** Lets granted waiters' promise callbacks run. */
const settle = async () => {
  for (let i = 0; i < 5; i += 1) await Promise.resolve();
};

/** The outcome of each promise so far: its value, 'refused' with the error, or 'waiting'. */
function track<T>(promise: Promise<T>) {
  const state: { value?: T; error?: unknown; done: boolean } = { done: false };
  promise.then(
    (value) => Object.assign(state, { value, done: true }),
    (error: unknown) => Object.assign(state, { error, done: true }),
  );
  return state;
}

afterEach(() => {
  jest.useRealTimers();
});

describe('AdmissionGate', () => {
  it('grants `permits` at once, queues up to the limit in arrival order, and refuses the next with Overloaded', async () => {
    const gate = new AdmissionGate({ permits: 2, queueLimit: 2, busy: 'every test slot is in use' });
    const held = [await gate.acquire(), await gate.acquire()];
    const queued = [track(gate.acquire()), track(gate.acquire())];
    const refused = await gate.acquire().catch((error: unknown) => error);

    expect(refused).toBeInstanceOf(Overloaded);
    expect(refused).toBeInstanceOf(Unavailable);
    expect(refused).toMatchObject({ code: 'OVERLOADED', retryAfterSeconds: 1 });
    expect((refused as Error).message).toMatch(/every test slot is in use and 2 more calls are waiting/);
    expect({ inFlight: gate.inFlight, waiting: gate.waiting, shed: gate.shed }).toEqual({ inFlight: 2, waiting: 2, shed: { queue_full: 1, queue_timeout: 0 } });

    held[0]!();
    await settle();
    expect(queued.map((q) => q.done)).toEqual([true, false]);
    held[1]!();
    await settle();
    expect(queued.map((q) => q.done)).toEqual([true, true]);
    expect({ inFlight: gate.inFlight, waiting: gate.waiting }).toEqual({ inFlight: 2, waiting: 0 });

    for (const q of queued) (q.value as Release)();
    expect(gate.inFlight).toBe(0);
  });

  it('gives a permit back once however often its release is called', async () => {
    const gate = new AdmissionGate({ permits: 1, queueLimit: 0, busy: 'busy' });
    const release = await gate.acquire();
    release();
    release();
    expect(gate.inFlight).toBe(0);
    const again = await gate.acquire();
    await expect(gate.acquire()).rejects.toBeInstanceOf(Overloaded);
    again();
  });

  it('refuses a waiter whose time ran out, takes it off the queue, and hands the next permit to the one behind it', async () => {
    jest.useFakeTimers();
    const gate = new AdmissionGate({ permits: 1, queueLimit: 5, queueTimeoutMs: 100, busy: 'every connection is in use' });
    const holder = await gate.acquire();
    const first = track(gate.acquire());
    jest.advanceTimersByTime(60);
    const second = track(gate.acquire());
    jest.advanceTimersByTime(40);
    await settle();

    expect(first.error).toBeInstanceOf(Overloaded);
    expect((first.error as Error).message).toMatch(/waited 100 ms/);
    expect(second.done).toBe(false);
    expect({ waiting: gate.waiting, shed: gate.shed }).toEqual({ waiting: 1, shed: { queue_full: 0, queue_timeout: 1 } });

    holder();
    await settle();
    expect(second.value).toEqual(expect.any(Function));
    jest.advanceTimersByTime(1_000);
    await settle();
    expect(second.error).toBeUndefined();
    expect(gate.shed.queue_timeout).toBe(1);
    (second.value as Release)();
    expect(gate.inFlight).toBe(0);
  });

  it('takes a waiter whose signal aborts off the queue with the signal reason, and refuses an aborted caller at once', async () => {
    const gate = new AdmissionGate({ permits: 1, queueLimit: 1, busy: 'busy' });
    const holder = await gate.acquire();
    const controller = new AbortController();
    const waiter = track(gate.acquire({ signal: controller.signal }));
    controller.abort(new RequestCancelled());
    await settle();
    expect(waiter.error).toBeInstanceOf(RequestCancelled);
    expect(gate.waiting).toBe(0);
    await expect(gate.acquire({ signal: controller.signal })).rejects.toBeInstanceOf(RequestCancelled);

    holder();
    expect(gate.inFlight).toBe(0);
  });

  it('serves a priority caller first, never refuses it for a full queue, and does not count it against the queue', async () => {
    const gate = new AdmissionGate({ permits: 1, queueLimit: 1, busy: 'busy' });
    const holder = await gate.acquire();
    const early = track(gate.acquire({ priority: true }));
    const ordinary = track(gate.acquire());
    await expect(gate.acquire()).rejects.toBeInstanceOf(Overloaded);
    const probe = track(gate.acquire({ priority: true }));
    expect(gate.waiting).toBe(3);

    holder();
    await settle();
    expect([early.done, probe.done, ordinary.done]).toEqual([true, false, false]);
    (early.value as Release)();
    await settle();
    expect([probe.done, ordinary.done]).toEqual([true, false]);
    (probe.value as Release)();
    await settle();
    expect(ordinary.done).toBe(true);
    (ordinary.value as Release)();
    expect(gate.inFlight).toBe(0);
  });

  it('runs a task holding a permit and gives it back whether the task succeeds or throws', async () => {
    const gate = new AdmissionGate({ permits: 1, queueLimit: 0, busy: 'busy' });
    await expect(gate.run(async () => gate.inFlight)).resolves.toBe(1);
    await expect(gate.run(async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(gate.inFlight).toBe(0);
  });
});
