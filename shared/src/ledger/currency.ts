import { InvalidArgument } from '../errors/domain-error.ts';

/** ISO 4217 codes this bank supports. The database CHECKs name the same list. */
export const CURRENCIES = ['USD', 'EUR', 'GBP', 'JPY', 'CHF', 'CAD', 'AUD'] as const;
export type Currency = (typeof CURRENCIES)[number];

export const isCurrency = (value: unknown): value is Currency =>
  typeof value === 'string' && (CURRENCIES as readonly string[]).includes(value);

export function parseCurrency(value: unknown, field = 'currency'): Currency {
  if (typeof value !== 'string' || value === '') throw InvalidArgument.field(field, 'is required');
  if (!isCurrency(value)) throw InvalidArgument.field(field, `unsupported currency "${value.slice(0, 8)}"; supported: ${CURRENCIES.join(', ')}`);
  return value;
}
