import { describe, expect, it } from '@jest/globals';
import { formatAmount, parseAmount, toDecimalString } from './money.ts';

describe('amounts from minor units', () => {
  it('are decimal strings per currency, exact beyond 2^53', () => {
    expect(toDecimalString(123_456n, 'USD')).toBe('1234.56');
    expect(toDecimalString(5n, 'EUR')).toBe('0.05');
    expect(toDecimalString(-5n, 'EUR')).toBe('-0.05');
    expect(toDecimalString(700n, 'JPY')).toBe('700');
    expect(toDecimalString(9_007_199_254_740_993n, 'USD')).toBe('90071992547409.93');
  });

  it('are shown with the currency sign and grouping, exactly', () => {
    expect(formatAmount(123_456n, 'USD')).toBe('$1,234.56');
    expect(formatAmount(700n, 'JPY')).toBe('¥700');
    expect(formatAmount(9_007_199_254_740_993n, 'USD')).toBe('$90,071,992,547,409.93');
    expect(formatAmount(-1n, 'GBP')).toBe('-£0.01');
  });
});

describe('amounts typed by a person', () => {
  it('become minor units without floats', () => {
    expect(parseAmount('12.5', 'USD')).toEqual({ ok: true, minor: 1250n });
    expect(parseAmount('1,000.07', 'USD')).toEqual({ ok: true, minor: 100_007n });
    expect(parseAmount('0.29', 'USD')).toEqual({ ok: true, minor: 29n }); // 0.29 * 100 is 28.999... as a double
    expect(parseAmount('700', 'JPY')).toEqual({ ok: true, minor: 700n });
  });

  it('are refused in words when they cannot be read', () => {
    expect(parseAmount('', 'USD')).toEqual({ ok: false, reason: 'Enter an amount.' });
    expect(parseAmount('1.234', 'USD')).toEqual({ ok: false, reason: 'USD has at most 2 decimals.' });
    expect(parseAmount('1.5', 'JPY')).toEqual({ ok: false, reason: 'JPY has no decimals.' });
    expect(parseAmount('-3', 'USD')).toMatchObject({ ok: false });
    expect(parseAmount('1e3', 'USD')).toMatchObject({ ok: false });
    expect(parseAmount('0.00', 'USD')).toEqual({ ok: false, reason: 'The amount must be more than zero.' });
  });
});
