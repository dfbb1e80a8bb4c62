import { describe, expect, it } from '@jest/globals';
import { InvalidArgument } from '../errors/domain-error.ts';
import { PasswordHasher, validatePassword } from './password.ts';

describe('passwords', () => {
  it('accepts 8..72 bytes and names the limit otherwise', () => {
    expect(validatePassword('12345678')).toBe('12345678');
    expect(validatePassword('x'.repeat(72))).toHaveLength(72);
    expect(() => validatePassword('1234567')).toThrow('password: must be at least 8 bytes long (got 7)');
    expect(() => validatePassword('x'.repeat(73))).toThrow('password: must be at most 72 bytes long in UTF-8 (got 73)');
    // 25 three-byte characters are 75 bytes: too long although only 25 characters.
    expect(() => validatePassword('€'.repeat(25))).toThrow(InvalidArgument);
    expect(() => validatePassword('', 'new_password')).toThrow('new_password: is required');
  });

  it('hashes with the configured cost and verifies', async () => {
    const hasher = new PasswordHasher({ cost: 4 });
    const hash = await hasher.hash('correct horse');
    expect(hash).toMatch(/^\$2b\$04\$/);
    await expect(hasher.verify('correct horse', hash)).resolves.toBe(true);
    await expect(hasher.verify('wrong horse', hash)).resolves.toBe(false);
    await expect(hasher.verify('correct horse', 'not-a-hash')).resolves.toBe(false);
    await expect(hasher.verifyDummy('anything')).resolves.toBe(false);
  });

  it('runs at most `concurrency` bcrypt calls at once, hashes and compares together, and serves every caller', async () => {
    let inFlight = 0;
    let most = 0;
    let calls = 0;
    const releases: (() => void)[] = [];
    const hold = async <T>(value: T): Promise<T> => {
      inFlight += 1;
      calls += 1;
      most = Math.max(most, inFlight);
      await new Promise<void>((resolve) => releases.push(resolve));
      inFlight -= 1;
      return value;
    };
    const hasher = new PasswordHasher({
      cost: 4,
      concurrency: 2,
      bcrypt: { hash: (password) => hold(`hash:${password}`), compare: (password, hash) => hold(hash === `hash:${password}`) },
    });
    const work = [
      ...Array.from({ length: 6 }, (_, i) => hasher.verify(`p${i}`, `hash:p${i}`)),
      ...Array.from({ length: 4 }, (_, i) => hasher.hash(`n${i}`)),
      hasher.verifyDummy('someone'),
    ];
    const settled = Promise.all(work);
    // Release the held calls one at a time until every caller has its answer (the dummy hash
    // adds two calls: making the dummy hash, then comparing with it).
    while (calls < 12 || inFlight > 0) {
      expect(inFlight).toBeLessThanOrEqual(2);
      expect(hasher.load.inFlight).toBeLessThanOrEqual(2);
      releases.shift()?.();
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(await settled).toEqual([true, true, true, true, true, true, 'hash:n0', 'hash:n1', 'hash:n2', 'hash:n3', false]);
    expect(most).toBe(2);
    expect(calls).toBe(12);
    expect(hasher.concurrency).toBe(2);
  });

  it('defaults to two bcrypt calls at once', () => {
    expect(new PasswordHasher({ cost: 4 }).concurrency).toBe(2);
  });

  it('does not block the event loop while hashing', async () => {
    const hasher = new PasswordHasher({ cost: 10 });
    let ticks = 0;
    const timer = setInterval(() => (ticks += 1), 5);
    const started = performance.now();
    await hasher.hash('a long enough password');
    const elapsed = performance.now() - started;
    clearInterval(timer);
    // A blocking hash would let no timer run; here the timer keeps ticking during the hash.
    expect(elapsed).toBeGreaterThan(20);
    expect(ticks).toBeGreaterThanOrEqual(Math.floor(elapsed / 5 / 3));
  });
});
