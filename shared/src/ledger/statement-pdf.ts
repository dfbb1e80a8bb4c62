// An account statement as an A4 PDF (pdfkit, standard Helvetica, nothing embedded): bank name,
// account, period, summary, the entries oldest first, the holds pending at the end, page numbers.
// The same statement renders to the same bytes: the document's dates and ID come from its period.
import PDFDocument from 'pdfkit';
import { formatMajorUnits } from './currency.ts';
import type { Statement } from './statement.ts';

const MARGIN = 50;
/** Column x positions and widths on an A4 page (595 x 842 points). */
const COLUMNS = [
  { title: 'Posted (UTC)', x: MARGIN, width: 95, align: 'left' },
  { title: 'Kind', x: 148, width: 55, align: 'left' },
  { title: 'Counterparty', x: 205, width: 80, align: 'left' },
  { title: 'Memo / reference', x: 287, width: 118, align: 'left' },
  { title: 'Amount', x: 407, width: 65, align: 'right' },
  { title: 'Balance', x: 475, width: 70, align: 'right' },
] as const;

const when = (date: Date) => date.toISOString().slice(0, 16).replace('T', ' ');

/** Renders the statement; resolves with the PDF's bytes. */
export async function statementPdf(statement: Statement, options: { bankName: string }): Promise<Uint8Array> {
  const money = (minor: bigint) => `${formatMajorUnits(minor, statement.account.currency)}`;
  const doc = new PDFDocument({
    size: 'A4',
    margins: { top: MARGIN, bottom: MARGIN, left: MARGIN, right: MARGIN },
    bufferPages: true,
    info: {
      Title: `${options.bankName} statement, account ${statement.account.id}`,
      Author: options.bankName,
      CreationDate: statement.until,
      ModDate: statement.until,
    },
  });
  const chunks: Buffer[] = [];
  doc.on('data', (chunk: Buffer) => chunks.push(chunk));
  const ended = new Promise<void>((resolve, reject) => {
    doc.on('end', resolve);
    doc.on('error', reject);
  });

  doc.font('Helvetica-Bold').fontSize(18).text(options.bankName);
  doc.font('Helvetica').fontSize(11).moveDown(0.3);
  doc.text(`Statement of account ${statement.account.id} (${statement.account.currency}), holder ${statement.account.owner}`);
  doc.text(`Period: ${when(statement.since)} to ${when(statement.until)} UTC (end exclusive)`);
  doc.moveDown(0.5);
  const summary: [string, bigint][] = [
    ['Opening balance', statement.openingBalance],
    ['Total in', statement.totalIn],
    ['Total out', statement.totalOut],
    ['Closing balance', statement.closingBalance],
  ];
  for (const [label, value] of summary) doc.text(`${label}: ${money(value)} ${statement.account.currency}`);
  doc.moveDown(0.8);

  const row = (cells: readonly string[], bold = false) => {
    doc.font(bold ? 'Helvetica-Bold' : 'Helvetica').fontSize(8);
    const heights = cells.map((cell, i) => doc.heightOfString(cell, { width: COLUMNS[i]?.width ?? 50 }));
    const height = Math.max(...heights) + 4;
    if (doc.y + height > doc.page.height - MARGIN - 20) doc.addPage();
    const top = doc.y;
    cells.forEach((cell, i) => {
      const column = COLUMNS[i];
      if (column) doc.text(cell, column.x, top, { width: column.width, align: column.align });
    });
    doc.x = MARGIN;
    doc.y = top + height;
  };

  doc.font('Helvetica-Bold').fontSize(12).text('Entries');
  doc.moveDown(0.3);
  row(COLUMNS.map((c) => c.title), true);
  if (statement.lines.length === 0) row(['No entries in this period.', '', '', '', '', '']);
  for (const line of statement.lines) {
    const note = [line.memo, line.reference ? `ref ${line.reference}` : null].filter(Boolean).join(' / ');
    row([when(line.postedAt), line.kind, line.counterparty, note, money(line.amount), money(line.balanceAfter)]);
  }

  doc.moveDown(0.8);
  doc.font('Helvetica-Bold').fontSize(12).text('Pending holds at the end of the period', MARGIN);
  doc.moveDown(0.3);
  if (statement.pendingHolds.length === 0) row(['None.', '', '', '', '', '']);
  for (const hold of statement.pendingHolds) {
    const note = [hold.memo, hold.reference ? `ref ${hold.reference}` : null, `until ${when(hold.expiresAt)}`].filter(Boolean).join(' / ');
    row([when(hold.createdAt), 'hold', hold.counterparty, note, money(-hold.amount), '']);
  }

  const range = doc.bufferedPageRange();
  for (let i = range.start; i < range.start + range.count; i += 1) {
    doc.switchToPage(i);
    const bottom = doc.page.margins.bottom;
    doc.page.margins.bottom = 0;
    doc.font('Helvetica').fontSize(8).text(`Page ${i + 1} of ${range.count}`, MARGIN, doc.page.height - MARGIN + 10, {
      width: doc.page.width - 2 * MARGIN,
      align: 'center',
    });
    doc.page.margins.bottom = bottom;
  }
  doc.end();
  await ended;
  return new Uint8Array(Buffer.concat(chunks));
}
