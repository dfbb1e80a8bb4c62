import { InvalidArgument } from '../errors/domain-error.ts';

export const DEFAULT_PAGE_SIZE = 50;
export const MAX_PAGE_SIZE = 200;

/**
 * Cursor page tokens are opaque to clients: base64url of `v1:<kind>:<last id>`. The kind keeps
 * an entries token from being used on the transfers list.
 */
export function encodePageToken(kind: string, lastId: bigint): string {
  return Buffer.from(`v1:${kind}:${lastId}`, 'utf8').toString('base64url');
}

/** @throws InvalidArgument on a token this server did not make for this list. */
export function decodePageToken(kind: string, token: string | undefined): bigint | null {
  if (token === undefined || token === '') return null;
  const invalid = () => InvalidArgument.field('page_token', 'is not a valid page token for this list');
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(token)) throw invalid();
  const match = /^v1:([a-z]+):([1-9][0-9]{0,18})$/.exec(Buffer.from(token, 'base64url').toString('utf8'));
  if (!match || match[1] !== kind) throw invalid();
  return BigInt(match[2] ?? '0');
}

/** @throws InvalidArgument when page_size is negative or not an integer; 0 means the default. */
export function parsePageSize(value: number | undefined): number {
  if (value === undefined || value === 0) return DEFAULT_PAGE_SIZE;
  if (!Number.isInteger(value) || value < 0) throw InvalidArgument.field('page_size', 'must be a non-negative integer');
  return Math.min(value, MAX_PAGE_SIZE);
}
