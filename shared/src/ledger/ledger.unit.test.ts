import { describe, expect, it } from '@jest/globals';
import { parseCurrency } from './currency.ts';
import { toDomainError } from './ledger.repository.ts';
import { MAX_AMOUNT, parseAmount, parseId } from './money.ts';
import { decodePageToken, DEFAULT_PAGE_SIZE, encodePageToken, MAX_PAGE_SIZE, parsePageSize } from './page-token.ts';

describe('money', () => {
  it('accepts positive bigint amounts up to MAX_AMOUNT and names the field otherwise', () => {
    expect(parseAmount(1n)).toBe(1n);
    expect(parseAmount(MAX_AMOUNT)).toBe(MAX_AMOUNT);
    expect(() => parseAmount(0n)).toThrow(expect.objectContaining({ code: 'INVALID_AMOUNT' }));
    expect(() => parseAmount(-1n)).toThrow(expect.objectContaining({ code: 'INVALID_AMOUNT' }));
    expect(() => parseAmount(MAX_AMOUNT + 1n)).toThrow(expect.objectContaining({ code: 'AMOUNT_OUT_OF_RANGE' }));
    expect(() => parseAmount(10, 'amount')).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT', fieldViolations: [expect.objectContaining({ field: 'amount' })] }));
    expect(() => parseId(0n, 'account_id')).toThrow(/account_id/);
    expect(() => parseId(2n ** 63n, 'account_id')).toThrow(/account_id/);
    expect(parseId(2n ** 63n - 1n, 'account_id')).toBe(2n ** 63n - 1n);
  });

  it('knows the supported currencies', () => {
    expect(parseCurrency('EUR')).toBe('EUR');
    expect(() => parseCurrency('usd')).toThrow(/unsupported currency/);
    expect(() => parseCurrency(undefined)).toThrow(/currency: is required/);
  });
});

describe('page tokens', () => {
  it('round-trip and are bound to their list', () => {
    const token = encodePageToken('entries', 123n);
    expect(decodePageToken('entries', token)).toBe(123n);
    expect(decodePageToken('entries', '')).toBeNull();
    expect(() => decodePageToken('transfers', token)).toThrow(/page_token/);
    expect(() => decodePageToken('entries', Buffer.from('v1:entries:-5').toString('base64url'))).toThrow(/page_token/);
    expect(() => decodePageToken('entries', 'x'.repeat(65))).toThrow(/page_token/);
  });

  it('default and cap page sizes', () => {
    expect(parsePageSize(undefined)).toBe(DEFAULT_PAGE_SIZE);
    expect(parsePageSize(0)).toBe(DEFAULT_PAGE_SIZE);
    expect(parsePageSize(10_000)).toBe(MAX_PAGE_SIZE);
    expect(() => parsePageSize(-1)).toThrow(/page_size/);
    expect(() => parsePageSize(1.5)).toThrow(/page_size/);
  });
});

describe('toDomainError', () => {
  it('maps ledger SQLSTATEs and constraint names, and leaves real faults alone', () => {
    expect(toDomainError({ code: 'BK005', detail: '7' })).toMatchObject({ code: 'INSUFFICIENT_FUNDS', message: expect.stringMatching(/account 7/) });
    expect(toDomainError({ code: '22003' })).toMatchObject({ code: 'AMOUNT_OUT_OF_RANGE' });
    expect(toDomainError({ code: '23514', constraint: 'accounts_balance_nonnegative' })).toMatchObject({ code: 'INSUFFICIENT_FUNDS' });
    expect(toDomainError({ code: '23505', constraint: 'accounts_owner_currency_open_key' })).toMatchObject({ code: 'ACCOUNT_ALREADY_EXISTS' });
    expect(toDomainError({ code: '08006' })).toBeUndefined();
    expect(toDomainError(new Error('boom'))).toBeUndefined();
  });
});
