// Statement CSV: RFC 4180 (CRLF, quoted fields), amounts in major units, no spreadsheet formulas.
import { describe, expect, it } from '@jest/globals';
import { formatMajorUnits } from './currency.ts';
import { csvText, startOfMonthUtc, statementCsv, statementFileName, type Statement } from './statement.ts';

const statement = (over: Partial<Statement> = {}): Statement => ({
  account: { id: 42n, owner: 'alice', currency: 'USD' },
  since: new Date('2026-11-01T00:00:00Z'),
  until: new Date('2026-12-01T00:00:00Z'),
  openingBalance: 0n,
  closingBalance: 0n,
  totalIn: 0n,
  totalOut: 0n,
  lines: [],
  pendingHolds: [],
  ...over,
});

const line = (over: Partial<Statement['lines'][number]> = {}): Statement['lines'][number] => ({
  entryId: 1n,
  transferId: 7n,
  postedAt: new Date('2026-11-02T10:00:00.123Z'),
  kind: 'transfer',
  counterparty: 'bob',
  memo: null,
  reference: null,
  amount: -1234n,
  balanceAfter: 8766n,
  ...over,
});

describe('formatMajorUnits', () => {
  it('writes signed decimals with the currency minor-unit digits', () => {
    expect(formatMajorUnits(-1234n, 'USD')).toBe('-12.34');
    expect(formatMajorUnits(5n, 'EUR')).toBe('0.05');
    expect(formatMajorUnits(-5n, 'GBP')).toBe('-0.05');
    expect(formatMajorUnits(0n, 'CHF')).toBe('0.00');
    expect(formatMajorUnits(123456789012n, 'CAD')).toBe('1234567890.12');
    expect(formatMajorUnits(500n, 'JPY')).toBe('500');
    expect(formatMajorUnits(-500n, 'JPY')).toBe('-500');
  });
});

describe('statementCsv', () => {
  it('writes the header alone, CRLF-terminated, for a period without entries', () => {
    expect(statementCsv(statement())).toBe('posted_at,transfer_id,kind,counterparty,memo,reference,amount,balance_after,currency\r\n');
  });

  it('writes one quoted row per entry, oldest first, with amounts in major units', () => {
    const csv = statementCsv(statement({
      lines: [
        line({ kind: 'deposit', counterparty: 'bank', amount: 10_000n, balanceAfter: 10_000n, transferId: 6n }),
        line({ memo: 'rent, "November"', reference: 'INV-1', amount: -1234n, balanceAfter: 8766n }),
      ],
    }));
    expect(csv.split('\r\n')).toEqual([
      'posted_at,transfer_id,kind,counterparty,memo,reference,amount,balance_after,currency',
      '"2026-11-02T10:00:00.123Z","6","deposit","bank","","","100.00","100.00","USD"',
      '"2026-11-02T10:00:00.123Z","7","transfer","bob","rent, ""November""","INV-1","-12.34","87.66","USD"',
      '',
    ]);
    expect(csv).not.toMatch(/[^\r]\n/);
  });

  it('writes JPY amounts without decimals', () => {
    const csv = statementCsv(statement({ account: { id: 1n, owner: 'a', currency: 'JPY' }, lines: [line({ amount: -500n, balanceAfter: 1500n })] }));
    expect(csv.split('\r\n')[1]).toBe('"2026-11-02T10:00:00.123Z","7","transfer","bob","","","-500","1500","JPY"');
  });

  it('defuses text a spreadsheet would run as a formula, but not the amounts', () => {
    for (const start of ['=', '+', '-', '@', '\t', '\r']) expect(csvText(`${start}cmd`)).toBe(`"'${start}cmd"`);
    expect(csvText('plain')).toBe('"plain"');
    const row = statementCsv(statement({ lines: [line({ memo: '=HYPERLINK("x")', reference: '@SUM(A1)' })] })).split('\r\n')[1];
    expect(row).toBe('"2026-11-02T10:00:00.123Z","7","transfer","bob","\'=HYPERLINK(""x"")","\'@SUM(A1)","-12.34","87.66","USD"');
  });

  it('keeps a line break inside a quoted field', () => {
    const row = statementCsv(statement({ lines: [line({ memo: 'a\r\nb' })] }));
    expect(row).toContain('"a\r\nb"');
  });
});

describe('statement helpers', () => {
  it('names the file after the account and period', () => {
    expect(statementFileName(statement(), 'csv')).toBe('statement-42-2026-11-01-2026-12-01.csv');
  });
  it('starts the default period at the first of the month, UTC', () => {
    expect(startOfMonthUtc(new Date('2026-12-15T23:30:00-05:00'))).toEqual(new Date('2026-12-01T00:00:00Z'));
  });
});
