// Amounts in minor units (the API's int64, a bigint here), shown and read per currency with
// strings and BigInt only: never a float between the API and the screen.

/** Digits after the decimal point per ISO 4217 currency the bank supports (JPY has none). */
const EXPONENT: Readonly<Record<string, number>> = { USD: 2, EUR: 2, GBP: 2, JPY: 0, CHF: 2, CAD: 2, AUD: 2 };

export const CURRENCIES: readonly string[] = Object.keys(EXPONENT);

export function exponentOf(currency: string): number {
  return EXPONENT[currency] ?? 2;
}

/** `123456n` USD -> `"1234.56"`; `-5n` -> `"-0.05"`; `700n` JPY -> `"700"`. */
export function toDecimalString(minor: bigint, currency: string): string {
  const exponent = exponentOf(currency);
  const negative = minor < 0n;
  const digits = (negative ? -minor : minor).toString().padStart(exponent + 1, '0');
  const whole = digits.slice(0, digits.length - exponent);
  const fraction = digits.slice(digits.length - exponent);
  return `${negative ? '-' : ''}${whole}${exponent > 0 ? `.${fraction}` : ''}`;
}

/**
 * For people: `$1,234.56`, `¥700`, `-€0.05`. Intl.NumberFormat formats the decimal string
 * exactly (a string argument is read as a decimal, not converted to a double).
 */
export function formatAmount(minor: bigint, currency: string, locale = 'en-US'): string {
  const exponent = exponentOf(currency);
  const format = new Intl.NumberFormat(locale, { style: 'currency', currency, minimumFractionDigits: exponent, maximumFractionDigits: exponent });
  return format.format(toDecimalString(minor, currency) as unknown as number);
}

/** Why a typed amount cannot be read, in words, or the amount in minor units. */
export type ParsedAmount = { ok: true; minor: bigint } | { ok: false; reason: string };

/** `"12.5"` USD -> 1250n. Accepts digits with an optional point and up to the currency's decimals; thousands separators are ignored. */
export function parseAmount(text: string, currency: string): ParsedAmount {
  const exponent = exponentOf(currency);
  const cleaned = text.trim().replace(/[,\s_]/g, '');
  if (cleaned === '') return { ok: false, reason: 'Enter an amount.' };
  const match = /^(\d+)(?:\.(\d*))?$/.exec(cleaned);
  if (!match) return { ok: false, reason: 'Enter an amount in digits, like 12.50.' };
  const whole = match[1] ?? '0';
  const fraction = match[2] ?? '';
  if (fraction.length > exponent) {
    return { ok: false, reason: exponent === 0 ? `${currency} has no decimals.` : `${currency} has at most ${exponent} decimals.` };
  }
  const minor = BigInt(whole + fraction.padEnd(exponent, '0'));
  if (minor <= 0n) return { ok: false, reason: 'The amount must be more than zero.' };
  return { ok: true, minor };
}
