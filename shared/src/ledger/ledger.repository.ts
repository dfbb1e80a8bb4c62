import { sql, type CommonQueryMethods } from 'slonik';
import { z } from 'zod';
import { AccountClosed, AccountFrozen, AccountNotEmpty, AccountNotFound, type DomainError, isDomainError } from '../errors/domain-error.ts';
import type { Role } from '../auth/actor.ts';
import type { Currency } from './currency.ts';
import { databaseErrorToDomainError, refusalError } from './ledger.errors.ts';
import { accountRow, accountStateRow, entryRow, moveResultRow, type MoveRow, transferRow } from './ledger.schema.ts';
import type { Account, BalanceAt, Entry, Transfer, TransferResult } from './ledger.types.ts';
import type { StatementHold, StatementLine } from './statement.ts';
import { countRow } from '../db/rows.ts';

const clockRow = z.object({ until: z.number() });
const balanceAfterRow = z.object({ balance_after: z.bigint() });
/** A row of a batched read carries its query's 1-based position, `n`. */
const numberedEntryRow = entryRow.extend({ n: z.number() });
const numberedTransferRow = transferRow.extend({ n: z.number() });
const balanceAtRow = z.object({ id: z.bigint(), currency: accountRow.shape.currency, balance: z.bigint().nullable(), held: z.bigint() });
const numberedBalanceAtRow = balanceAtRow.extend({ n: z.number() });
const pendingHoldRow = z.object({
  id: z.bigint(), created_at: z.date(), expires_at: z.date(), amount: z.bigint(),
  memo: z.string().nullable(), reference: z.string().nullable(), counterparty: z.string(),
});
const transferWithOwnersRow = transferRow.extend({ from_owner: z.string().nullable(), to_owner: z.string().nullable() });

const statementLineRow = entryRow.omit({ account_id: true }).extend({
  kind: transferRow.shape.kind,
  memo: z.string().nullable(),
  reference: z.string().nullable(),
  counterparty: z.string(),
});

async function mapErrors<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    throw databaseErrorToDomainError(error) ?? error;
  }
}

const toAccount = (row: z.infer<typeof accountRow>): Account => ({
  id: row.id,
  owner: row.owner,
  currency: row.currency,
  balance: row.balance,
  availableBalance: row.available_balance,
  status: row.status,
  createdAt: row.created_at,
  closedAt: row.closed_at,
});

const toTransfer = (row: z.infer<typeof transferRow>): Transfer => ({
  id: row.id,
  fromAccountId: row.from_account_id,
  toAccountId: row.to_account_id,
  amount: row.amount,
  currency: row.currency,
  kind: row.kind,
  initiatedBy: row.initiated_by,
  createdAt: row.created_at,
  status: row.status,
  capturedAmount: row.captured_amount,
  expiresAt: row.expires_at,
  memo: row.memo,
  reference: row.reference,
  metadata: row.metadata,
  destination: row.destination,
  reversesTransferId: row.reverses_transfer_id,
  refundsTransferId: row.refunds_transfer_id,
});

const toEntry = (row: z.infer<typeof entryRow>): Entry => ({
  id: row.id,
  accountId: row.account_id,
  transferId: row.transfer_id,
  amount: row.amount,
  createdAt: row.created_at,
  balanceAfter: row.balance_after,
});

/**
 * An account as read: available_balance is the balance less its active holds (pending, deadline
 * not passed: an expired hold never counts, swept or not), from transfers_pending_idx.
 */
const ACCOUNT_COLUMNS = sql.fragment`id, owner, currency, balance,
  balance - coalesce((SELECT sum(h.amount) FROM transfers h
                       WHERE h.from_account_id = accounts.id AND h.status = 'pending' AND h.expires_at > now()), 0)::bigint
    AS available_balance,
  status, created_at, closed_at`;
/** A transfer as read: a pending hold past its deadline reads expired, before the sweep marks it. */
const transferColumns = (t: string) => sql.fragment`${sql.identifier([t])}.id, ${sql.identifier([t])}.from_account_id,
  ${sql.identifier([t])}.to_account_id, ${sql.identifier([t])}.amount, ${sql.identifier([t])}.currency, ${sql.identifier([t])}.kind,
  ${sql.identifier([t])}.initiated_by, ${sql.identifier([t])}.created_at,
  CASE WHEN ${sql.identifier([t])}.status = 'pending' AND ${sql.identifier([t])}.expires_at <= now() THEN 'expired'
       ELSE ${sql.identifier([t])}.status END AS status,
  ${sql.identifier([t])}.captured_amount, ${sql.identifier([t])}.expires_at, ${sql.identifier([t])}.memo,
  ${sql.identifier([t])}.reference, ${sql.identifier([t])}.metadata, ${sql.identifier([t])}.destination,
  ${sql.identifier([t])}.reverses_transfer_id, ${sql.identifier([t])}.refunds_transfer_id`;
const TRANSFER_COLUMNS = transferColumns('transfers');

/** What one call of ledger_apply() (migration 0009) does. */
export type MoveOperation = 'transfer' | 'deposit' | 'withdrawal' | 'capture' | 'void' | 'reversal' | 'refund';

export type MoveCommand = {
  actor: string;
  actorRole: Role;
  idempotencyKey: string;
  requestHash: string;
  operation: MoveOperation;
  /** transfer, withdrawal: the paying account. Null otherwise (a deposit's funding account pays). */
  fromAccountId: bigint | null;
  /** transfer, deposit: the receiving account. Null otherwise. */
  toAccountId: bigint | null;
  /** Null for a full capture or refund, and for void and reversal. */
  amount: bigint | null;
  /** transfer: the currency both accounts must have. Null otherwise. */
  currency: Currency | null;
  /** capture, void, reversal, refund: the transfer they act on. */
  targetTransferId: bigint | null;
  /** transfer: place a hold of this many seconds instead of posting. */
  holdTtlSeconds: number | null;
  memo: string | null;
  reference: string | null;
  metadata: Record<string, string>;
  /** withdrawal: the external destination. */
  destination: string | null;
};

/**
 * One page of an account's history. Lists run newest first in (created_at, id) order, the order
 * of the history indexes (migration 0005); created_at is the moving transaction's now(), id
 * breaks ties (one transaction's rows share a created_at).
 */
export type HistoryQuery = {
  accountId: bigint;
  /**
   * Who reads: the page is empty unless the account is a user account this viewer may see (its
   * owner, or any banker). Checked in the page's own statement, so a page costs one round trip.
   */
  viewer: { username: string; isBanker: boolean };
  /**
   * The cursor: the id of the last row of the previous page. The page holds the rows after that
   * row's (created_at, id) position, so no row repeats or is skipped across pages, also while
   * new rows arrive. The cursor's created_at is read from the row itself, exact to the
   * microsecond, which keeps the page token an id (the token format is unchanged).
   */
  beforeId: bigint | null;
  /** Inclusive. */
  since: Date | null;
  /** Exclusive. */
  until: Date | null;
  limit: number;
  /** Transfers only: just those with this reference. */
  reference?: string | null;
};

/** Whose balance, at which instant, read by whom (see balanceAt). */
export type BalanceQuery = { accountId: bigint; at: Date; viewer: HistoryQuery['viewer'] };

/** The operation ledger_apply() made or replayed, as the use cases answer it. */
function toTransferResult(row: MoveRow): TransferResult {
  const entry = (id: bigint | null, accountId: bigint, amount: bigint, balanceAfter: bigint): Entry | null =>
    id === null ? null : { id, accountId, transferId: row.transfer_id, amount, createdAt: row.entries_at ?? row.created_at, balanceAfter };
  // What the entries moved: a capture's captured amount, else the amount.
  const moved = row.captured_amount ?? row.amount;
  return {
    transfer: toTransfer({ ...row, id: row.transfer_id }),
    fromEntry: entry(row.from_entry_id, row.from_account_id, -moved, row.from_balance),
    toEntry: entry(row.to_entry_id, row.to_account_id, moved, row.to_balance),
    fromBalance: row.from_balance,
    toBalance: row.to_balance,
    replayed: row.replayed,
  };
}

/** The limits ledger_apply() checks (null: none). */
export type MoveLimits = { depositMaxAmount: bigint | null; depositDailyLimit: bigint | null; outgoingDailyLimit: bigint | null };

/**
 * Data access for accounts, transfers and entries. User accounts only: the system funding
 * accounts are invisible here except as the counterparty of a deposit. Every method takes the
 * connection first (the pool, or a use case's transaction) and returns domain types. Methods
 * without a @throws line throw only Slonik/PostgreSQL errors.
 */
export const ledgerRepository = {
  /** @throws AccountAlreadyExists when the owner already has an open account in that currency. */
  async insertAccount(db: CommonQueryMethods, owner: string, currency: Currency): Promise<Account> {
    const row = await mapErrors(() =>
      db.one(sql.type(accountRow)`
        INSERT INTO accounts (owner, currency) VALUES (${owner}, ${currency})
        RETURNING ${ACCOUNT_COLUMNS}`),
    );
    return toAccount(row);
  },

  async findAccount(db: CommonQueryMethods, id: bigint): Promise<Account | null> {
    const row = await db.maybeOne(sql.type(accountRow)`
      SELECT ${ACCOUNT_COLUMNS} FROM accounts WHERE id = ${id} AND NOT is_system`);
    return row ? toAccount(row) : null;
  },

  async listAccountsByOwner(db: CommonQueryMethods, owner: string): Promise<Account[]> {
    const rows = await db.any(sql.type(accountRow)`
      SELECT ${ACCOUNT_COLUMNS} FROM accounts WHERE owner = ${owner} ORDER BY id`);
    return rows.map(toAccount);
  },

  /**
   * Runs one money operation in one round trip through ledger_apply() (migration 0009). A refused
   * operation comes back as a row naming the refusal rather than as a query error, so it does not
   * cost the pool a connection; it is thrown here as its domain error (ledger.errors.ts).
   * @throws the operation's refusal (AccountNotFound, InsufficientFunds, LimitExceeded, ...)
   */
  async move(db: CommonQueryMethods, command: MoveCommand, limits: MoveLimits): Promise<TransferResult> {
    const [answer] = await ledgerRepository.moveBatch(db, [command], limits);
    if (answer === undefined) throw new Error('ledger_apply gave no answer');
    if (isDomainError(answer)) throw answer;
    return answer;
  },

  /**
   * Runs many money operations in one call and one commit through ledger_apply(). Each gets its
   * own answer in the order given: its result, or its refusal as a domain error (returned, not
   * thrown, so a refusal never fails its neighbours). Throws when the call itself fails (the whole
   * batch rolled back; nothing moved), e.g. when two operations share an idempotency key.
   */
  async moveBatch(db: CommonQueryMethods, commands: readonly MoveCommand[], limits: MoveLimits): Promise<(TransferResult | DomainError)[]> {
    const column = <T>(pick: (command: MoveCommand) => T) => commands.map(pick);
    const rows = await mapErrors(() =>
      db.any(sql.type(moveResultRow)`
        SELECT * FROM ledger_apply(
          ${sql.array(column((c) => c.actor), 'text')}, ${sql.array(column((c) => c.actorRole), 'text')},
          ${sql.array(column((c) => c.idempotencyKey), 'text')}, ${sql.array(column((c) => c.requestHash), 'text')},
          ${sql.array(column((c) => c.operation), 'text')}, ${sql.array(column((c) => c.fromAccountId), 'int8')},
          ${sql.array(column((c) => c.toAccountId), 'int8')}, ${sql.array(column((c) => c.amount), 'int8')},
          ${sql.array(column((c) => c.currency), 'text')}, ${sql.array(column((c) => c.targetTransferId), 'int8')},
          ${sql.array(column((c) => c.holdTtlSeconds), 'int4')}, ${sql.array(column((c) => c.memo), 'text')},
          ${sql.array(column((c) => c.reference), 'text')},
          ${sql.array(column((c) => (Object.keys(c.metadata).length === 0 ? null : JSON.stringify(c.metadata))), 'jsonb')},
          ${sql.array(column((c) => c.destination), 'text')},
          ${limits.depositMaxAmount}, ${limits.depositDailyLimit}, ${limits.outgoingDailyLimit})`),
    );
    if (rows.length !== commands.length) throw new Error(`ledger_apply answered ${rows.length} rows for ${commands.length} operations`);
    const answers: (TransferResult | DomainError)[] = new Array(commands.length);
    for (const row of rows) {
      if (!commands[row.idx - 1]) throw new Error(`ledger_apply answered for operation ${row.idx} of ${commands.length}`);
      answers[row.idx - 1] = row.error_code !== null ? refusalError(row.error_code, row.error_detail) : toTransferResult(row);
    }
    return answers;
  },

  /**
   * Marks up to `limit` pending holds past their deadline expired (the worker's sweep); returns how
   * many. Never waits on a capture or void in progress (it skips those rows).
   */
  async expireHolds(db: CommonQueryMethods, limit: number): Promise<number> {
    return db.oneFirst(sql.type(countRow)`SELECT ledger_expire_holds(${limit}) AS n`);
  },

  /**
   * Closes an open, empty account of `owner` in one statement; when nothing changed, reads the
   * row to say why.
   * @throws AccountNotFound, AccountClosed, AccountNotEmpty
   */
  async closeAccount(db: CommonQueryMethods, id: bigint, owner: string): Promise<Account> {
    const closed = await db.maybeOne(sql.type(accountRow)`
      UPDATE accounts SET status = 'closed', closed_at = now()
       WHERE id = ${id} AND owner = ${owner} AND status = 'open' AND balance = 0 AND NOT is_system
      RETURNING ${ACCOUNT_COLUMNS}`);
    if (closed) return toAccount(closed);
    const state = await db.maybeOne(sql.type(accountStateRow)`
      SELECT id, owner, status, balance FROM accounts WHERE id = ${id} AND NOT is_system`);
    if (!state || state.owner !== owner) throw new AccountNotFound(id);
    if (state.status === 'closed') throw new AccountClosed(id);
    if (state.status === 'frozen') throw new AccountFrozen(id);
    throw new AccountNotEmpty(id);
  },

  /**
   * Moves a user account between open and frozen, locking its row: `changed` is false when it
   * already had that status. Null when there is no such user account.
   * @throws AccountClosed
   */
  async setFrozen(db: CommonQueryMethods, id: bigint, frozen: boolean): Promise<{ account: Account; changed: boolean } | null> {
    const current = await db.maybeOne(sql.type(accountRow)`
      SELECT ${ACCOUNT_COLUMNS} FROM accounts WHERE id = ${id} AND NOT is_system FOR UPDATE`);
    if (!current) return null;
    if (current.status === 'closed') throw new AccountClosed(id);
    const wanted = frozen ? 'frozen' : 'open';
    if (current.status === wanted) return { account: toAccount(current), changed: false };
    const updated = await db.one(sql.type(accountRow)`
      UPDATE accounts SET status = ${wanted} WHERE id = ${id} RETURNING ${ACCOUNT_COLUMNS}`);
    return { account: toAccount(updated), changed: true };
  },

  /**
   * An account's entries, newest first: one backward scan of entries_account_created_idx that
   * starts at the cursor (or at `until`) and stops after `limit` rows or at `since`, however long
   * the history.
   */
  async listEntries(db: CommonQueryMethods, query: HistoryQuery): Promise<Entry[]> {
    const rows = await db.any(sql.type(entryRow)`
      SELECT id, account_id, transfer_id, amount, created_at, balance_after FROM entries
       WHERE account_id = ${query.accountId} AND ${historyFilter(query, 'entries')}
       ORDER BY created_at DESC, id DESC LIMIT ${query.limit}`);
    return rows.map(toEntry);
  },

  /**
   * Pages of entries for several queries in one statement (the pages a process is asked for at
   * one moment, see LedgerService): each query's page, in the order given, exactly as
   * listEntries gives it. Meant for two or more: for one page listEntries' plain SELECT costs
   * PostgreSQL half of what this statement does (pgbench, c32: 39k/s against 19k/s); from a few
   * pages on, this one costs less a page. Per query, one backward scan of
   * entries_account_created_idx that starts at its upper bound and stops after its `limit` rows
   * or at `since`, however long the history; its viewer check and its cursor's row are read once
   * per query (a one-time filter, a primary-key lookup).
   *
   * Every query has one upper bound, (created_at, id) < (ts, id): with a cursor, the cursor's own
   * position, or (until, 0) when the cursor lies at or after `until` (ids start at 1, so that
   * means created_at < until: from a cursor far above `until`, a token of an unranged page reused
   * with a range, btree would otherwise walk every row in between); without one, (until, 0), or
   * ('infinity', 0) without `until`. A cursor that names no entry gives an empty page.
   */
  async listEntriesMany(db: CommonQueryMethods, queries: readonly HistoryQuery[]): Promise<Entry[][]> {
    if (queries.length === 0) return [];
    const rows = await db.any(sql.type(numberedEntryRow)`
      SELECT q.n::int AS n, e.id, e.account_id, e.transfer_id, e.amount, e.created_at, e.balance_after
        FROM ${historyBatch(queries, 'entries')}
       CROSS JOIN LATERAL (
         SELECT x.id, x.account_id, x.transfer_id, x.amount, x.created_at, x.balance_after FROM entries x
          WHERE x.account_id = q.account_id AND ${batchedPageFilter('x')}
          ORDER BY x.created_at DESC, x.id DESC LIMIT q.lim
       ) e
       ORDER BY q.n, e.created_at DESC, e.id DESC`);
    // The ORDER BY sorts only the rows returned (at most each query's limit), never the history.
    return perQuery(queries.length, rows, toEntry);
  },

  /**
   * Transfers in or out of the account, newest first: one bounded backward scan per direction
   * (transfers_from_account_created_idx, transfers_to_account_created_idx), merged in order.
   */
  async listTransfers(db: CommonQueryMethods, query: HistoryQuery): Promise<Transfer[]> {
    const filter = !query.reference
      ? historyFilter(query, 'transfers')
      : sql.fragment`reference = ${query.reference} AND ${historyFilter(query, 'transfers')}`;
    const rows = await db.any(sql.type(transferRow)`
      SELECT * FROM (
        (SELECT ${TRANSFER_COLUMNS} FROM transfers WHERE from_account_id = ${query.accountId} AND ${filter}
          ORDER BY created_at DESC, id DESC LIMIT ${query.limit})
        UNION ALL
        (SELECT ${TRANSFER_COLUMNS} FROM transfers WHERE to_account_id = ${query.accountId} AND ${filter}
          ORDER BY created_at DESC, id DESC LIMIT ${query.limit})
      ) t ORDER BY created_at DESC, id DESC LIMIT ${query.limit}`);
    return rows.map(toTransfer);
  },

  /**
   * Pages of transfers for several queries without `reference` in one statement (see
   * listEntriesMany): each query's page, in the order given, exactly as listTransfers gives it,
   * with the same two bounded backward scans per query (one per direction, merged), under one
   * upper bound per query as listEntriesMany folds it; meant for two or more, as listEntriesMany
   * is. A query with `reference` is refused here: its pages use the reference indexes,
   * which one statement for all cannot.
   */
  async listTransfersMany(db: CommonQueryMethods, queries: readonly HistoryQuery[]): Promise<Transfer[][]> {
    if (queries.some((q) => q.reference)) throw new Error('listTransfersMany: a query with a reference is read by listTransfers');
    if (queries.length === 0) return [];
    const side = (direction: 'from_account_id' | 'to_account_id') => sql.fragment`
      (SELECT ${TRANSFER_COLUMNS} FROM transfers
        WHERE ${sql.identifier(['transfers', direction])} = q.account_id AND ${batchedPageFilter('transfers')}
        ORDER BY transfers.created_at DESC, transfers.id DESC LIMIT q.lim)`;
    const rows = await db.any(sql.type(numberedTransferRow)`
      SELECT q.n::int AS n, t.*
        FROM ${historyBatch(queries, 'transfers')}
       CROSS JOIN LATERAL (
         SELECT * FROM (${side('from_account_id')} UNION ALL ${side('to_account_id')}) u
          ORDER BY u.created_at DESC, u.id DESC LIMIT q.lim
       ) t
       ORDER BY q.n, t.created_at DESC, t.id DESC`);
    return perQuery(queries.length, rows, toTransfer);
  },

  /**
   * The balance of an account the viewer may see (its owner, or any banker), as it was at `at`:
   * the balance_after of its last entry at or before `at` in history order, one backward read of
   * entries_account_created_idx however long the history; 0 before its first entry. Null when
   * the account is not one the viewer may see.
   */
  async balanceAt(db: CommonQueryMethods, query: BalanceQuery): Promise<BalanceAt | null> {
    const at = sql.timestamp(query.at);
    const row = await db.maybeOne(sql.type(balanceAtRow)`
      SELECT a.id, a.currency,
             (SELECT e.balance_after FROM entries e
               WHERE e.account_id = a.id AND e.created_at <= ${at}
               ORDER BY e.created_at DESC, e.id DESC LIMIT 1) AS balance,
             -- Holds active at that instant: placed by then, deadline after it, not settled by then
             -- (a hold lives at most 30 days, which bounds the scan of transfers_holds_idx).
             (SELECT coalesce(sum(h.amount), 0)::bigint FROM transfers h
               WHERE h.from_account_id = a.id AND h.expires_at IS NOT NULL
                 AND h.created_at <= ${at} AND h.created_at > ${at}::timestamptz - interval '30 days'
                 AND h.expires_at > ${at} AND (h.resolved_at IS NULL OR h.resolved_at > ${at})) AS held
        FROM accounts a
       WHERE a.id = ${query.accountId} AND NOT a.is_system
         AND (a.owner = ${query.viewer.username} OR ${query.viewer.isBanker})`);
    if (!row) return null;
    const balance = row.balance ?? 0n;
    return { accountId: row.id, currency: row.currency, balance, availableBalance: balance - row.held, at: query.at };
  },

  /**
   * balanceAt for several queries in one statement (the balances a process is asked for at one
   * moment, see LedgerService.getBalance): each query's answer, in the order given, exactly as
   * balanceAt gives it, with the same two reads per query. Meant for two or more: for one,
   * balanceAt's plain SELECT costs PostgreSQL less.
   */
  async balancesAt(db: CommonQueryMethods, queries: readonly BalanceQuery[]): Promise<(BalanceAt | null)[]> {
    if (queries.length === 0) return [];
    const column = <T>(pick: (q: BalanceQuery) => T) => queries.map(pick);
    const rows = await db.any(sql.type(numberedBalanceAtRow)`
      SELECT q.n::int AS n, a.id, a.currency,
             (SELECT e.balance_after FROM entries e
               WHERE e.account_id = a.id AND e.created_at <= q.at
               ORDER BY e.created_at DESC, e.id DESC LIMIT 1) AS balance,
             (SELECT coalesce(sum(h.amount), 0)::bigint FROM transfers h
               WHERE h.from_account_id = a.id AND h.expires_at IS NOT NULL
                 AND h.created_at <= q.at AND h.created_at > q.at - interval '30 days'
                 AND h.expires_at > q.at AND (h.resolved_at IS NULL OR h.resolved_at > q.at)) AS held
        FROM unnest(${sql.array(column((q) => q.accountId), 'int8')}, ${sql.array(column((q) => q.at.toISOString()), 'timestamptz')},
                    ${sql.array(column((q) => q.viewer.username), 'text')}, ${sql.array(column((q) => q.viewer.isBanker), 'bool')})
             WITH ORDINALITY AS q (account_id, at, viewer, banker, n)
        JOIN accounts a ON a.id = q.account_id AND NOT a.is_system AND (a.owner = q.viewer OR q.banker)`);
    return perQuery(queries.length, rows, (row): BalanceAt => {
      const balance = row.balance ?? 0n;
      return { accountId: row.id, currency: row.currency, balance, availableBalance: balance - row.held, at: queries[row.n - 1]!.at };
    }).map(([answer]) => answer ?? null);
  },

  /** The balance_after of the account's last entry before `before` (0 before its first). */
  /**
   * The database's clock as an exclusive upper bound: its current millisecond plus one, so every
   * entry already committed (created_at has microseconds, a JS Date only milliseconds) falls
   * before it. The database's clock, not this process's: created_at is taken from it.
   */
  async clockUntil(db: CommonQueryMethods): Promise<Date> {
    const row = await db.one(sql.type(clockRow)`
      SELECT (extract(epoch FROM date_trunc('milliseconds', clock_timestamp())) * 1000)::float8 + 1 AS until`);
    return new Date(row.until);
  },

  async balanceBefore(db: CommonQueryMethods, accountId: bigint, before: Date): Promise<bigint> {
    const row = await db.maybeOne(sql.type(balanceAfterRow)`
      SELECT balance_after FROM entries
       WHERE account_id = ${accountId} AND created_at < ${sql.timestamp(before)}
       ORDER BY created_at DESC, id DESC LIMIT 1`);
    return row?.balance_after ?? 0n;
  },

  /**
   * Up to `limit` of the account's entries in [since, until), oldest first, after the entry
   * `afterId` (null: from the start): one forward scan of entries_account_created_idx per page.
   * Each with its transfer's kind, memo and reference, and the counterparty (the other account's
   * owner, "bank" for a system account).
   */
  async statementLines(
    db: CommonQueryMethods,
    query: { accountId: bigint; since: Date; until: Date; afterId: bigint | null; limit: number },
  ): Promise<StatementLine[]> {
    const after = query.afterId === null
      ? sql.fragment`TRUE`
      : sql.fragment`(e.created_at, e.id) > (SELECT c.created_at, c.id FROM entries c WHERE c.id = ${query.afterId})`;
    const rows = await db.any(sql.type(statementLineRow)`
      SELECT e.id, e.transfer_id, e.created_at, e.amount, e.balance_after, t.kind, t.memo, t.reference,
             CASE WHEN o.is_system THEN 'bank' ELSE o.owner END AS counterparty
        FROM entries e
        JOIN transfers t ON t.id = e.transfer_id
        JOIN accounts o ON o.id = CASE WHEN t.from_account_id = e.account_id THEN t.to_account_id ELSE t.from_account_id END
       WHERE e.account_id = ${query.accountId}
         AND e.created_at >= ${sql.timestamp(query.since)} AND e.created_at < ${sql.timestamp(query.until)} AND ${after}
       ORDER BY e.created_at, e.id LIMIT ${query.limit}`);
    return rows.map((row) => ({
      entryId: row.id,
      transferId: row.transfer_id,
      postedAt: row.created_at,
      kind: row.kind,
      counterparty: row.counterparty,
      memo: row.memo,
      reference: row.reference,
      amount: row.amount,
      balanceAfter: row.balance_after,
    }));
  },

  /**
   * Holds placed on the account that were still pending at `at` (placed by then, deadline after
   * it, not settled by then), oldest first; a hold lives at most 30 days, which bounds the scan.
   */
  async holdsPendingAt(db: CommonQueryMethods, accountId: bigint, at: Date): Promise<StatementHold[]> {
    const instant = sql.timestamp(at);
    const rows = await db.any(sql.type(pendingHoldRow)`
      SELECT h.id, h.created_at, h.expires_at, h.amount, h.memo, h.reference,
             CASE WHEN o.is_system THEN 'bank' ELSE o.owner END AS counterparty
        FROM transfers h JOIN accounts o ON o.id = h.to_account_id
       WHERE h.from_account_id = ${accountId} AND h.expires_at IS NOT NULL
         AND h.created_at < ${instant} AND h.created_at > ${instant}::timestamptz - interval '30 days'
         AND h.expires_at > ${instant} AND (h.resolved_at IS NULL OR h.resolved_at > ${instant})
       ORDER BY h.created_at, h.id`);
    return rows.map((row) => ({
      transferId: row.id,
      createdAt: row.created_at,
      expiresAt: row.expires_at,
      counterparty: row.counterparty,
      memo: row.memo,
      reference: row.reference,
      amount: row.amount,
    }));
  },

  /** A transfer with the owners of its two accounts (for the visibility check). */
  async findTransfer(db: CommonQueryMethods, id: bigint): Promise<{ transfer: Transfer; fromOwner: string | null; toOwner: string | null } | null> {
    const row = await db.maybeOne(sql.type(transferWithOwnersRow)`
      SELECT ${transferColumns('t')}, f.owner AS from_owner, o.owner AS to_owner
        FROM transfers t JOIN accounts f ON f.id = t.from_account_id JOIN accounts o ON o.id = t.to_account_id
       WHERE t.id = ${id}`);
    return row ? { transfer: toTransfer(row), fromOwner: row.from_owner, toOwner: row.to_owner } : null;
  },
};

/** The rows of a batched read, each carrying its query's 1-based `n`, as one list per query, in order. */
function perQuery<R extends { n: number }, T>(count: number, rows: readonly R[], map: (row: R) => T): T[][] {
  const lists: T[][] = Array.from({ length: count }, () => []);
  for (const row of rows) lists[row.n - 1]!.push(map(row));
  return lists;
}

/**
 * The queries of a batched history read as rows q (account_id, viewer, banker, since, until,
 * before_id, lim, n: n their 1-based order), each with its one upper bound b (ts, id): see
 * listEntriesMany. A cursor that names no row of `table` gives no bound, hence an empty page.
 */
function historyBatch(queries: readonly HistoryQuery[], table: 'entries' | 'transfers') {
  const column = <T>(pick: (q: HistoryQuery) => T) => queries.map(pick);
  return sql.fragment`unnest(${sql.array(column((q) => q.accountId), 'int8')}, ${sql.array(column((q) => q.viewer.username), 'text')},
                    ${sql.array(column((q) => q.viewer.isBanker), 'bool')}, ${sql.array(column((q) => q.since?.toISOString() ?? null), 'timestamptz')},
                    ${sql.array(column((q) => q.until?.toISOString() ?? null), 'timestamptz')}, ${sql.array(column((q) => q.beforeId), 'int8')},
                    ${sql.array(column((q) => q.limit), 'int4')})
             WITH ORDINALITY AS q (account_id, viewer, banker, since, until, before_id, lim, n)
       CROSS JOIN LATERAL (
         SELECT coalesce(q.until, 'infinity') AS ts, 0::bigint AS id WHERE q.before_id IS NULL
         UNION ALL
         SELECT LEAST(c.created_at, coalesce(q.until, 'infinity')),
                CASE WHEN c.created_at < coalesce(q.until, 'infinity') THEN c.id ELSE 0 END
           FROM ${sql.identifier([table])} c WHERE c.id = q.before_id
       ) b`;
}

/**
 * A batched page's conditions on the history rows of `alias` beside historyBatch's q and b: the
 * viewer may see the account (a one-time filter per query), then since and the upper bound, both
 * conditions of the history index.
 */
function batchedPageFilter(alias: string) {
  const column = (name: string) => sql.identifier([alias, name]);
  return sql.fragment`EXISTS (SELECT 1 FROM accounts v WHERE v.id = q.account_id AND NOT v.is_system AND (v.owner = q.viewer OR q.banker))
            AND ${column('created_at')} >= coalesce(q.since, '-infinity') AND (${column('created_at')}, ${column('id')}) < (b.ts, b.id)`;
}

/**
 * A history page's bounds on (created_at, id), each an index condition of the history indexes, so
 * the scan starts at its upper bound and ends at `since`; nothing is read only to be filtered away.
 * `table` is where the cursor's row lives. The cursor's bound is read in the same statement (an
 * initplan on the primary key); a cursor naming no row gives an empty page.
 */
function historyFilter(query: HistoryQuery, table: 'entries' | 'transfers') {
  // An initplan evaluated once per statement (a one-time filter), not a per-row condition.
  const conditions = [
    sql.fragment`EXISTS (SELECT 1 FROM accounts v WHERE v.id = ${query.accountId} AND NOT v.is_system
      AND (v.owner = ${query.viewer.username} OR ${query.viewer.isBanker}))`,
  ];
  if (query.since) conditions.push(sql.fragment`created_at >= ${sql.timestamp(query.since)}`);
  if (query.beforeId !== null) {
    // With a cursor and `until` both, they are folded into one upper bound: (until, 0) when the
    // cursor lies at or after `until` (ids start at 1, so that means created_at < until), else the
    // cursor. Given two upper bounds on created_at, btree positions the scan with one and checks
    // the other on every row: from a cursor far above `until` (a token of an unranged page reused
    // with a range) it walked every row in between.
    const bound = query.until
      ? sql.fragment`LEAST(c.created_at, ${sql.timestamp(query.until)}),
          CASE WHEN c.created_at < ${sql.timestamp(query.until)} THEN c.id ELSE 0 END`
      : sql.fragment`c.created_at, c.id`;
    conditions.push(sql.fragment`(created_at, id) < (
      SELECT ${bound} FROM ${sql.identifier([table])} c WHERE c.id = ${query.beforeId})`);
  } else if (query.until) {
    conditions.push(sql.fragment`created_at < ${sql.timestamp(query.until)}`);
  }
  return sql.join(conditions, sql.fragment` AND `);
}
