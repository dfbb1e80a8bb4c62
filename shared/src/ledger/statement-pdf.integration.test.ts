// The statement PDF, checked with poppler: two renders are byte-identical, and the text extracted
// from a 60-entry month names the bank, account, period, totals and page numbers.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { statementPdf } from './statement-pdf.ts';
import type { Statement } from './statement.ts';

const sixtyEntries = (): Statement => {
  const lines = Array.from({ length: 60 }, (_, i) => ({
    entryId: BigInt(i + 1),
    transferId: BigInt(100 + i),
    postedAt: new Date(Date.UTC(2026, 10, 1 + Math.floor(i / 2), 9, i)),
    kind: i % 2 === 0 ? ('deposit' as const) : ('transfer' as const),
    counterparty: i % 2 === 0 ? 'bank' : 'bob',
    memo: i % 2 === 0 ? null : `rent part ${i}`,
    reference: i === 1 ? 'INV-1' : null,
    amount: i % 2 === 0 ? 1_000n : -250n,
    balanceAfter: 5_000n + BigInt(Math.ceil((i + 1) / 2)) * 1_000n - BigInt(Math.floor((i + 1) / 2)) * 250n,
  }));
  return {
    account: { id: 42n, owner: 'alice', currency: 'USD' },
    since: new Date('2026-11-01T00:00:00Z'),
    until: new Date('2026-12-01T00:00:00Z'),
    openingBalance: 5_000n,
    closingBalance: 27_500n,
    totalIn: 30_000n,
    totalOut: -7_500n,
    lines,
    pendingHolds: [{ transferId: 999n, createdAt: new Date('2026-11-30T10:00:00Z'), expiresAt: new Date('2026-12-02T10:00:00Z'), counterparty: 'carol', memo: 'deposit', reference: null, amount: 1_200n }],
  };
};

describe('statementPdf', () => {
  it('renders the same bytes twice, and readable text with totals and page numbers', async () => {
    const statement = sixtyEntries();
    const first = await statementPdf(statement, { bankName: 'Test Bank' });
    const second = await statementPdf(statement, { bankName: 'Test Bank' });
    expect(Buffer.from(first).equals(Buffer.from(second))).toBe(true);
    expect(Buffer.from(first.subarray(0, 5)).toString()).toBe('%PDF-');

    const dir = mkdtempSync(path.join(tmpdir(), 'statement-pdf-'));
    try {
      const file = path.join(dir, 'statement.pdf');
      writeFileSync(file, first);
      const text = execFileSync('pdftotext', ['-layout', file, '-'], { encoding: 'utf8' });
      expect(text).toContain('Test Bank');
      expect(text).toContain('Statement of account 42 (USD), holder alice');
      expect(text).toContain('Period: 2026-11-01 00:00 to 2026-12-01 00:00 UTC');
      expect(text).toContain('Opening balance: 50.00 USD');
      expect(text).toContain('Total in: 300.00 USD');
      expect(text).toContain('Total out: -75.00 USD');
      expect(text).toContain('Closing balance: 275.00 USD');
      expect(text).toContain('rent part 1 / ref INV-1');
      expect(text).toContain('carol');
      const pages = Number(/Pages:\s+(\d+)/.exec(execFileSync('pdfinfo', [file], { encoding: 'utf8' }))?.[1]);
      expect(pages).toBeGreaterThan(1);
      expect(text).toContain(`Page 1 of ${pages}`);
      expect(text).toContain(`Page ${pages} of ${pages}`);
      const info = execFileSync('pdfinfo', [file], { encoding: 'utf8' });
      expect(info).toMatch(/Page size:\s+595\.28 x 841\.89 pts \(A4\)/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
