// After the storm: what the clients were told, held against the database and the inbox.
//   money   every acknowledged key is in idempotency_keys once, naming the transfer it answered;
//           no refused key moved money (and the storm's must-be-refused requests were refused, at
//           least one was, and the poor user's account never moved), nor a key whose only attempt
//           was shed with 503 OVERLOADED; the ledger invariants of DESIGN.md (1-9); no deadlock;
//   emails  every email requested (every outbox row, and the one of each acknowledged sign-up
//           and login) arrived at least once; duplicates are counted, not failed;
//   errors  no 5xx but 503 over HTTP, no INTERNAL/UNKNOWN over gRPC;
//   logins  after the faults, a user can still log in (the outages did not use up the login limits).
import { readFileSync } from 'node:fs';
import { sql, type DatabasePool } from 'slonik';
import { z } from 'zod';
import { waitFor } from '@bank/dev-tools/start/ports';
import { checkLedgerInvariants, deadlockCount } from '../ledger-invariants.ts';
import type { TestSmtpServer } from '../smtp.ts';
import { deliveredOutboxIds } from './emails.ts';
import { OVERLOADED } from './bank-client.ts';
import type { Journal, MoneyOp } from './journal.ts';

export type CheckGroup = 'money' | 'emails' | 'errors' | 'logins' | 'faults' | 'recovery' | 'suite';
export type Check = { group: CheckGroup; name: string; ok: boolean; detail: string };

const list = (items: readonly string[], max = 5) => (items.length > max ? `${items.slice(0, max).join('; ')}; and ${items.length - max} more` : items.join('; '));

/** Deadlocks between samples: pg_stat_database starts from zero again after a crash. */
export class DeadlockCounter {
  #last = 0n;
  #total = 0n;
  async sample(db: DatabasePool): Promise<void> {
    const now = await deadlockCount(db);
    this.#total += now >= this.#last ? now - this.#last : now;
    this.#last = now;
  }
  /** Resets the counting to the value now, before the run's own requests. */
  async baseline(db: DatabasePool): Promise<void> {
    this.#last = await deadlockCount(db);
    this.#total = 0n;
  }
  get total(): bigint {
    return this.#total;
  }
}

async function keyRows(db: DatabasePool, ops: readonly MoneyOp[]): Promise<Map<string, bigint | null>> {
  const rows = await db.any(sql.type(z.object({ username: z.string(), key: z.string(), transfer_id: z.bigint().nullable() }))`
    SELECT k.username, k.key, k.transfer_id
      FROM idempotency_keys k
      JOIN unnest(${sql.array(ops.map((o) => o.username), 'text')}, ${sql.array(ops.map((o) => o.key), 'text')}) AS a(username, key)
        ON a.username = k.username AND a.key = k.key`);
  return new Map(rows.map((r) => [`${r.username}\u0000${r.key}`, r.transfer_id]));
}

/** Transfers (holds included) from or to the accounts, and their balances' sum. */
async function accountMovements(db: DatabasePool, accounts: readonly bigint[]): Promise<{ transfers: number; balance: bigint }> {
  if (accounts.length === 0) return { transfers: 0, balance: 0n };
  const ids = sql.array(accounts.map(String), 'int8');
  const transfers = await db.oneFirst(sql.type(z.object({ n: z.number() }))`
    SELECT count(*)::int AS n FROM transfers WHERE from_account_id = ANY(${ids}) OR to_account_id = ANY(${ids})`);
  const balance = await db.oneFirst(sql.type(z.object({ b: z.bigint() }))`SELECT coalesce(sum(balance), 0)::bigint AS b FROM accounts WHERE id = ANY(${ids})`);
  return { transfers, balance };
}

export async function moneyChecks(db: DatabasePool, journal: Journal, deadlocks: DeadlockCounter, postgresLog: string): Promise<{ checks: Check[]; facts: Record<string, number> }> {
  const acknowledged = journal.money.filter((o) => o.outcome === 'acknowledged');
  const refused = journal.money.filter((o) => o.outcome === 'refused');
  const gaveUp = journal.money.filter((o) => o.outcome === 'gave-up');
  const rows = await keyRows(db, journal.money);
  const id = (o: MoneyOp) => `${o.username}\u0000${o.key}`;

  const wrongAck = acknowledged.filter((o) => rows.get(id(o)) !== o.transferId);
  // A capture or a void answers with its hold: the hold's id is acknowledged again, once per key.
  const newTransfers = acknowledged.filter((o) => o.kind !== 'capture' && o.kind !== 'void').map((o) => o.transferId as bigint);
  const twice = newTransfers.length - new Set(newTransfers.map(String)).size;
  const refusedMoved = refused.filter((o) => (rows.get(id(o)) ?? null) !== null);
  // Shed before any work: a key whose one attempt was answered OVERLOADED never reached the ledger.
  const shed = gaveUp.filter((o) => o.attempts === 1 && o.lastCode === OVERLOADED);
  const shedMoved = shed.filter((o) => (rows.get(id(o)) ?? null) !== null);
  const meantRefused = journal.money.filter((o) => o.mustBeRefused);
  const wronglyAcknowledged = meantRefused.filter((o) => o.outcome === 'acknowledged');
  const untouchable = await accountMovements(db, journal.untouchableAccounts);
  const untouched = untouchable.transfers === 0 && untouchable.balance === 0n;
  const invariants = await checkLedgerInvariants(db, { acknowledged: newTransfers });
  await new Promise((resolve) => setTimeout(resolve, 1_500)); // backends flush their statistics once a second
  await deadlocks.sample(db);
  const loggedDeadlocks = (postgresLog.match(/deadlock detected/g) ?? []).length;

  const byRefusal = new Map<string, number>();
  for (const o of refused) byRefusal.set(o.refusal ?? '?', (byRefusal.get(o.refusal ?? '?') ?? 0) + 1);
  return {
    checks: [
      {
        group: 'money',
        name: 'every acknowledged key present exactly once',
        ok: wrongAck.length === 0 && twice === 0,
        detail:
          `${acknowledged.length} acknowledged (${journal.money.filter((o) => o.outcome === 'acknowledged' && o.attempts > 1).length} after a retry)` +
          (wrongAck.length > 0 ? `; ${wrongAck.length} without their transfer: ${list(wrongAck.map((o) => `${o.kind} ${o.key} -> ${o.transferId} but ${rows.get(id(o)) ?? 'no row'}`))}` : '') +
          (twice > 0 ? `; ${twice} transfer ids acknowledged for two keys` : ''),
      },
      {
        group: 'money',
        name: 'no refused key moved money',
        // Without a refusal the check proves nothing: the storm sends requests the ledger must refuse.
        ok: refused.length > 0 && refusedMoved.length === 0 && shedMoved.length === 0 && wronglyAcknowledged.length === 0 && untouched,
        detail:
          `${refused.length} refused keys checked (${[...byRefusal].map(([code, n]) => `${code} ${n}`).join(', ') || 'none'}; ` +
          `${meantRefused.filter((o) => o.outcome === 'refused').length} of the storm's ${meantRefused.length} must-be-refused requests, the rest given up), ` +
          `${shed.length} keys shed with 503 OVERLOADED on their only attempt` +
          (refused.length === 0 ? '; NO refusal at all: the check proved nothing' : '') +
          (refusedMoved.length > 0 ? `; ${refusedMoved.length} refused but committed: ${list(refusedMoved.map((o) => `${o.kind} ${o.key} (${o.refusal}) -> ${rows.get(id(o))}`))}` : '') +
          (shedMoved.length > 0 ? `; ${shedMoved.length} shed but committed: ${list(shedMoved.map((o) => `${o.kind} ${o.key} -> ${rows.get(id(o))}`))}` : '') +
          (wronglyAcknowledged.length > 0 ? `; ${wronglyAcknowledged.length} must-be-refused requests ACKNOWLEDGED: ${list(wronglyAcknowledged.map((o) => `${o.kind} ${o.key} -> ${o.transferId}`))}` : '') +
          (journal.untouchableAccounts.length === 0
            ? ''
            : untouched
              ? "; the poor user's account: no transfer, balance 0"
              : `; the poor user's account MOVED: ${untouchable.transfers} transfers, balance ${untouchable.balance}`),
      },
      { group: 'money', name: 'ledger invariants 1-9', ok: invariants.length === 0, detail: invariants.length === 0 ? 'all hold' : list(invariants) },
      {
        group: 'money',
        name: 'no deadlocks',
        ok: deadlocks.total === 0n && loggedDeadlocks === 0,
        detail: `pg_stat_database counted ${deadlocks.total}, the server log ${loggedDeadlocks}`,
      },
    ],
    facts: {
      moneyRequests: journal.money.length,
      acknowledged: acknowledged.length,
      refused: refused.length,
      mustBeRefused: meantRefused.length,
      gaveUp: gaveUp.length,
      shedOnFirstAttempt: shed.length,
      gaveUpButCommitted: gaveUp.filter((o) => (rows.get(id(o)) ?? null) !== null).length,
      // The answer was lost while the transfer committed, and the retry got the original back.
      acknowledgedAsReplay: acknowledged.filter((o) => o.replayed).length,
      replayAfterImpatientFirstAttempt: acknowledged.filter((o) => o.replayed && o.impatient).length,
    },
  };
}

export async function emailChecks(
  db: DatabasePool,
  smtp: TestSmtpServer,
  journal: Journal,
  waitMs: number,
): Promise<{ checks: Check[]; facts: Record<string, number>; duplicatesFirstArrivedAt: number[] }> {
  const outbox = async () =>
    db.any(sql.type(z.object({ id: z.string(), kind: z.string(), status: z.string(), last_error: z.string().nullable() }))`
      SELECT id::text, kind, status, last_error FROM outbox`);
  let rows = await outbox();
  const missing = () => {
    const delivered = deliveredOutboxIds(smtp.messages);
    return rows.filter((r) => !delivered.has(r.id));
  };
  await waitFor(async () => {
    rows = await outbox();
    return missing().length === 0;
  }, waitMs, 500);
  const delivered = deliveredOutboxIds(smtp.messages);
  const lost = missing();
  const duplicates = [...delivered.values()].reduce((sum, n) => sum + (n - 1), 0);
  const duplicated = [...delivered].filter(([, n]) => n > 1).length;

  const acknowledged = journal.identity.filter((o) => o.outcome === 'acknowledged');
  const texts = smtp.messages.map((m) => ({ to: m.to, text: m.text }));
  const unanswered = acknowledged.filter((o) =>
    o.kind === 'login'
      ? !texts.some((m) => m.text.includes(`Session: ${o.sessionId}`))
      : !texts.some((m) => m.to.includes(o.email.toLowerCase()) && m.text.includes('/app/verify-email?')),
  );
  return {
    checks: [
      {
        group: 'emails',
        name: 'every requested email delivered at least once',
        ok: lost.length === 0 && unanswered.length === 0,
        detail:
          `${rows.length} requested, ${rows.length - lost.length} delivered, ${duplicates} duplicate deliveries (${duplicated} emails twice or more)` +
          (lost.length > 0 ? `; ${lost.length} never arrived: ${list(lost.map((r) => `${r.kind} ${r.id} (${r.status}${r.last_error ? `: ${r.last_error}` : ''})`))}` : '') +
          (unanswered.length > 0 ? `; ${unanswered.length} acknowledged sign-ups/logins without their email` : ''),
      },
    ],
    duplicatesFirstArrivedAt: [...delivered]
      .filter(([, n]) => n > 1)
      .map(([outboxId]) => Math.min(...smtp.messages.filter((m) => m.messageId?.toLowerCase() === `<${outboxId}@bank.outbox>`).map((m) => m.receivedAt.getTime()))),
    facts: { emailsRequested: rows.length, emailsDelivered: rows.length - lost.length, emailsLost: lost.length, duplicateDeliveries: duplicates, identityAcknowledged: acknowledged.length },
  };
}

export function errorChecks(journal: Journal): Check[] {
  const bad = journal.attempts.filter((a) => a.kind === 'server-error');
  const byLabel = new Map<string, number>();
  for (const a of bad) byLabel.set(a.label, (byLabel.get(a.label) ?? 0) + 1);
  // 503 / UNAVAILABLE is the answer a bank may give under faults and overload (retried on the same
  // key); a shed call (OVERLOADED) is one of them.
  const unavailable = journal.attempts.filter((a) => a.kind === 'unavailable');
  const shed = unavailable.filter((a) => a.code === OVERLOADED).length;
  const allowed = `${unavailable.length} answered 503 / UNAVAILABLE (${shed} of them shed: OVERLOADED)`;
  return [
    {
      group: 'errors',
      name: 'no 5xx but 503, no gRPC INTERNAL/UNKNOWN',
      ok: bad.length === 0,
      detail:
        bad.length === 0
          ? `${journal.attempts.length} attempts, no other 5xx; ${allowed}`
          : `${bad.length} of ${journal.attempts.length} attempts: ${[...byLabel].map(([label, n]) => `${label} ${n}`).join(', ')}; e.g. ${list(bad.map((a) => `${a.op} ${a.detail ?? ''}`), 3)}; ${allowed}`,
    },
  ];
}

export function readLog(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}
