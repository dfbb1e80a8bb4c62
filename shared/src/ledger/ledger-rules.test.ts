import { describe, expect, it } from '@jest/globals';
import { parseCurrency } from './currency.ts';
import { databaseErrorToDomainError, LEDGER_REFUSALS, refusalError } from './ledger.errors.ts';
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

describe('ledger errors', () => {
  it('maps ledger_move() refusals by name and database errors by SQLSTATE and constraint name, and leaves real faults alone', () => {
    expect(refusalError('insufficient_funds', '7')).toMatchObject({ code: 'INSUFFICIENT_FUNDS', message: expect.stringMatching(/account 7/) });
    expect(databaseErrorToDomainError({ code: '22003' })).toMatchObject({ code: 'AMOUNT_OUT_OF_RANGE' });
    expect(databaseErrorToDomainError({ code: '23514', constraint: 'accounts_balance_nonnegative' })).toMatchObject({ code: 'INSUFFICIENT_FUNDS' });
    expect(databaseErrorToDomainError({ code: '23505', constraint: 'accounts_owner_currency_open_key' })).toMatchObject({ code: 'ACCOUNT_ALREADY_EXISTS' });
    expect(databaseErrorToDomainError({ code: '08006' })).toBeUndefined();
    expect(databaseErrorToDomainError(new Error('boom'))).toBeUndefined();
    // Refusals are answers of ledger_move(), never raised: the old SQLSTATE codes mean nothing.
    expect(databaseErrorToDomainError({ code: 'BK005', detail: '7' })).toBeUndefined();
  });

  it('gives every refusal the domain error whose code is its name, so metrics keep their outcome labels', () => {
    for (const refusal of LEDGER_REFUSALS) {
      expect(refusalError(refusal, '42').code.toLowerCase()).toBe(refusal);
    }
    expect(refusalError('account_not_found', '42').message).toBe('account 42 not found');
    expect(refusalError('permission_denied', '42').message).toBe('you may not move money out of or into account 42');
    expect(refusalError('account_closed', '42').message).toBe('account 42 is closed');
    expect(refusalError('currency_mismatch', 'currency mismatch: from USD to EUR, request USD').message).toBe(
      'currency mismatch: from USD to EUR, request USD',
    );
    expect(refusalError('idempotency_conflict', 'ignored').message).toBe('this idempotency key was already used with a different request');
  });
});
