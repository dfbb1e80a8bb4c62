import { AmountOutOfRange, InvalidArgument, NonPositiveAmount } from '../errors/domain-error.ts';

/**
 * The largest amount one movement may carry, in minor units: 10^15 (ten trillion in a
 * two-decimal currency). Far below int64, so even many maximal movements cannot silently wrap a
 * balance; a balance that would still overflow is refused by PostgreSQL (AmountOutOfRange).
 */
export const MAX_AMOUNT = 1_000_000_000_000_000n;

/**
 * Checks a money amount in minor units.
 * @throws InvalidArgument (not an integer), NonPositiveAmount (zero or negative), AmountOutOfRange (too large)
 */
export function parseAmount(value: unknown, field = 'amount'): bigint {
  if (typeof value !== 'bigint') throw InvalidArgument.field(field, 'must be an integer number of minor units');
  if (value <= 0n) throw new NonPositiveAmount(value, field);
  if (value > MAX_AMOUNT) throw new AmountOutOfRange(`must be at most ${MAX_AMOUNT} minor units`, field);
  return value;
}

/** Checks an id: a positive int64. */
export function parseId(value: unknown, field: string): bigint {
  if (typeof value !== 'bigint' || value <= 0n || value > 9_223_372_036_854_775_807n) {
    throw InvalidArgument.field(field, 'must be a positive 64-bit integer id');
  }
  return value;
}
