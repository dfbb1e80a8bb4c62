import bcrypt from 'bcrypt';
import { InvalidArgument } from '../errors/domain-error.ts';

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

/**
 * bcrypt hashing with a configured cost. The async bcrypt calls run on libuv's thread pool, so a
 * hash (about 200+ ms at cost 12) never blocks the event loop.
 */
export class PasswordHasher {
  readonly cost: number;
  #dummyHash: Promise<string> | undefined;

  constructor(options: { cost: number }) {
    this.cost = options.cost;
  }

  /** Hashes a password that already passed validatePassword. */
  async hash(password: string): Promise<string> {
    return bcrypt.hash(password, this.cost);
  }

  /** True when the password matches; false for a malformed hash rather than throwing. */
  async verify(password: string, hash: string): Promise<boolean> {
    try {
      return await bcrypt.compare(password, hash);
    } catch {
      return false;
    }
  }

  /**
   * Spends the same bcrypt work as `verify` against a hash of the same cost and always answers
   * false: the unknown-user path of login uses it so that it takes as long as a wrong password.
   */
  async verifyDummy(password: string): Promise<false> {
    this.#dummyHash ??= bcrypt.hash('dummy-password-for-timing', this.cost);
    await this.verify(password, await this.#dummyHash);
    return false;
  }
}
