import { EventEmitter } from 'node:events';
import { describe, expect, it } from '@jest/globals';
import type { Redis } from '../redis/redis.ts';
import { SessionLiveness } from './session-liveness.ts';

const ID = '2f1d8a52-6f0c-4a53-9a39-2a8d8d0b6a11';
const OTHER = '7b0a0c55-4a47-4a9c-8a43-1f0f3e7f2c10';
const FAR = new Date('2100-01-01T00:00:00Z');

const active = (id = ID, expiresAt = FAR, role: 'depositor' | 'banker' = 'depositor') => ({ id, username: 'alice', status: 'active' as const, expiresAt, role });

function clock(start = 1_000_000) {
  let now = start;
  return { now: () => now, advance: (ms: number) => (now += ms) };
}

/** A stand-in for the two Redis connections: records publishes, acts as the subscriber connection. */
class FakeRedis extends EventEmitter {
  status = 'connecting';
  readonly published: [string, string][] = [];
  failPublish = false;
  subscribed: string[] = [];
  async publish(channel: string, message: string): Promise<number> {
    if (this.failPublish) throw new Error('Connection is closed.');
    this.published.push([channel, message]);
    return 1;
  }
  async subscribe(channel: string): Promise<number> {
    this.subscribed.push(channel);
    return 1;
  }
  connect() {
    this.status = 'ready';
    this.emit('ready');
  }
  drop() {
    this.status = 'reconnecting';
    this.emit('close');
  }
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('SessionLiveness', () => {
  it('trusts a session seen active for ttlMs after its read began, for its own user only', () => {
    const time = clock();
    const liveness = new SessionLiveness({ ttlMs: 1_000, now: time.now });
    const ticket = liveness.beginRead();
    time.advance(200);
    liveness.remember(active(), ticket);
    expect(liveness.isTrusted(ID, 'alice')).toBe(true);
    expect(liveness.isTrusted(ID, 'mallory')).toBe(false);
    time.advance(799);
    expect(liveness.isTrusted(ID, 'alice')).toBe(true);
    time.advance(1);
    expect(liveness.isTrusted(ID, 'alice')).toBe(false);
    expect(liveness.size).toBe(0);
  });

  it('answers the role read with the session, for its own user only, and the role of the newest read', () => {
    const time = clock();
    const liveness = new SessionLiveness({ ttlMs: 1_000, now: time.now });
    liveness.remember(active(ID, FAR, 'banker'), liveness.beginRead());
    expect(liveness.trustedRole(ID, 'alice')).toBe('banker');
    expect(liveness.trustedRole(ID, 'mallory')).toBeUndefined();
    time.advance(1_000);
    expect(liveness.trustedRole(ID, 'alice')).toBeUndefined();
    liveness.remember(active(ID, FAR, 'depositor'), liveness.beginRead());
    expect(liveness.trustedRole(ID, 'alice')).toBe('depositor');
  });

  it('never trusts a session past its expiresAt, however long the TTL', () => {
    const time = clock();
    const liveness = new SessionLiveness({ ttlMs: 60_000, now: time.now });
    liveness.remember(active(ID, new Date(time.now() + 500)), liveness.beginRead());
    expect(liveness.isTrusted(ID, 'alice')).toBe(true);
    time.advance(500);
    expect(liveness.isTrusted(ID, 'alice')).toBe(false);
    // Already expired when read: not remembered at all.
    liveness.remember(active(OTHER, new Date(time.now() - 1)), liveness.beginRead());
    expect(liveness.size).toBe(0);
  });

  it('remembers nothing with ttlMs 0, and nothing that is not active', () => {
    const off = new SessionLiveness({ ttlMs: 0 });
    off.remember(active(), off.beginRead());
    expect(off.isTrusted(ID, 'alice')).toBe(false);
    const on = new SessionLiveness({ ttlMs: 1_000 });
    on.remember({ ...active(), status: 'revoked' }, on.beginRead());
    on.remember({ ...active(OTHER), status: 'pending' }, on.beginRead());
    expect(on.size).toBe(0);
  });

  it('does not remember a read that began before a revocation arrived (the answer in flight may be stale)', () => {
    const liveness = new SessionLiveness({ ttlMs: 1_000 });
    const ticket = liveness.beginRead();
    liveness.forget([OTHER]);
    liveness.remember(active(), ticket);
    expect(liveness.isTrusted(ID, 'alice')).toBe(false);
    liveness.remember(active(), liveness.beginRead());
    expect(liveness.isTrusted(ID, 'alice')).toBe(true);
  });

  it('holds at most maxEntries sessions, dropping the oldest', () => {
    const liveness = new SessionLiveness({ ttlMs: 1_000, maxEntries: 2 });
    const ids = [ID, OTHER, '0c5f2f7e-1d3c-4b0e-9f57-6c2a1d3e4f50'];
    for (const id of ids) liveness.remember(active(id), liveness.beginRead());
    expect(liveness.size).toBe(2);
    expect(ids.map((id) => liveness.isTrusted(id, 'alice'))).toEqual([false, true, true]);
  });

  it('revoked() drops the sessions here before publishing them, and survives a failed publish', async () => {
    const redis = new FakeRedis();
    const warnings: string[] = [];
    const logger = { warn: (_: unknown, message: string) => warnings.push(message) } as never;
    const liveness = new SessionLiveness({ ttlMs: 1_000, publish: { redis: redis as unknown as Redis, channel: 'bank:sessions:revoked' }, logger });
    liveness.remember(active(), liveness.beginRead());
    liveness.remember(active(OTHER), liveness.beginRead());
    const publishing = liveness.revoked([ID]);
    expect(liveness.isTrusted(ID, 'alice')).toBe(false);
    await publishing;
    expect(redis.published).toEqual([['bank:sessions:revoked', JSON.stringify([ID])]]);

    redis.failPublish = true;
    await expect(liveness.revoked([OTHER])).resolves.toBeUndefined();
    expect(liveness.isTrusted(OTHER, 'alice')).toBe(false);
    expect(warnings).toHaveLength(1);
  });

  it('drops sessions published by other processes, and trusts nothing while its subscription is down', async () => {
    const subscriber = new FakeRedis();
    const liveness = new SessionLiveness({ ttlMs: 1_000, publish: { redis: new FakeRedis() as unknown as Redis, channel: 'c' } });
    liveness.listen(subscriber as unknown as Redis);
    liveness.remember(active(), liveness.beginRead());
    expect(liveness.isTrusted(ID, 'alice')).toBe(false);

    subscriber.connect();
    await settle();
    expect(subscriber.subscribed).toEqual(['c']);
    expect(liveness.listening).toBe(true);
    liveness.remember(active(), liveness.beginRead());
    liveness.remember(active(OTHER), liveness.beginRead());
    subscriber.emit('message', 'c', JSON.stringify([ID]));
    subscriber.emit('message', 'elsewhere', JSON.stringify([OTHER]));
    expect([liveness.isTrusted(ID, 'alice'), liveness.isTrusted(OTHER, 'alice')]).toEqual([false, true]);

    // A message it cannot read might have named any session: forget them all.
    subscriber.emit('message', 'c', 'garbage');
    expect(liveness.size).toBe(0);

    // Messages sent while the connection is down are lost: empty the cache, read every call,
    // and start remembering again only once subscribed again.
    liveness.remember(active(), liveness.beginRead());
    subscriber.drop();
    expect([liveness.listening, liveness.size, liveness.isTrusted(ID, 'alice')]).toEqual([false, 0, false]);
    liveness.remember(active(), liveness.beginRead());
    expect(liveness.size).toBe(0);
    subscriber.connect();
    await settle();
    expect(subscriber.subscribed).toEqual(['c', 'c']);
    liveness.remember(active(), liveness.beginRead());
    expect(liveness.isTrusted(ID, 'alice')).toBe(true);
  });

  it('refuses a negative or fractional TTL', () => {
    expect(() => new SessionLiveness({ ttlMs: -1 })).toThrow(RangeError);
    expect(() => new SessionLiveness({ ttlMs: 1.5 })).toThrow(RangeError);
  });
});
