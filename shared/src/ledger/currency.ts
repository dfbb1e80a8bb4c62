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

/** Digits after the decimal point of each currency's major unit (ISO 4217 minor units). */
export const MINOR_UNIT_DIGITS: Readonly<Record<Currency, number>> = { USD: 2, EUR: 2, GBP: 2, JPY: 0, CHF: 2, CAD: 2, AUD: 2 };

/** Minor units as a signed decimal string in major units: -1234n USD -> "-12.34", 500n JPY -> "500". */
export function formatMajorUnits(minor: bigint, currency: Currency): string {
  const digits = MINOR_UNIT_DIGITS[currency];
  const sign = minor < 0n ? '-' : '';
  const magnitude = (minor < 0n ? -minor : minor).toString();
  if (digits === 0) return `${sign}${magnitude}`;
  const padded = magnitude.padStart(digits + 1, '0');
  return `${sign}${padded.slice(0, -digits)}.${padded.slice(-digits)}`;
}
