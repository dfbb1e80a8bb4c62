import bcrypt from 'bcrypt';
import { InvalidArgument } from '../errors/domain-error.ts';
import { Semaphore } from './semaphore.ts';

export const PASSWORD_MIN_BYTES = 8;
/** bcrypt only reads the first 72 bytes; longer passwords would be silently truncated, so refuse them. */
export const PASSWORD_MAX_BYTES = 72;

/** Throws InvalidArgument (on `field`) unless the password is 8..72 bytes of UTF-8. */
export function validatePassword(password: unknown, field = 'password'): string {
  if (typeof password !== 'string' || password.length === 0) throw InvalidArgument.field(field, 'is required');
  const bytes = Buffer.byteLength(password, 'utf8');
  if (bytes < PASSWORD_MIN_BYTES) throw InvalidArgument.field(field, `must be at least ${PASSWORD_MIN_BYTES} bytes long (got ${bytes})`);
  if (bytes > PASSWORD_MAX_BYTES) throw InvalidArgument.field(field, `must be at most ${PASSWORD_MAX_BYTES} bytes long in UTF-8 (got ${bytes})`);
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

  /** Hashes a password that already passed validatePassword; throws what bcrypt throws. */
  async hash(password: string): Promise<string> {
    return this.#slots.run(() => this.#bcrypt.hash(password, this.cost));
  }

  /** True when the password matches; false for a malformed hash rather than throwing. */
  async verify(password: string, hash: string): Promise<boolean> {
    try {
      return await this.#slots.run(() => this.#bcrypt.compare(password, hash));
    } catch {
      return false;
    }
  }

  /**
   * Spends the same bcrypt work as `verify` against a hash of the same cost and always answers
   * false: the unknown-user path of login uses it so that it takes as long as a wrong password.
   */
  async verifyDummy(password: string): Promise<false> {
    // Built once per process, inside the bcrypt cap but outside `hash` (which counts sign-ups).
    this.#dummyHash ??= this.#slots.run(() => this.#bcrypt.hash('dummy-password-for-timing', this.cost));
    await this.verify(password, await this.#dummyHash);
    return false;
  }
}
