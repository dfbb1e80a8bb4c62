import { createHash } from 'node:crypto';
import type { DatabasePool } from 'slonik';
import type { Actor } from '../auth/actor.ts';
import {
  AccountNotFound,
  InvalidArgument,
  PermissionDenied,
  SameAccount,
  TransferNotFound,
} from '../errors/domain-error.ts';
import { parseCurrency } from './currency.ts';
import { throwIfAborted, type UseCaseOptions } from '../use-case/use-case-options.ts';
import { auditRepository } from '../audit/audit.repository.ts';
import { MoveBatcher } from './move-batcher.ts';
import { ledgerRepository, type HistoryQuery, type MoveCommand } from './ledger.repository.ts';
import type { Account, BalanceAt, Entry, Page, PageRequest, Transfer, TransferResult } from './ledger.types.ts';
import { parseAmount, parseId } from './money.ts';
import { decodePageToken, encodePageToken, parsePageSize } from './page-token.ts';

export type DepositInput = { accountId: bigint; amount: bigint; idempotencyKey: string };
export type TransferInput = {
  fromAccountId: bigint;
  toAccountId: bigint;
  amount: bigint;
  currency: string;
  idempotencyKey: string;
};
export type HistoryInput = PageRequest & { accountId: bigint };

/** Observes money movements (metrics); optional. */
export type LedgerObserver = {
  moved?(event: { operation: 'transfer' | 'deposit'; currency: string; outcome: string; replayed: boolean }): void;
  /** A group-commit batch of `size` movements went to the database. */
  batched?(size: number): void;
};

/** The most money movements one database call carries by default (LEDGER_BATCH_MAX_SIZE). */
export const DEFAULT_MAX_BATCH_SIZE = 64;

const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;

function parseIdempotencyKey(value: unknown): string {
  if (typeof value !== 'string' || value === '') throw InvalidArgument.field('idempotency_key', 'is required for every money movement');
  if (!IDEMPOTENCY_KEY.test(value)) {
    throw InvalidArgument.field('idempotency_key', 'must be 1 to 255 printable ASCII characters without spaces');
  }
  return value;
}

function requestHash(parts: readonly (string | bigint)[]): string {
  return createHash('sha256').update(parts.join('|')).digest('hex');
}

function parseRange(since: Date | undefined, until: Date | undefined): { since: Date | null; until: Date | null } {
  for (const [field, value] of [['since', since], ['until', until]] as const) {
    if (value !== undefined && Number.isNaN(value.getTime())) throw InvalidArgument.field(field, 'must be a valid timestamp');
  }
  if (since && until && since >= until) throw InvalidArgument.field('until', 'must be later than since');
  return { since: since ?? null, until: until ?? null };
}

/**
 * The ledger's use cases. Every call takes the acting user explicitly and checks ownership:
 * a depositor sees and moves only their own money (someone else's account is "not found");
 * a banker may read any account but never move another user's money. Every method takes
 * UseCaseOptions last and, besides what its doc says, throws the abort reason of an aborted
 * signal (RequestCancelled unless the edge chose another DomainError) before touching the
 * database; Slonik/PostgreSQL errors other than the mapped ones bubble up as they are.
 */
export class LedgerService {
  readonly #pool: DatabasePool;
  readonly #observer: LedgerObserver;
  readonly #batcher: MoveBatcher;

  /** `maxBatchSize` caps how many waiting movements share one database call (group commit). */
  constructor(deps: { pool: DatabasePool; observer?: LedgerObserver; maxBatchSize?: number }) {
    this.#pool = deps.pool;
    this.#observer = deps.observer ?? {};
    const observer = this.#observer;
    this.#batcher = new MoveBatcher({
      pool: deps.pool,
      maxBatchSize: deps.maxBatchSize ?? DEFAULT_MAX_BATCH_SIZE,
      onBatch: (size) => observer.batched?.(size),
    });
  }

  /**
   * Opens an account in a supported currency; one open account per user and currency.
   * @throws InvalidArgument (currency), AccountAlreadyExists
   */
  async openAccount(actor: Actor, input: { currency: string }, options: UseCaseOptions = {}): Promise<Account> {
    const currency = parseCurrency(input.currency);
    throwIfAborted(options.signal);
    return ledgerRepository.insertAccount(this.#pool, actor.username, currency);
  }

  /** @throws InvalidArgument, AccountNotFound (also for an account the actor may not see) */
  async getAccount(actor: Actor, accountId: bigint, options: UseCaseOptions = {}): Promise<Account> {
    const id = parseId(accountId, 'account_id');
    throwIfAborted(options.signal);
    const account = await ledgerRepository.findAccount(this.#pool, id);
    if (!account || (actor.role !== 'banker' && account.owner !== actor.username)) throw new AccountNotFound(id);
    return account;
  }

  /**
   * The actor's accounts (open and closed), oldest first. A banker may name another owner.
   * @throws PermissionDenied when a depositor names another owner
   */
  async listAccounts(actor: Actor, input: { owner?: string } = {}, options: UseCaseOptions = {}): Promise<Account[]> {
    const owner = input.owner || actor.username;
    if (owner !== actor.username && actor.role !== 'banker') throw new PermissionDenied('you may only list your own accounts');
    throwIfAborted(options.signal);
    return ledgerRepository.listAccountsByOwner(this.#pool, owner);
  }

  /**
   * Adds funds to the actor's own account: a transfer from the currency's funding account.
   * @throws InvalidArgument, NonPositiveAmount, AmountOutOfRange, AccountNotFound,
   *   PermissionDenied, AccountClosed, IdempotencyConflict
   */
  async deposit(actor: Actor, input: DepositInput, options: UseCaseOptions = {}): Promise<TransferResult> {
    const accountId = parseId(input.accountId, 'account_id');
    const amount = parseAmount(input.amount);
    const idempotencyKey = parseIdempotencyKey(input.idempotencyKey);
    return this.#move({
      actor: actor.username,
      actorRole: actor.role,
      idempotencyKey,
      requestHash: requestHash(['deposit', accountId, amount]),
      operation: 'deposit',
      fromAccountId: null,
      toAccountId: accountId,
      amount,
      currency: null,
    }, options);
  }

  /**
   * Moves money from the actor's account to another account of the same currency, once per
   * idempotency key: a retry with the same key and request returns the first result.
   * @throws InvalidArgument, NonPositiveAmount, AmountOutOfRange, SameAccount, AccountNotFound,
   *   PermissionDenied, AccountClosed, CurrencyMismatch, InsufficientFunds, IdempotencyConflict
   */
  async transfer(actor: Actor, input: TransferInput, options: UseCaseOptions = {}): Promise<TransferResult> {
    const fromAccountId = parseId(input.fromAccountId, 'from_account_id');
    const toAccountId = parseId(input.toAccountId, 'to_account_id');
    const amount = parseAmount(input.amount);
    const currency = parseCurrency(input.currency);
    const idempotencyKey = parseIdempotencyKey(input.idempotencyKey);
    if (fromAccountId === toAccountId) throw new SameAccount();
    return this.#move({
      actor: actor.username,
      actorRole: actor.role,
      idempotencyKey,
      requestHash: requestHash(['transfer', fromAccountId, toAccountId, amount, currency]),
      operation: 'transfer',
      fromAccountId,
      toAccountId,
      amount,
      currency,
    }, options);
  }

  async #move(command: MoveCommand, options: UseCaseOptions): Promise<TransferResult> {
    // Before the try: a call cancelled before it started is not a money movement to count.
    throwIfAborted(options.signal);
    try {
      const result = await this.#batcher.move(command);
      this.#observer.moved?.({ operation: command.operation, currency: result.transfer.currency, outcome: 'ok', replayed: result.replayed });
      return result;
    } catch (error) {
      // A refusal's DomainError code lowercased is its ledger_move() name (insufficient_funds, ...).
      const code = (error as { code?: unknown }).code;
      this.#observer.moved?.({
        operation: command.operation,
        currency: command.currency ?? 'unknown',
        outcome: typeof code === 'string' ? code.toLowerCase() : 'error',
        replayed: false,
      });
      throw error;
    }
  }

  /**
   * Closes the actor's own account; its balance must be zero. History stays.
   * @throws AccountNotFound, AccountClosed, AccountNotEmpty
   */
  async closeAccount(actor: Actor, accountId: bigint, options: UseCaseOptions = {}): Promise<Account> {
    const id = parseId(accountId, 'account_id');
    const account = await this.getAccount(actor, id, options);
    if (account.owner !== actor.username) throw new PermissionDenied('you may only close your own accounts');
    return ledgerRepository.closeAccount(this.#pool, id, actor.username);
  }

  /** An account's entries, newest first, a page at a time. @throws InvalidArgument, AccountNotFound */
  async listEntries(actor: Actor, input: HistoryInput, options: UseCaseOptions = {}): Promise<Page<Entry>> {
    const query = this.#historyQuery(actor, input, 'entries', options);
    return this.#page(actor, query, await ledgerRepository.listEntries(this.#pool, query), 'entries', options);
  }

  /** Transfers in or out of an account, newest first. @throws InvalidArgument, AccountNotFound */
  async listTransfers(actor: Actor, input: HistoryInput, options: UseCaseOptions = {}): Promise<Page<Transfer>> {
    const query = this.#historyQuery(actor, input, 'transfers', options);
    return this.#page(actor, query, await ledgerRepository.listTransfers(this.#pool, query), 'transfers', options);
  }

  /**
   * Freezes a user account (bankers only): readable, but every money movement in or out is refused
   * with AccountFrozen until it is unfrozen. Writes an `account_frozen` audit event in the same
   * transaction; freezing a frozen account changes nothing and writes nothing.
   * @throws InvalidArgument (account_id, reason), PermissionDenied, AccountNotFound, AccountClosed
   */
  async freezeAccount(actor: Actor, input: { accountId: bigint; reason: string }, options: UseCaseOptions = {}): Promise<Account> {
    return this.#setFrozen(actor, input, true, options);
  }

  /**
   * Unfreezes an account (bankers only), with an `account_unfrozen` audit event; unfreezing an
   * open account changes nothing and writes nothing.
   * @throws InvalidArgument (account_id, reason), PermissionDenied, AccountNotFound, AccountClosed
   */
  async unfreezeAccount(actor: Actor, input: { accountId: bigint; reason: string }, options: UseCaseOptions = {}): Promise<Account> {
    return this.#setFrozen(actor, input, false, options);
  }

  async #setFrozen(actor: Actor, input: { accountId: bigint; reason: string }, frozen: boolean, options: UseCaseOptions): Promise<Account> {
    const accountId = parseId(input.accountId, 'account_id');
    const reason = typeof input.reason === 'string' ? input.reason.trim() : '';
    if (reason.length < 1 || reason.length > 500) throw InvalidArgument.field('reason', 'is required (1 to 500 characters): it is kept in the audit trail');
    if (actor.role !== 'banker') throw new PermissionDenied(`only a banker may ${frozen ? 'freeze' : 'unfreeze'} an account`);
    throwIfAborted(options.signal);
    return this.#pool.transaction(async (tx) => {
      const result = await ledgerRepository.setFrozen(tx, accountId, frozen);
      if (!result) throw new AccountNotFound(accountId);
      if (result.changed) {
        await auditRepository.insert(tx, { actor: actor.username, action: frozen ? 'account_frozen' : 'account_unfrozen', target: `account:${accountId}`, reason });
      }
      return result.account;
    });
  }

  /**
   * The account's balance at an instant (default now), from the balance_after of its last entry at
   * or before it. @throws InvalidArgument (account_id, at), AccountNotFound (also for an account
   * the actor may not see)
   */
  async getBalance(actor: Actor, input: { accountId: bigint; at?: Date | undefined }, options: UseCaseOptions = {}): Promise<BalanceAt> {
    const accountId = parseId(input.accountId, 'account_id');
    if (input.at !== undefined && Number.isNaN(input.at.getTime())) throw InvalidArgument.field('at', 'must be a valid timestamp');
    const at = input.at ?? new Date();
    throwIfAborted(options.signal);
    const found = await ledgerRepository.balanceAt(this.#pool, { accountId, at, viewer: { username: actor.username, isBanker: actor.role === 'banker' } });
    if (!found) throw new AccountNotFound(accountId);
    return found;
  }

  /** @throws InvalidArgument, TransferNotFound (also when neither side is the actor's) */
  async getTransfer(actor: Actor, transferId: bigint, options: UseCaseOptions = {}): Promise<Transfer> {
    const id = parseId(transferId, 'transfer_id');
    throwIfAborted(options.signal);
    const found = await ledgerRepository.findTransfer(this.#pool, id);
    const visible =
      found && (actor.role === 'banker' || found.fromOwner === actor.username || found.toOwner === actor.username);
    if (!visible) throw new TransferNotFound(id);
    return found.transfer;
  }

  /** Validates a history call; the account's visibility is checked by the page's own query. */
  #historyQuery(actor: Actor, input: HistoryInput, kind: string, options: UseCaseOptions): HistoryQuery {
    const pageSize = parsePageSize(input.pageSize);
    const beforeId = decodePageToken(kind, input.pageToken);
    const range = parseRange(input.since, input.until);
    const accountId = parseId(input.accountId, 'account_id');
    throwIfAborted(options.signal);
    // One extra row tells whether another page follows.
    return { accountId, viewer: { username: actor.username, isBanker: actor.role === 'banker' }, beforeId, ...range, limit: pageSize + 1 };
  }

  /**
   * A page of rows, or AccountNotFound when it is empty because the account is not one the actor
   * may see: only an empty page costs a second query, to tell "nothing here" from "not yours".
   */
  async #page<T extends { id: bigint }>(actor: Actor, query: HistoryQuery, rows: T[], kind: string, options: UseCaseOptions): Promise<Page<T>> {
    if (rows.length === 0) await this.getAccount(actor, query.accountId, options);
    const pageSize = query.limit - 1;
    const items = rows.slice(0, pageSize);
    const last = items.at(-1);
    return { items, nextPageToken: rows.length > pageSize && last ? encodePageToken(kind, last.id) : '' };
  }
}
