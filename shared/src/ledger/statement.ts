// An account statement for a period and its CSV rendering (RFC 4180).
import type { Currency } from './currency.ts';
import { formatMajorUnits } from './currency.ts';
import type { Account, TransferKind } from './ledger.types.ts';

/** One entry of a statement, with what the reader needs to recognise it. */
export type StatementLine = {
  entryId: bigint;
  transferId: bigint;
  postedAt: Date;
  kind: TransferKind;
  /** The other account's owner, or "bank" for a system account (deposits, withdrawals). */
  counterparty: string;
  memo: string | null;
  reference: string | null;
  /** Minor units; negative for money leaving the account. */
  amount: bigint;
  balanceAfter: bigint;
};

/** A hold on the account still pending at the end of the period. */
export type StatementHold = {
  transferId: bigint;
  createdAt: Date;
  expiresAt: Date;
  counterparty: string;
  memo: string | null;
  reference: string | null;
  /** Minor units reserved (positive). */
  amount: bigint;
};

export type Statement = {
  account: Pick<Account, 'id' | 'owner' | 'currency'>;
  /** Inclusive. */
  since: Date;
  /** Exclusive. */
  until: Date;
  openingBalance: bigint;
  closingBalance: bigint;
  /** Sum of the positive entries. */
  totalIn: bigint;
  /** Sum of the negative entries (as a negative number). */
  totalOut: bigint;
  lines: StatementLine[];
  pendingHolds: StatementHold[];
};

/** The name a statement is issued under. */
export const STATEMENT_BANK_NAME = 'Bank';

/** The most entries one statement may hold; a longer period is refused (ask for a shorter one). */
export const STATEMENT_MAX_ENTRIES = 100_000;

export const STATEMENT_CSV_HEADER = ['posted_at', 'transfer_id', 'kind', 'counterparty', 'memo', 'reference', 'amount', 'balance_after', 'currency'] as const;

/** The start of the calendar month (UTC) that `now` falls in. */
export function startOfMonthUtc(now: Date): Date {
  return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1));
}

/**
 * A text field as a CSV cell: always quoted, quotes doubled. A value a spreadsheet would take
 * for a formula (starting with =, +, -, @, tab or carriage return) gets a leading apostrophe.
 */
export function csvText(value: string): string {
  const safe = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
  return `"${safe.replaceAll('"', '""')}"`;
}

/** A number produced here (amounts, ids): quoted, never rewritten, so "-12.34" stays a number. */
const csvNumber = (value: string): string => `"${value}"`;

/**
 * The statement as CSV per RFC 4180: CRLF line ends, every field quoted, one header row, then one
 * row per entry oldest first; amounts as signed decimals in the currency's major units.
 */
export function statementCsv(statement: Statement): string {
  const currency: Currency = statement.account.currency;
  const rows = [STATEMENT_CSV_HEADER.join(',')];
  for (const line of statement.lines) {
    rows.push([
      csvNumber(line.postedAt.toISOString()),
      csvNumber(line.transferId.toString()),
      csvText(line.kind),
      csvText(line.counterparty),
      csvText(line.memo ?? ''),
      csvText(line.reference ?? ''),
      csvNumber(formatMajorUnits(line.amount, currency)),
      csvNumber(formatMajorUnits(line.balanceAfter, currency)),
      csvText(currency),
    ].join(','));
  }
  return rows.map((row) => `${row}\r\n`).join('');
}

/** The attachment name: account and period, e.g. `statement-42-2026-11-01-2026-12-01.csv`. */
export function statementFileName(statement: Statement, extension: string): string {
  const day = (date: Date) => date.toISOString().slice(0, 10);
  return `statement-${statement.account.id}-${day(statement.since)}-${day(statement.until)}.${extension}`;
}
