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
