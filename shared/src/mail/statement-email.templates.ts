// The monthly statement email: a short summary in the body, the statement itself as a PDF attachment.
import { formatMajorUnits } from '../ledger/currency.ts';
import type { Statement } from '../ledger/statement.ts';
import type { StatementEmailPayload } from './email.schema.ts';
import type { RenderedEmail } from './email.templates.ts';

const escapeHtml = (value: string) =>
  value.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');

/** `November 2026`: the month a statement covers (its period starts on the 1st, UTC). */
export const statementMonth = (since: Date) => since.toLocaleString('en-GB', { month: 'long', year: 'numeric', timeZone: 'UTC' });

export function statementEmailSubject(statement: Pick<Statement, 'account' | 'since'>): string {
  return `Your statement for ${statementMonth(statement.since)}, account ${statement.account.id}`;
}

export function renderStatementEmail(
  payload: StatementEmailPayload,
  statement: Statement,
  pdf: { filename: string; content: Uint8Array },
): RenderedEmail {
  const { currency } = statement.account;
  const money = (minor: bigint) => `${formatMajorUnits(minor, currency)} ${currency}`;
  const lines = [
    `Hello ${payload.fullName},`,
    `Attached is the statement of your account ${statement.account.id} (${currency}) for ${statementMonth(statement.since)} (UTC), as a PDF.`,
    [
      `Opening balance: ${money(statement.openingBalance)}`,
      `Total in: ${money(statement.totalIn)}`,
      `Total out: ${money(statement.totalOut)}`,
      `Closing balance: ${money(statement.closingBalance)}`,
      `Entries: ${statement.lines.length}`,
    ].join('\n'),
    'You can download statements of any period, as CSV or PDF, at GET /v1/accounts/{account_id}/statement.',
  ];
  return {
    to: payload.to,
    subject: statementEmailSubject(statement),
    text: lines.join('\n\n'),
    html: lines.map((line) => `<p>${escapeHtml(line).replaceAll('\n', '<br>')}</p>`).join('\n'),
    attachments: [{ filename: pdf.filename, contentType: 'application/pdf', content: pdf.content }],
  };
}
