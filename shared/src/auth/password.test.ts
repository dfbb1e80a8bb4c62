import { describe, expect, it } from '@jest/globals';
import bcrypt from 'bcrypt';
import { commonPasswordList, PasswordHasher, prehash, validatePassword } from './password.ts';

/** `length` characters that are neither a repeat nor a sequence nor in the list. */
const varied = (length: number, alphabet = 'tq7Kz€w2ðNm') => Array.from({ length }, (_, i) => [...alphabet][i % [...alphabet].length]).join('');

describe('passwords', () => {
  it('accepts 8..128 characters (not bytes) and names the limit otherwise', () => {
    expect(validatePassword('tq7Kz9w2')).toBe('tq7Kz9w2');
    expect([...validatePassword(varied(128))]).toHaveLength(128);
    expect(() => validatePassword(varied(7))).toThrow('password: must be at least 8 characters long (got 7)');
    expect(() => validatePassword(varied(129))).toThrow('password: must be at most 128 characters long (got 129)');
    // 30 three-byte characters: 90 bytes, and accepted (it used to be refused).
    const euros = varied(30, '€₤₩');
    expect(Buffer.byteLength(euros, 'utf8')).toBe(90);
    expect(validatePassword(euros)).toBe(euros);
    // Composition is not a rule: all lower case, all digits of no pattern, spaces.
    expect(validatePassword('correct horse battery')).toBe('correct horse battery');
    expect(validatePassword('90417263')).toBe('90417263');
    expect(() => validatePassword('', 'new_password')).toThrow('new_password: is required');
  });

  it('refuses the most common passwords, in any letter case, from a bundled list of at least 10,000', () => {
    expect(commonPasswordList().size).toBeGreaterThanOrEqual(10_000);
    for (const common of ['password', 'Password1', 'iloveyou', 'QWERTYUIOP', 'trustno1', 'letmein1', 'baseball']) {
      expect(() => validatePassword(common)).toThrow('password: is too common');
    }
    // Repeats and runs (the list leaves them to pattern rules).
    for (const pattern of ['aaaaaaaa', 'abcdefgh', '87654321', '12345678', '€€€€€€€€']) {
      expect(() => validatePassword(pattern, 'new_password')).toThrow('new_password: is too common');
    }
    expect(() => validatePassword('Ada_Lovelace', 'password', ['ada_lovelace', 'ada@example.test'])).toThrow('must not be your username or email address');
  });

  it('hashes as version 2 (a prefix, then bcrypt of base64 SHA-512) with the configured cost, and verifies', async () => {
    const hasher = new PasswordHasher({ cost: 4 });
    const hash = await hasher.hash('correct horse');
    expect(hash).toMatch(/^v2:\$2b\$04\$/);
    expect(hasher.needsRehash(hash)).toBe(false);
    expect(new PasswordHasher({ cost: 5 }).needsRehash(hash)).toBe(true);
    expect(prehash('x')).toMatch(/^[A-Za-z0-9+/]{86}==$/);
    await expect(hasher.verify('correct horse', hash)).resolves.toBe(true);
    await expect(hasher.verify('wrong horse', hash)).resolves.toBe(false);
    await expect(hasher.verify('correct horse', 'not-a-hash')).resolves.toBe(false);
    await expect(hasher.verifyDummy('anything')).resolves.toBe(false);
  });

  it('takes every byte of a password over 72 bytes: it verifies, and its 72-byte prefix does not', async () => {
    const hasher = new PasswordHasher({ cost: 4 });
    const long = `${'a correct horse battery staple '.repeat(3)}and more`;
    const prefix = Buffer.from(long, 'utf8').subarray(0, 72).toString('utf8');
    expect(Buffer.byteLength(long, 'utf8')).toBeGreaterThan(72);
    expect(validatePassword(long)).toBe(long);
    const hash = await hasher.hash(long);
    await expect(hasher.verify(long, hash)).resolves.toBe(true);
    await expect(hasher.verify(prefix, hash)).resolves.toBe(false);
    await expect(hasher.verify(`${prefix}something else entirely`, hash)).resolves.toBe(false);
  });

  it('still verifies a hash made the old way (bcrypt of the password itself, no prefix)', async () => {
    const hasher = new PasswordHasher({ cost: 4 });
    const old = await bcrypt.hash('correct horse battery', 4);
    expect(old).toMatch(/^\$2b\$04\$/);
    expect(hasher.needsRehash(old)).toBe(true);
    await expect(hasher.verify('correct horse battery', old)).resolves.toBe(true);
    await expect(hasher.verify('correct horse battery!', old)).resolves.toBe(false);
    // bcrypt alone would let anything that starts with the 72 bytes it saw in: not any more.
    const seventyTwo = 'x7'.repeat(36);
    const oldLong = await bcrypt.hash(seventyTwo, 4);
    await expect(hasher.verify(seventyTwo, oldLong)).resolves.toBe(true);
    await expect(bcrypt.compare(`${seventyTwo}anything`, oldLong)).resolves.toBe(true);
    await expect(hasher.verify(`${seventyTwo}anything`, oldLong)).resolves.toBe(false);
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
    expect(await settled).toEqual([true, true, true, true, true, true, ...[0, 1, 2, 3].map((i) => `v2:hash:${prehash(`n${i}`)}`), false]);
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
