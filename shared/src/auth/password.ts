import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import bcrypt from 'bcrypt';
import { InvalidArgument } from '../errors/domain-error.ts';
import { Semaphore } from './semaphore.ts';

/** NIST SP 800-63B: at least 8 characters, and room for at least 64; no composition rules. */
export const PASSWORD_MIN_CHARACTERS = 8;
export const PASSWORD_MAX_CHARACTERS = 128;
/** bcrypt reads only this many bytes of what it is given: a version-1 hash saw no more of the password. */
export const BCRYPT_MAX_BYTES = 72;

/**
 * Stored hashes made now start with this: bcrypt over `prehash(password)`. A stored hash without
 * it is version 1, bcrypt over the password itself (made before passwords were pre-hashed), and
 * keeps verifying.
 */
export const PASSWORD_HASH_V2_PREFIX = 'v2:';

/**
 * What version 2 gives bcrypt: base64 of the SHA-512 of the password (NFKC-normalised, as NIST
 * asks, so the same password typed on two keyboards matches). Every byte of the password counts,
 * however long; bcrypt never sees a NUL byte (where it would stop reading). Of the 88 base64
 * characters bcrypt reads the first 72, 432 bits of the digest: its cut takes nothing of the
 * password, only redundant bits of a hash of all of it.
 */
export function prehash(password: string): string {
  return createHash('sha512').update(password.normalize('NFKC'), 'utf8').digest('base64');
}

let commonPasswords: ReadonlySet<string> | undefined;
/** The bundled list (./common-passwords/README.md names its source and licence), read once. */
export function commonPasswordList(): ReadonlySet<string> {
  commonPasswords ??= new Set(
    readFileSync(new URL('./common-passwords/common-passwords.txt', import.meta.url), 'utf8')
      .split('\n')
      .filter((line) => line.length > 0),
  );
  return commonPasswords;
}

/** One character repeated, or a run of consecutive characters up or down (`aaaaaaaa`, `abcdefgh`, `87654321`). */
function isRepeatOrSequence(characters: readonly string[]): boolean {
  const codes = characters.map((c) => c.codePointAt(0) ?? 0);
  const steps = new Set(codes.slice(1).map((code, i) => code - (codes[i] ?? 0)));
  return steps.size === 1 && [0, 1, -1].includes([...steps][0] ?? 2);
}

/**
 * Throws InvalidArgument (on `field`) unless the password is 8..128 characters (Unicode code
 * points) and not a commonly used one: listed in the bundled list (whatever its letter case), one
 * character repeated, or a run of consecutive characters. No composition rules (NIST SP
 * 800-63B 5.1.1.2). `context` values (the username, the email) are refused as the whole password.
 */
export function validatePassword(password: unknown, field = 'password', context: readonly string[] = []): string {
  if (typeof password !== 'string' || password.length === 0) throw InvalidArgument.field(field, 'is required');
  const characters = [...password];
  if (characters.length < PASSWORD_MIN_CHARACTERS) {
    throw InvalidArgument.field(field, `must be at least ${PASSWORD_MIN_CHARACTERS} characters long (got ${characters.length})`);
  }
  if (characters.length > PASSWORD_MAX_CHARACTERS) {
    throw InvalidArgument.field(field, `must be at most ${PASSWORD_MAX_CHARACTERS} characters long (got ${characters.length})`);
  }
  const folded = password.normalize('NFKC').toLowerCase();
  if (commonPasswordList().has(folded) || isRepeatOrSequence(characters)) {
    throw InvalidArgument.field(field, 'is too common: it is among the passwords most often chosen; choose another');
  }
  if (context.some((value) => value.length > 0 && value.normalize('NFKC').toLowerCase() === folded)) {
    throw InvalidArgument.field(field, 'must not be your username or email address');
  }
  return password;
}

/** The two bcrypt calls PasswordHasher makes; the real `bcrypt` package unless a test counts them. */
export type BcryptEngine = {
  hash(data: string, cost: number): Promise<string>;
  compare(data: string, encrypted: string): Promise<boolean>;
};

export type PasswordHasherOptions = {
  cost: number;
  /**
   * bcrypt calls (hashes and compares together) allowed at once (BCRYPT_CONCURRENCY; default 2).
   * Each runs on one libuv thread-pool thread for its whole duration (about 200 ms at cost 12);
   * without a cap a burst of logins takes every pool thread, and whatever else needs the pool (DNS
   * lookups, file reads, zlib, WebCrypto) waits behind all of them. Keep it below
   * UV_THREADPOOL_SIZE (4 unless set before the process starts).
   */
  concurrency?: number;
  bcrypt?: BcryptEngine;
};

export const DEFAULT_BCRYPT_CONCURRENCY = 2;

/**
 * bcrypt hashing with a configured cost and a cap on concurrent bcrypt calls. The async bcrypt
 * calls run on libuv's thread pool, so a hash never blocks the event loop; the cap (a FIFO
 * semaphore) keeps them from occupying the whole pool. Callers beyond the cap wait their turn;
 * the login rate limit in front of the use cases bounds how many can queue per user and address.
 */
export class PasswordHasher {
  readonly cost: number;
  readonly #bcrypt: BcryptEngine;
  readonly #slots: Semaphore;
  #dummyHash: Promise<string> | undefined;

  /** @throws RangeError when `concurrency` is not a positive integer */
  constructor(options: PasswordHasherOptions) {
    this.cost = options.cost;
    this.#bcrypt = options.bcrypt ?? bcrypt;
    this.#slots = new Semaphore(options.concurrency ?? DEFAULT_BCRYPT_CONCURRENCY);
  }

  /** bcrypt calls allowed at once. */
  get concurrency(): number {
    return this.#slots.permits;
  }

  /** bcrypt calls running now (at most `concurrency`) and waiting for a slot. */
  get load(): { inFlight: number; waiting: number } {
    return { inFlight: this.#slots.inFlight, waiting: this.#slots.waiting };
  }

  /**
   * Hashes a password that already passed validatePassword, as version 2 (PASSWORD_HASH_V2_PREFIX
   * and bcrypt over `prehash(password)`); throws what bcrypt throws.
   */
  async hash(password: string): Promise<string> {
    const prehashed = prehash(password);
    return PASSWORD_HASH_V2_PREFIX + (await this.#slots.run(() => this.#bcrypt.hash(prehashed, this.cost)));
  }

  /**
   * True when the password matches a stored hash of either version; false for a malformed hash
   * rather than throwing. A version-1 hash (bcrypt over the password itself) only ever saw the
   * first 72 bytes, so a longer password is refused against it (still after a bcrypt compare, for
   * the same time): its 72-byte prefix must not open the account.
   */
  async verify(password: string, hash: string): Promise<boolean> {
    const v2 = hash.startsWith(PASSWORD_HASH_V2_PREFIX);
    const candidate = v2 ? prehash(password) : password;
    const stored = v2 ? hash.slice(PASSWORD_HASH_V2_PREFIX.length) : hash;
    const fitsV1 = v2 || Buffer.byteLength(password, 'utf8') <= BCRYPT_MAX_BYTES;
    try {
      const same = await this.#slots.run(() => this.#bcrypt.compare(candidate, stored));
      return same && fitsV1;
    } catch {
      return false;
    }
  }

  /**
   * True for a stored hash the next successful login should replace: one of an older version, or
   * one whose bcrypt cost is below the configured cost (BCRYPT_COST raised since it was made).
   */
  needsRehash(hash: string): boolean {
    if (!hash.startsWith(PASSWORD_HASH_V2_PREFIX)) return true;
    const cost = /^\$2[abxy]?\$(\d{2})\$/.exec(hash.slice(PASSWORD_HASH_V2_PREFIX.length))?.[1];
    return cost === undefined || Number(cost) < this.cost;
  }

  /**
   * Builds the hash `verifyDummy` compares against, once: the composition root awaits it at
   * start-up, so the first unknown-user login costs one bcrypt compare like every other one, not a
   * hash and a compare (which made it measurably slower than a wrong password). `verifyDummy`
   * still builds it itself if this was never called.
   */
  async prepare(): Promise<void> {
    await this.#dummy();
  }

  /**
   * Spends the same bcrypt work as `verify` against a hash of the same cost and always answers
   * false: the unknown-user path of login uses it so that it takes as long as a wrong password.
   */
  async verifyDummy(password: string): Promise<false> {
    await this.verify(password, await this.#dummy());
    return false;
  }

  /** Built once per process, inside the bcrypt cap but outside `hash` (which counts sign-ups). */
  #dummy(): Promise<string> {
    this.#dummyHash ??= this.#slots.run(() => this.#bcrypt.hash(prehash('dummy-password-for-timing'), this.cost)).then((hash) => PASSWORD_HASH_V2_PREFIX + hash);
    return this.#dummyHash;
  }
}
