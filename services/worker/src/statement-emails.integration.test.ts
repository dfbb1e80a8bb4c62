// Monthly statement emails, with real PostgreSQL, Redis and an SMTP receiver, the workers in this
// process with their clock set: on the 1st, three workers send exactly one email per open user
// account, its statement of the month before as a PDF (checked with poppler's pdftotext); a
// worker started later in the month catches the month up once, and the next one does nothing.
import { execFileSync } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { sql } from 'slonik';
import { z } from 'zod';
import type { Actor } from '@bank/shared/auth/actor';
import { parseConfig, type Config } from '@bank/shared/config/config';
import { LedgerService } from '@bank/shared/ledger/ledger.service';
import { STATEMENT_BANK_NAME } from '@bank/shared/ledger/statement';
import { statementPdf } from '@bank/shared/ledger/statement-pdf';
import { createLogger } from '@bank/shared/logging/logger';
import { createRedis, type Redis } from '@bank/shared/redis/redis';
import { Queue } from 'bullmq';
import { createTestDatabase, type TestDatabase } from '../../../test/db.ts';
import { createUser, idemKey } from '../../../test/factories.ts';
import { TEST_REDIS_URL } from '../../../test/services.ts';
import { startTestSmtpServer, type CapturedEmail, type TestSmtpServer } from '../../../test/smtp.ts';
import { MONTHLY_STATEMENTS_CRON, MONTHLY_STATEMENTS_JOB, statementQueueName } from './statement-scheduler.ts';
import { startWorker, type RunningWorker } from './worker.ts';

const run = randomBytes(4).toString('hex');
const logger = createLogger({ name: 'test', level: 'silent', pretty: false });

let db: TestDatabase;
let smtp: TestSmtpServer;
let redis: Redis;
let ledger: LedgerService;
const workers: RunningWorker[] = [];
const queueNames: string[] = [];

// The entries are posted now, so the month the workers are made to believe just ended is this one.
const now = new Date();
const thisMonth = { since: new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1)), until: new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1)) };
const nextMonth = { since: thisMonth.until, until: new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 2, 1)) };
const day = (date: Date) => date.toISOString().slice(0, 10);
const emailOf = (actor: Actor) => `${actor.username}@example.test`;

function configFor(queueName: string): Config {
  return parseConfig({
    NODE_ENV: 'test',
    LOG_LEVEL: 'silent',
    DATABASE_URL: db.url,
    REDIS_URL: TEST_REDIS_URL,
    SMTP_URL: smtp.url,
    PUBLIC_BASE_URL: 'http://bank.test',
    EMAIL_QUEUE_NAME: queueName,
    METRICS_PORT: '0',
    OUTBOX_SWEEP_INTERVAL_MS: '500',
    WORKER_STALLED_INTERVAL_MS: '1000',
    LEDGER_CHECK_INTERVAL_MS: '0',
    // Two accounts a page, so a run goes through several pages.
    STATEMENT_EMAIL_PAGE_SIZE: '2',
  });
}

async function startWorkers(count: number, queueName: string, clock: Date): Promise<RunningWorker[]> {
  if (!queueNames.includes(queueName)) queueNames.push(queueName);
  const started = await Promise.all(Array.from({ length: count }, () => startWorker(configFor(queueName), { pool: db.pool, logger, host: '127.0.0.1', clock: () => clock })));
  workers.push(...started);
  return started;
}

async function stopWorkers(): Promise<void> {
  await Promise.all(workers.splice(0).map((worker) => worker.close()));
}

const statementRows = () =>
  db.pool.any(sql.type(z.object({ to: z.string(), since: z.string(), status: z.string() }))`
    SELECT payload->>'to' AS to, payload->>'since' AS since, status FROM outbox WHERE kind = 'send-statement-email' ORDER BY 1, 2`);

async function allStatementRowsSent(): Promise<void> {
  const deadline = Date.now() + 15_000;
  while ((await statementRows()).some((row) => row.status !== 'sent')) {
    if (Date.now() > deadline) throw new Error(`statement emails not all sent: ${JSON.stringify(await statementRows())}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const statementEmailsTo = (actor: Actor, period: { since: Date }) =>
  smtp.messagesTo(emailOf(actor)).filter((message) => message.subject.startsWith('Your statement for') && message.subject.includes(period.since.toLocaleString('en-GB', { month: 'long', year: 'numeric', timeZone: 'UTC' })));

/** The PDF attachment's text as poppler's pdftotext reads it (-layout keeps each row on a line). */
function pdfText(message: CapturedEmail): { filename: string; bytes: Buffer; text: string } {
  const attachments = message.parsed.attachments;
  expect(attachments).toHaveLength(1);
  const [pdf] = attachments;
  if (!pdf) throw new Error('no attachment');
  expect(pdf.contentType).toBe('application/pdf');
  const dir = mkdtempSync(path.join(tmpdir(), 'statement-email-'));
  try {
    const file = path.join(dir, 'statement.pdf');
    writeFileSync(file, pdf.content);
    return { filename: pdf.filename ?? '', bytes: pdf.content, text: execFileSync('pdftotext', ['-layout', file, '-'], { encoding: 'utf8' }) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

let alice: Actor;
let bob: Actor;
let carol: Actor;
let frozen: Actor;
let unverified: Actor;
let aliceAccount: bigint;
let bobAccount: bigint;

beforeAll(async () => {
  db = await createTestDatabase();
  smtp = await startTestSmtpServer();
  redis = createRedis(TEST_REDIS_URL);
  ledger = new LedgerService({ pool: db.pool });
  const banker = await createUser(db.pool, { role: 'banker' });
  [alice, bob, carol, frozen, unverified] = await Promise.all([
    createUser(db.pool),
    createUser(db.pool),
    createUser(db.pool),
    createUser(db.pool),
    createUser(db.pool, { verified: false }),
  ]);
  aliceAccount = (await ledger.openAccount(alice, { currency: 'USD' })).id;
  bobAccount = (await ledger.openAccount(bob, { currency: 'USD' })).id;
  await ledger.deposit(alice, { accountId: aliceAccount, amount: 150_00n, idempotencyKey: idemKey(), memo: 'salary' });
  await ledger.transfer(alice, { fromAccountId: aliceAccount, toAccountId: bobAccount, amount: 40_25n, currency: 'USD', idempotencyKey: idemKey(), memo: 'rent' });
  // Alice's second account, in euros; Carol's only account is closed; the frozen one still gets its statement.
  await ledger.openAccount(alice, { currency: 'EUR' });
  const carolAccount = (await ledger.openAccount(carol, { currency: 'USD' })).id;
  await ledger.closeAccount(carol, carolAccount);
  const frozenAccount = (await ledger.openAccount(frozen, { currency: 'GBP' })).id;
  await ledger.freezeAccount(banker, { accountId: frozenAccount, reason: 'statement test' });
  await ledger.openAccount(unverified, { currency: 'USD' });
});

afterEach(async () => {
  await stopWorkers();
});

afterAll(async () => {
  await stopWorkers();
  for (const name of queueNames) {
    for (const queue of [new Queue(name, { connection: redis }), new Queue(statementQueueName(name), { connection: redis })]) {
      await queue.obliterate({ force: true }).catch(() => undefined);
      await queue.close().catch(() => undefined);
    }
  }
  redis?.disconnect();
  await smtp?.close();
  await db?.drop();
});

describe('monthly statement emails', () => {
  it('on the 1st, three workers send exactly one statement per open account of a confirmed owner, the PDF attached', async () => {
    const queueName = `test-statements-${run}-a`;
    // Three workers start on the 1st at 00:00:30 UTC: each upserts the schedule and finds the month not done.
    const three = await startWorkers(3, queueName, new Date(thisMonth.until.getTime() + 30_000));
    await Promise.all(three.map((worker) => worker.statementsReady));

    // Alice (two accounts), Bob and the frozen account: four emails. Carol's account is closed; the unverified owner gets none.
    await smtp.waitFor(() => smtp.messages.filter((message) => message.subject.startsWith('Your statement for')).length >= 4, 30_000);
    // The three run the month again at once: every account is claimed already, nothing more is queued.
    const again = await Promise.all(three.map((worker) => worker.runStatements()));
    expect(again.map((result) => result.emails)).toEqual([0, 0, 0]);
    expect(again.map((result) => result.accounts)).toEqual([4, 4, 4]);

    const since = thisMonth.since.toISOString();
    const expected = [
      { to: emailOf(alice), since, status: 'sent' },
      { to: emailOf(alice), since, status: 'sent' },
      { to: emailOf(bob), since, status: 'sent' },
      { to: emailOf(frozen), since, status: 'sent' },
    ].sort((a, b) => a.to.localeCompare(b.to));
    // Each row is marked sent right after SMTP accepted it.
    await allStatementRowsSent();
    expect(await statementRows()).toEqual(expected);
    expect(statementEmailsTo(alice, thisMonth)).toHaveLength(2);
    expect(statementEmailsTo(bob, thisMonth)).toHaveLength(1);
    expect(statementEmailsTo(frozen, thisMonth)).toHaveLength(1);
    expect(smtp.messagesTo(emailOf(carol))).toHaveLength(0);
    expect(smtp.messagesTo(emailOf(unverified))).toHaveLength(0);

    // Alice's USD statement: the PDF GetStatement would answer for the month, byte for byte, and its text shows the totals.
    const usd = statementEmailsTo(alice, thisMonth).find((message) => message.text.includes(`account ${aliceAccount} (USD)`));
    if (!usd) throw new Error('no USD statement email for alice');
    const pdf = pdfText(usd);
    expect(pdf.filename).toBe(`statement-${aliceAccount}-${day(thisMonth.since)}-${day(thisMonth.until)}.pdf`);
    const statement = await ledger.getStatement(alice, { accountId: aliceAccount, ...thisMonth });
    expect(Buffer.from(await statementPdf(statement, { bankName: STATEMENT_BANK_NAME })).equals(pdf.bytes)).toBe(true);
    expect(pdf.text).toContain(`Statement of account ${aliceAccount} (USD), holder ${alice.username}`);
    expect(pdf.text).toContain('Opening balance: 0.00 USD');
    expect(pdf.text).toContain('Total in: 150.00 USD');
    expect(pdf.text).toContain('Total out: -40.25 USD');
    expect(pdf.text).toContain('Closing balance: 109.75 USD');
    expect(pdf.text).toMatch(/rent\s.*-40\.25\s+109\.75/);
    expect(usd.text).toContain('Closing balance: 109.75 USD');

    const bobPdf = pdfText(statementEmailsTo(bob, thisMonth)[0] as CapturedEmail);
    expect(bobPdf.text).toContain(`Statement of account ${bobAccount} (USD), holder ${bob.username}`);
    expect(bobPdf.text).toContain('Total in: 40.25 USD');
    expect(bobPdf.text).toContain('Closing balance: 40.25 USD');

    // The schedule in Redis: one, at 00:00 UTC on the 1st, however many workers upserted it.
    const queue = new Queue(statementQueueName(queueName), { connection: redis });
    try {
      const schedulers = await queue.getJobSchedulers();
      expect(schedulers.map((scheduler) => [scheduler.key, scheduler.pattern, scheduler.tz])).toEqual([[MONTHLY_STATEMENTS_JOB, MONTHLY_STATEMENTS_CRON, 'UTC']]);
      const next = new Date(schedulers[0]?.next ?? 0);
      expect([next.getUTCDate(), next.getUTCHours(), next.getUTCMinutes()]).toEqual([1, 0, 0]);
    } finally {
      await queue.close();
    }
  });

  it('runs of one month racing each other (three workers at once, beside the catch-up job) still queue one email per account', async () => {
    const queueName = `test-statements-${run}-c`;
    const monthAfterNext = { since: nextMonth.until, until: new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 3, 1)) };
    const three = await startWorkers(3, queueName, new Date(monthAfterNext.until.getTime() + 1_000));
    const results = await Promise.all(three.map((worker) => worker.runStatements()));
    await Promise.all(three.map((worker) => worker.statementsReady));
    // Between them (and the catch-up job, which may have taken some first) no account was claimed twice.
    expect(results.reduce((sum, result) => sum + result.emails, 0)).toBeLessThanOrEqual(4);
    await smtp.waitFor(() => statementEmailsTo(alice, monthAfterNext).length >= 2 && statementEmailsTo(bob, monthAfterNext).length >= 1 && statementEmailsTo(frozen, monthAfterNext).length >= 1, 30_000);
    await allStatementRowsSent();
    const rows = (await statementRows()).filter((row) => row.since === monthAfterNext.since.toISOString());
    expect(rows.map((row) => row.to)).toEqual([emailOf(alice), emailOf(alice), emailOf(bob), emailOf(frozen)].sort());
    expect([statementEmailsTo(alice, monthAfterNext), statementEmailsTo(bob, monthAfterNext), statementEmailsTo(frozen, monthAfterNext)].map((list) => list.length)).toEqual([2, 1, 1]);
  });

  it('a worker started on the 5th catches the month before up once; the next worker to start sends nothing', async () => {
    const queueName = `test-statements-${run}-b`;
    // The 5th of the month after next: the month that ended is next month, which no run did yet.
    const fifth = new Date(nextMonth.until.getTime() + 4 * 86_400_000 + 10 * 3_600_000);
    const [first] = await startWorkers(1, queueName, fifth);
    await first?.statementsReady;
    await smtp.waitFor(() => statementEmailsTo(bob, nextMonth).length === 1 && statementEmailsTo(frozen, nextMonth).length === 1 && statementEmailsTo(alice, nextMonth).length === 2, 30_000);
    // A month without entries: the balance carried over, nothing in or out.
    const bobPdf = pdfText(statementEmailsTo(bob, nextMonth)[0] as CapturedEmail);
    expect(bobPdf.text).toContain('Opening balance: 40.25 USD');
    expect(bobPdf.text).toContain('Total in: 0.00 USD');
    expect(bobPdf.text).toContain('Closing balance: 40.25 USD');
    expect(bobPdf.text).toContain('No entries in this period.');
    await allStatementRowsSent();
    await stopWorkers();

    const rowsBefore = await statementRows();
    const [second] = await startWorkers(1, queueName, new Date(fifth.getTime() + 86_400_000));
    await second?.statementsReady;
    // The month is recorded as done: no catch-up job was queued, no email row written.
    const queue = new Queue(statementQueueName(queueName), { connection: redis });
    try {
      expect(await queue.getJobCounts('waiting', 'active', 'prioritized')).toEqual({ waiting: 0, active: 0, prioritized: 0 });
    } finally {
      await queue.close();
    }
    expect(await statementRows()).toEqual(rowsBefore);
    expect(rowsBefore.filter((row) => row.since === nextMonth.since.toISOString())).toHaveLength(4);
  });

  it('a statement email the ledger refuses (not the named owner\'s account) fails at once, without retries, and stays visible', async () => {
    const [worker] = await startWorkers(1, `test-statements-${run}-d`, new Date(thisMonth.until.getTime() + 30_000));
    const id = randomUUID();
    const payload = { to: emailOf(alice), username: alice.username, fullName: 'Alice', accountId: bobAccount.toString(), since: thisMonth.since.toISOString(), until: thisMonth.until.toISOString() };
    await db.pool.query(sql.unsafe`INSERT INTO outbox (id, kind, payload) VALUES (${id}, 'send-statement-email', ${sql.jsonb(payload)})`);
    expect(await worker?.sweep(0)).toBe(1);
    const row = () => db.pool.one(sql.type(z.object({ status: z.string(), attempts: z.number(), last_error: z.string().nullable() }))`SELECT status, attempts, last_error FROM outbox WHERE id = ${id}`);
    const deadline = Date.now() + 15_000;
    while ((await row()).status !== 'failed') {
      if (Date.now() > deadline) throw new Error(`not failed: ${JSON.stringify(await row())}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(await row()).toEqual({ status: 'failed', attempts: 1, last_error: expect.stringContaining('ACCOUNT_NOT_FOUND') });
    expect(smtp.messagesTo(emailOf(alice)).filter((message) => message.text.includes(`account ${bobAccount} `))).toEqual([]);
  });
});
