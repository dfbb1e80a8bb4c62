import { sql, type CommonQueryMethods } from 'slonik';
import { z } from 'zod';
import { AccountClosed, AccountFrozen, AccountNotEmpty, AccountNotFound, type DomainError } from '../errors/domain-error.ts';
import type { Role } from '../auth/actor.ts';
import type { Currency } from './currency.ts';
import { databaseErrorToDomainError, refusalError } from './ledger.errors.ts';
import { accountRow, accountStateRow, batchMoveResultRow, entryRow, moveResultRow, type MoveRow, transferRow } from './ledger.schema.ts';
import type { Account, BalanceAt, Entry, Transfer, TransferResult } from './ledger.types.ts';

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
});

const toEntry = (row: z.infer<typeof entryRow>): Entry => ({
  id: row.id,
  accountId: row.account_id,
  transferId: row.transfer_id,
  amount: row.amount,
  createdAt: row.created_at,
  balanceAfter: row.balance_after,
});

const ACCOUNT_COLUMNS = sql.fragment`id, owner, currency, balance, status, created_at, closed_at`;
const TRANSFER_COLUMNS = sql.fragment`id, from_account_id, to_account_id, amount, currency, kind, initiated_by, created_at`;

export type MoveCommand = {
  actor: string;
  actorRole: Role;
  idempotencyKey: string;
  requestHash: string;
  operation: 'transfer' | 'deposit';
  /** null for a deposit: the currency's funding account pays. */
  fromAccountId: bigint | null;
  toAccountId: bigint;
  amount: bigint;
  /** null for a deposit: the receiving account's currency. */
  currency: Currency | null;
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
};

/** The movement ledger_move() made or replayed; the actor initiated it (keys belong to a user). */
function toTransferResult(row: MoveRow, initiatedBy: string): TransferResult {
  const entry = (id: bigint, accountId: bigint, amount: bigint, balanceAfter: bigint): Entry => ({
    id,
    accountId,
    transferId: row.transfer_id,
    amount,
    createdAt: row.created_at,
    balanceAfter,
  });
  return {
    transfer: {
      id: row.transfer_id,
      fromAccountId: row.from_account_id,
      toAccountId: row.to_account_id,
      amount: row.amount,
      currency: row.currency,
      kind: row.kind,
      initiatedBy,
      createdAt: row.created_at,
    },
    fromEntry: entry(row.from_entry_id, row.from_account_id, -row.amount, row.from_balance),
    toEntry: entry(row.to_entry_id, row.to_account_id, row.amount, row.to_balance),
    fromBalance: row.from_balance,
    toBalance: row.to_balance,
    replayed: row.replayed,
  };
}

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
   * Moves money in one round trip through ledger_move() (migration 0004). A refused movement
   * comes back as a row naming the refusal rather than as a query error, so it does not cost the
   * pool a connection; it is thrown here as its domain error (ledger.errors.ts).
   * @throws AccountNotFound, PermissionDenied, AccountClosed, CurrencyMismatch,
   *   InsufficientFunds, IdempotencyConflict, AmountOutOfRange
   */
  async move(db: CommonQueryMethods, command: MoveCommand): Promise<TransferResult> {
    const row = await mapErrors(() =>
      db.one(sql.type(moveResultRow)`
        SELECT * FROM ledger_move(
          ${command.actor}, ${command.actorRole}, ${command.idempotencyKey}, ${command.requestHash},
          ${command.operation}, ${command.fromAccountId}, ${command.toAccountId}, ${command.amount},
          ${command.currency})`),
    );
    if (row.error_code !== null) throw refusalError(row.error_code, row.error_detail);
    return toTransferResult(row, command.actor);
  },

  /**
   * Moves many money movements in one call and one commit through ledger_move_batch() (migration
   * 0006). Each movement gets its own answer in the order given: its result, or its refusal as a
   * domain error (returned, not thrown, so a refusal never fails its neighbours). Throws when the
   * call itself fails (the whole batch rolled back; nothing moved), e.g. when two movements share
   * an idempotency key.
   */
  async moveBatch(db: CommonQueryMethods, commands: readonly MoveCommand[]): Promise<(TransferResult | DomainError)[]> {
    const column = <T>(pick: (command: MoveCommand) => T) => commands.map(pick);
    const rows = await mapErrors(() =>
      db.any(sql.type(batchMoveResultRow)`
        SELECT * FROM ledger_move_batch(
          ${sql.array(column((c) => c.actor), 'text')}, ${sql.array(column((c) => c.actorRole), 'text')},
          ${sql.array(column((c) => c.idempotencyKey), 'text')}, ${sql.array(column((c) => c.requestHash), 'text')},
          ${sql.array(column((c) => c.operation), 'text')}, ${sql.array(column((c) => c.fromAccountId), 'int8')},
          ${sql.array(column((c) => c.toAccountId), 'int8')}, ${sql.array(column((c) => c.amount), 'int8')},
          ${sql.array(column((c) => c.currency), 'text')})`),
    );
    if (rows.length !== commands.length) throw new Error(`ledger_move_batch answered ${rows.length} rows for ${commands.length} movements`);
    const answers: (TransferResult | DomainError)[] = new Array(commands.length);
    for (const row of rows) {
      const command = commands[row.idx - 1];
      if (!command) throw new Error(`ledger_move_batch answered for movement ${row.idx} of ${commands.length}`);
      answers[row.idx - 1] = row.error_code !== null ? refusalError(row.error_code, row.error_detail) : toTransferResult(row, command.actor);
    }
    return answers;
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
   * Transfers in or out of the account, newest first: one bounded backward scan per direction
   * (transfers_from_account_created_idx, transfers_to_account_created_idx), merged in order.
   */
  async listTransfers(db: CommonQueryMethods, query: HistoryQuery): Promise<Transfer[]> {
    const filter = historyFilter(query, 'transfers');
    const rows = await db.any(sql.type(transferRow)`
      SELECT ${TRANSFER_COLUMNS} FROM (
        (SELECT ${TRANSFER_COLUMNS} FROM transfers WHERE from_account_id = ${query.accountId} AND ${filter}
          ORDER BY created_at DESC, id DESC LIMIT ${query.limit})
        UNION ALL
        (SELECT ${TRANSFER_COLUMNS} FROM transfers WHERE to_account_id = ${query.accountId} AND ${filter}
          ORDER BY created_at DESC, id DESC LIMIT ${query.limit})
      ) t ORDER BY created_at DESC, id DESC LIMIT ${query.limit}`);
    return rows.map(toTransfer);
  },

  /**
   * The balance of an account the viewer may see (its owner, or any banker), as it was at `at`:
   * the balance_after of its last entry at or before `at` in history order, one backward read of
   * entries_account_created_idx however long the history; 0 before its first entry. Null when
   * the account is not one the viewer may see.
   */
  async balanceAt(db: CommonQueryMethods, query: { accountId: bigint; at: Date; viewer: HistoryQuery['viewer'] }): Promise<BalanceAt | null> {
    const row = await db.maybeOne(sql.type(z.object({ id: z.bigint(), currency: accountRow.shape.currency, balance: z.bigint().nullable() }))`
      SELECT a.id, a.currency,
             (SELECT e.balance_after FROM entries e
               WHERE e.account_id = a.id AND e.created_at <= ${sql.timestamp(query.at)}
               ORDER BY e.created_at DESC, e.id DESC LIMIT 1) AS balance
        FROM accounts a
       WHERE a.id = ${query.accountId} AND NOT a.is_system
         AND (a.owner = ${query.viewer.username} OR ${query.viewer.isBanker})`);
    return row ? { accountId: row.id, currency: row.currency, balance: row.balance ?? 0n, at: query.at } : null;
  },

  /** A transfer with the owners of its two accounts (for the visibility check). */
  async findTransfer(db: CommonQueryMethods, id: bigint): Promise<{ transfer: Transfer; fromOwner: string | null; toOwner: string | null } | null> {
    const row = await db.maybeOne(sql.type(
      transferRow.extend({ from_owner: z.string().nullable(), to_owner: z.string().nullable() }),
    )`
      SELECT t.id, t.from_account_id, t.to_account_id, t.amount, t.currency, t.kind, t.initiated_by, t.created_at,
             f.owner AS from_owner, o.owner AS to_owner
        FROM transfers t JOIN accounts f ON f.id = t.from_account_id JOIN accounts o ON o.id = t.to_account_id
       WHERE t.id = ${id}`);
    return row ? { transfer: toTransfer(row), fromOwner: row.from_owner, toOwner: row.to_owner } : null;
  },
};

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
