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
import { groupWhileInFlight } from '../db/group-while-in-flight.ts';
import { MoveBatcher } from './move-batcher.ts';
import { ledgerRepository, type BalanceQuery, type HistoryQuery, type MoveCommand, type MoveOperation } from './ledger.repository.ts';
import type { Account, BalanceAt, Entry, Page, PageRequest, Transfer, TransferReferences, TransferResult } from './ledger.types.ts';
import { parseAmount, parseId } from './money.ts';
import { decodePageToken, encodePageToken, parsePageSize } from './page-token.ts';
import { STATEMENT_MAX_ENTRIES, startOfMonthUtc, type Statement, type StatementLine } from './statement.ts';

/** Entries read per round trip while building a statement. */
const STATEMENT_PAGE_SIZE = 1_000;

/** memo, reference and metadata a movement may carry (all optional). */
export type ReferencesInput = {
  memo?: string | undefined;
  reference?: string | undefined;
  metadata?: Readonly<Record<string, string>> | undefined;
};
export type DepositInput = { accountId: bigint; amount: bigint; idempotencyKey: string } & ReferencesInput;
export type TransferInput = {
  fromAccountId: bigint;
  toAccountId: bigint;
  amount: bigint;
  currency: string;
  idempotencyKey: string;
  /** Place a hold (a pending transfer) instead of moving the money now. */
  hold?: { ttlSeconds: number } | undefined;
} & ReferencesInput;
export type WithdrawInput = { accountId: bigint; amount: bigint; destination: string; idempotencyKey: string } & ReferencesInput;
/** `amount` absent: capture all that is held. */
export type CaptureInput = { transferId: bigint; amount?: bigint | undefined; idempotencyKey: string };
export type VoidInput = { transferId: bigint; idempotencyKey: string };
export type ReverseInput = { transferId: bigint; memo: string; idempotencyKey: string };
/** `amount` absent: refund all that is left to refund. */
export type RefundInput = { transferId: bigint; amount?: bigint | undefined; idempotencyKey: string } & ReferencesInput;
/** What a use case says about a movement; the rest of the MoveCommand defaults to null. */
type MoveFields = Partial<MoveCommand> & Pick<MoveCommand, 'idempotencyKey' | 'requestHash' | 'operation' | 'amount'>;
export type HistoryInput = PageRequest & { accountId: bigint };
export type ListTransfersInput = HistoryInput & { reference?: string | undefined };

/**
 * The limits every money movement is checked against inside its own database call (in minor units,
 * per currency): a single self-service deposit, a user's self-service deposits per rolling 24 hours,
 * and an account's outgoing transfers, holds and withdrawals per rolling 24 hours.
 */
export type LedgerLimits = { depositMaxAmount: bigint; depositDailyLimit: bigint; outgoingDailyLimit: bigint };

/** Sensible defaults (README): 10,000.00, 25,000.00 and 50,000.00 in a two-decimal currency. */
export const DEFAULT_LIMITS: LedgerLimits = {
  depositMaxAmount: 1_000_000n,
  depositDailyLimit: 2_500_000n,
  outgoingDailyLimit: 5_000_000n,
};

/** The longest a hold may live: 30 days. */
export const MAX_HOLD_TTL_SECONDS = 2_592_000;

/** Observes money movements (metrics); optional. */
export type LedgerObserver = {
  moved?(event: { operation: MoveOperation; currency: string; outcome: string; replayed: boolean }): void;
  /** A group-commit batch of `size` movements went to the database. */
  batched?(size: number): void;
  /** The database answered a batch of `size` movements `seconds` after it was sent (or it failed). */
  batchDone?(size: number, seconds: number): void;
};

/** The most money movements one database call carries by default (LEDGER_BATCH_MAX_SIZE). */
export const DEFAULT_MAX_BATCH_SIZE = 64;
/** The most history pages (or balances) one statement reads (see LedgerService.listEntries). */
export const MAX_PAGES_PER_READ = 32;

const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;

function parseIdempotencyKey(value: unknown): string {
  if (typeof value !== 'string' || value === '') throw InvalidArgument.field('idempotency_key', 'is required for every money movement');
  if (!IDEMPOTENCY_KEY.test(value)) {
    throw InvalidArgument.field('idempotency_key', 'must be 1 to 255 printable ASCII characters without spaces');
  }
  return value;
}

/**
 * The fingerprint of a money request, stored with its idempotency key. `extra` (references, a
 * hold) joins only when given, so a plain transfer or deposit hashes as it always did and a retry
 * that spans an upgrade is still recognised.
 */
function requestHash(parts: readonly (string | bigint)[], extra?: Record<string, unknown>): string {
  const hash = createHash('sha256').update(parts.join('|'));
  const given = extra && Object.entries(extra).filter(([, value]) => value !== null && value !== undefined && !(typeof value === 'object' && Object.keys(value).length === 0));
  if (given && given.length > 0) hash.update(`|${JSON.stringify(Object.fromEntries(given), (_, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))}`);
  return hash.digest('hex');
}

const PRINTABLE = /^[^\p{Cc}\p{Cs}]*$/u;

function optionalText(value: unknown, field: string, max: number): string | null {
  if (value === undefined || value === null || value === '') return null;
  if (typeof value !== 'string') throw InvalidArgument.field(field, 'must be a string');
  if ([...value].length > max) throw InvalidArgument.field(field, `must be at most ${max} characters`);
  if (!PRINTABLE.test(value)) throw InvalidArgument.field(field, 'must not contain control characters');
  return value;
}

/** memo (<= 140), reference (<= 64), metadata (<= 16 keys; keys 1..40, values <= 256 characters). */
function parseReferences(input: ReferencesInput): TransferReferences {
  const memo = optionalText(input.memo, 'memo', 140);
  const reference = optionalText(input.reference, 'reference', 64);
  const metadata: Record<string, string> = {};
  const given = input.metadata ?? {};
  if (typeof given !== 'object' || Array.isArray(given)) throw InvalidArgument.field('metadata', 'must be a map of strings');
  const keys = Object.keys(given).sort();
  if (keys.length > 16) throw InvalidArgument.field('metadata', 'must have at most 16 keys');
  for (const key of keys) {
    const value = given[key];
    if (key.length < 1 || [...key].length > 40 || !PRINTABLE.test(key)) {
      throw InvalidArgument.field('metadata', 'keys must be 1 to 40 characters without control characters');
    }
    if (typeof value !== 'string' || [...value].length > 256 || !PRINTABLE.test(value)) {
      throw InvalidArgument.field(`metadata.${key}`, 'must be a string of at most 256 characters without control characters');
    }
    metadata[key] = value;
  }
  return { memo, reference, metadata };
}


const DESTINATION = /^[\x21-\x7e](?:[\x20-\x7e]{0,62}[\x21-\x7e])?$/;

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
  readonly #entryPages: (query: HistoryQuery) => Promise<Entry[]>;
  readonly #transferPages: (query: HistoryQuery) => Promise<Transfer[]>;
  readonly #balances: (query: BalanceQuery) => Promise<BalanceAt | null>;

  /**
   * `maxBatchSize` caps how many waiting movements share one database call (group commit);
   * `queueLimit` how many may wait for the next one (more are refused with Overloaded; default
   * no cap); `limits` default to DEFAULT_LIMITS.
   */
  constructor(deps: { pool: DatabasePool; observer?: LedgerObserver; maxBatchSize?: number; queueLimit?: number; limits?: LedgerLimits }) {
    this.#pool = deps.pool;
    this.#observer = deps.observer ?? {};
    const observer = this.#observer;
    this.#batcher = new MoveBatcher({
      pool: deps.pool,
      maxBatchSize: deps.maxBatchSize ?? DEFAULT_MAX_BATCH_SIZE,
      ...(deps.queueLimit !== undefined ? { queueLimit: deps.queueLimit } : {}),
      limits: deps.limits ?? DEFAULT_LIMITS,
      onBatch: (size) => observer.batched?.(size),
      onBatchDone: (size, seconds) => observer.batchDone?.(size, seconds),
    });
    // Reads asked for while one of their kind is in flight go together as the next (see
    // listEntries); a read alone keeps its plain SELECT, which costs PostgreSQL less for one.
    const together = <Q, A>(one: (db: DatabasePool, query: Q) => Promise<A>, many: (db: DatabasePool, queries: readonly Q[]) => Promise<A[]>) =>
      groupWhileInFlight(async (queries: readonly Q[]) => (queries.length === 1 ? [await one(deps.pool, queries[0]!)] : many(deps.pool, queries)), {
        maxGroup: MAX_PAGES_PER_READ,
      });
    this.#entryPages = together(ledgerRepository.listEntries, ledgerRepository.listEntriesMany);
    this.#transferPages = together(ledgerRepository.listTransfers, ledgerRepository.listTransfersMany);
    this.#balances = together(ledgerRepository.balanceAt, ledgerRepository.balancesAt);
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
   * Adds funds to an account: a transfer from the currency's funding account. A depositor adds to
   * their own account, within DEPOSIT_MAX_AMOUNT per deposit and DEPOSIT_DAILY_LIMIT per rolling
   * day; a banker credits any user's account at the counter, uncapped, with a `memo` that is kept
   * in the audit trail.
   * @throws InvalidArgument, NonPositiveAmount, AmountOutOfRange, AccountNotFound, AccountClosed,
   *   AccountFrozen, LimitExceeded, IdempotencyConflict
   */
  async deposit(actor: Actor, input: DepositInput, options: UseCaseOptions = {}): Promise<TransferResult> {
    const accountId = parseId(input.accountId, 'account_id');
    const amount = parseAmount(input.amount);
    const refs = parseReferences(input);
    const idempotencyKey = parseIdempotencyKey(input.idempotencyKey);
    if (actor.role === 'banker' && refs.memo === null) {
      throw InvalidArgument.field('memo', "is required for a banker's credit: it is kept in the audit trail");
    }
    return this.#move(actor, {
      idempotencyKey,
      requestHash: requestHash(['deposit', accountId, amount], { ...refs }),
      operation: 'deposit',
      fromAccountId: null,
      toAccountId: accountId,
      amount,
      currency: null,
      ...refs,
    }, options);
  }

  /**
   * Moves money from the actor's account to another account of the same currency, once per
   * idempotency key: a retry with the same key and request returns the first result. With `hold`
   * it only reserves the amount (a pending transfer) until captured, voided or expired.
   * @throws InvalidArgument, NonPositiveAmount, AmountOutOfRange, SameAccount, AccountNotFound,
   *   PermissionDenied, AccountClosed, AccountFrozen, CurrencyMismatch, InsufficientFunds,
   *   LimitExceeded, IdempotencyConflict
   */
  async transfer(actor: Actor, input: TransferInput, options: UseCaseOptions = {}): Promise<TransferResult> {
    const fromAccountId = parseId(input.fromAccountId, 'from_account_id');
    const toAccountId = parseId(input.toAccountId, 'to_account_id');
    const amount = parseAmount(input.amount);
    const currency = parseCurrency(input.currency);
    const refs = parseReferences(input);
    let holdTtlSeconds: number | null = null;
    if (input.hold !== undefined) {
      const ttl = input.hold.ttlSeconds;
      if (!Number.isInteger(ttl) || ttl < 1 || ttl > MAX_HOLD_TTL_SECONDS) {
        throw InvalidArgument.field('hold.ttl_seconds', `must be a whole number of seconds from 1 to ${MAX_HOLD_TTL_SECONDS}`);
      }
      holdTtlSeconds = ttl;
    }
    const idempotencyKey = parseIdempotencyKey(input.idempotencyKey);
    if (fromAccountId === toAccountId) throw new SameAccount();
    return this.#move(actor, {
      idempotencyKey,
      requestHash: requestHash(['transfer', fromAccountId, toAccountId, amount, currency], { ...refs, holdTtlSeconds }),
      operation: 'transfer',
      fromAccountId,
      toAccountId,
      amount,
      currency,
      holdTtlSeconds,
      ...refs,
    }, options);
  }

  /**
   * Sends money out of the bank from the actor's account to an external destination: it moves to
   * the currency's settlement account. Counts against OUTGOING_DAILY_LIMIT.
   * @throws InvalidArgument, NonPositiveAmount, AmountOutOfRange, AccountNotFound, PermissionDenied,
   *   AccountClosed, AccountFrozen, InsufficientFunds, LimitExceeded, IdempotencyConflict
   */
  async withdraw(actor: Actor, input: WithdrawInput, options: UseCaseOptions = {}): Promise<TransferResult> {
    const accountId = parseId(input.accountId, 'account_id');
    const amount = parseAmount(input.amount);
    const destination = typeof input.destination === 'string' ? input.destination : '';
    if (!DESTINATION.test(destination)) {
      throw InvalidArgument.field('destination', 'is required: 1 to 64 printable ASCII characters, no space at either end (an IBAN or another external reference)');
    }
    const refs = parseReferences(input);
    const idempotencyKey = parseIdempotencyKey(input.idempotencyKey);
    return this.#move(actor, {
      idempotencyKey,
      requestHash: requestHash(['withdrawal', accountId, amount, destination], { ...refs }),
      operation: 'withdrawal',
      fromAccountId: accountId,
      toAccountId: null,
      amount,
      currency: null,
      destination,
      ...refs,
    }, options);
  }

  /**
   * Captures a pending hold (its sender or a banker): `amount` (default: all of it) moves to the
   * receiver, the rest of the reservation is released.
   * @throws InvalidArgument, NonPositiveAmount, AmountOutOfRange (more than held), TransferNotFound,
   *   PermissionDenied, TransferNotPending, HoldExpired, AccountClosed, AccountFrozen,
   *   IdempotencyConflict
   */
  async captureTransfer(actor: Actor, input: CaptureInput, options: UseCaseOptions = {}): Promise<TransferResult> {
    const transferId = parseId(input.transferId, 'transfer_id');
    const amount = input.amount === undefined ? null : parseAmount(input.amount);
    const idempotencyKey = parseIdempotencyKey(input.idempotencyKey);
    return this.#move(actor, {
      idempotencyKey,
      requestHash: requestHash(['capture', transferId, amount ?? 'all']),
      operation: 'capture',
      targetTransferId: transferId,
      amount,
    }, options);
  }

  /**
   * Voids a pending hold (its sender or a banker): the reservation is released, nothing moves.
   * Allowed on frozen accounts: it only releases the sender's own reservation.
   * @throws InvalidArgument, TransferNotFound, PermissionDenied, TransferNotPending, HoldExpired,
   *   IdempotencyConflict
   */
  async voidTransfer(actor: Actor, input: VoidInput, options: UseCaseOptions = {}): Promise<TransferResult> {
    const transferId = parseId(input.transferId, 'transfer_id');
    const idempotencyKey = parseIdempotencyKey(input.idempotencyKey);
    return this.#move(actor, {
      idempotencyKey,
      requestHash: requestHash(['void', transferId]),
      operation: 'void',
      targetTransferId: transferId,
      amount: null,
    }, options);
  }

  /**
   * Reverses a posted movement (bankers only, with a memo kept in the audit trail): a compensating
   * transfer of what it moved (less any refunds) back to where it came from, at most one per
   * transfer. Allowed on frozen accounts; refused when it would overdraw.
   * @throws InvalidArgument, PermissionDenied, TransferNotFound, TransferNotReversible,
   *   TransferAlreadyReversed, AccountClosed, InsufficientFunds, IdempotencyConflict. Never
   *   AmountOutOfRange, though ledger_apply() checks every movement for overflow: what it credits
   *   comes out of another account of the same currency, and per currency the user and settlement
   *   accounts together hold exactly what the funding account lacks, which deposits keep at most
   *   2^63 - 1 (one that would take it further is refused with AmountOutOfRange).
   */
  async reverseTransfer(actor: Actor, input: ReverseInput, options: UseCaseOptions = {}): Promise<TransferResult> {
    const transferId = parseId(input.transferId, 'transfer_id');
    const memo = optionalText(typeof input.memo === 'string' ? input.memo.trim() : input.memo, 'memo', 140);
    if (memo === null) throw InvalidArgument.field('memo', 'is required for a reversal: it is kept in the audit trail');
    const idempotencyKey = parseIdempotencyKey(input.idempotencyKey);
    if (actor.role !== 'banker') throw new PermissionDenied('only a banker may reverse a transfer');
    return this.#move(actor, {
      idempotencyKey,
      requestHash: requestHash(['reversal', transferId, memo]),
      operation: 'reversal',
      targetTransferId: transferId,
      amount: null,
      memo,
    }, options);
  }

  /**
   * Refunds a posted transfer (its receiver): `amount` (default: all that is left) goes back to the
   * sender; the refunds of a transfer never sum to more than it moved.
   * @throws InvalidArgument, NonPositiveAmount, AmountOutOfRange, TransferNotFound, PermissionDenied,
   *   TransferNotRefundable, RefundExceedsTransfer, AccountClosed, AccountFrozen, InsufficientFunds,
   *   IdempotencyConflict
   */
  async refundTransfer(actor: Actor, input: RefundInput, options: UseCaseOptions = {}): Promise<TransferResult> {
    const transferId = parseId(input.transferId, 'transfer_id');
    const amount = input.amount === undefined ? null : parseAmount(input.amount);
    const refs = parseReferences(input);
    const idempotencyKey = parseIdempotencyKey(input.idempotencyKey);
    return this.#move(actor, {
      idempotencyKey,
      requestHash: requestHash(['refund', transferId, amount ?? 'all'], { ...refs }),
      operation: 'refund',
      targetTransferId: transferId,
      amount,
      ...refs,
    }, options);
  }

  async #move(actor: Actor, fields: MoveFields, options: UseCaseOptions): Promise<TransferResult> {
    // Before the try: a call cancelled before it started is not a money movement to count.
    throwIfAborted(options.signal);
    const command: MoveCommand = {
      actor: actor.username,
      actorRole: actor.role,
      fromAccountId: null,
      toAccountId: null,
      currency: null,
      targetTransferId: null,
      holdTtlSeconds: null,
      memo: null,
      reference: null,
      metadata: {},
      destination: null,
      ...fields,
    };
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
   * Closes the actor's own account; its balance must be zero and it must not be frozen. History stays.
   * @throws InvalidArgument, AccountNotFound, PermissionDenied (a banker, on another user's account),
   *   AccountClosed, AccountFrozen, AccountNotEmpty
   */
  async closeAccount(actor: Actor, accountId: bigint, options: UseCaseOptions = {}): Promise<Account> {
    const id = parseId(accountId, 'account_id');
    const account = await this.getAccount(actor, id, options);
    if (account.owner !== actor.username) throw new PermissionDenied('you may only close your own accounts');
    return ledgerRepository.closeAccount(this.#pool, id, actor.username);
  }

  /**
   * An account's entries, newest first, a page at a time. The pages this process is asked for
   * while one read of them is in flight go to the database together, as the next read (one
   * statement, at most MAX_PAGES_PER_READ pages), each page exactly what it would be alone: under
   * load a page costs a share of one round trip instead of one of its own. The first page asked
   * for when none is in flight leaves at once. A read that fails as a whole (the database
   * unreachable, the pool overloaded) fails every page it carried; nothing in it can fail one
   * page alone (a page the viewer may not see is empty, then AccountNotFound, as before).
   * @throws InvalidArgument, AccountNotFound
   */
  async listEntries(actor: Actor, input: HistoryInput, options: UseCaseOptions = {}): Promise<Page<Entry>> {
    const query = this.#historyQuery(actor, input, 'entries', options);
    return this.#page(actor, query, await this.#entryPages(query), 'entries', options);
  }

  /**
   * Transfers in or out of an account, newest first; with `reference`, only those carrying it.
   * @throws InvalidArgument, AccountNotFound
   */
  async listTransfers(actor: Actor, input: ListTransfersInput, options: UseCaseOptions = {}): Promise<Page<Transfer>> {
    const reference = optionalText(input.reference, 'reference', 64);
    const query = { ...this.#historyQuery(actor, input, 'transfers', options), reference };
    // Read with the pages asked for meanwhile, as entries are (see listEntries); a page of one
    // reference alone, by the reference indexes.
    const rows = reference ? await ledgerRepository.listTransfers(this.#pool, query) : await this.#transferPages(query);
    return this.#page(actor, query, rows, 'transfers', options);
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
    // Read with the balances asked for meanwhile, as history pages are (see listEntries).
    const found = await this.#balances({ accountId, at, viewer: { username: actor.username, isBanker: actor.role === 'banker' } });
    if (!found) throw new AccountNotFound(accountId);
    return found;
  }

  /**
   * The account's statement for [since, until) (default: the current calendar month so far, UTC):
   * opening balance, every entry oldest first, the holds pending at `until`, closing balance and
   * totals. Read a page of entries at a time; a period with more than STATEMENT_MAX_ENTRIES is
   * refused. @throws InvalidArgument (account_id, since, until, too many entries), AccountNotFound
   * (also for an account the actor may not see)
   */
  async getStatement(
    actor: Actor,
    input: { accountId: bigint; since?: Date | undefined; until?: Date | undefined },
    options: UseCaseOptions = {},
  ): Promise<Statement> {
    const accountId = parseId(input.accountId, 'account_id');
    // Without `until`: everything posted so far, by the database's clock (see clockUntil).
    const now = input.until === undefined || input.since === undefined ? await ledgerRepository.clockUntil(this.#pool) : new Date();
    const until = input.until ?? now;
    const since = input.since ?? startOfMonthUtc(until < now ? until : now);
    const range = parseRange(since, until);
    const account = await this.getAccount(actor, accountId, options);
    const period = { since: range.since ?? since, until: range.until ?? until };
    const openingBalance = await ledgerRepository.balanceBefore(this.#pool, accountId, period.since);
    const lines: StatementLine[] = [];
    for (let afterId: bigint | null = null; ;) {
      throwIfAborted(options.signal);
      const page = await ledgerRepository.statementLines(this.#pool, { accountId, ...period, afterId, limit: STATEMENT_PAGE_SIZE });
      lines.push(...page);
      if (lines.length > STATEMENT_MAX_ENTRIES) {
        throw InvalidArgument.field('since', `the period holds more than ${STATEMENT_MAX_ENTRIES} entries; ask for a shorter one`);
      }
      const last = page.at(-1);
      if (!last || page.length < STATEMENT_PAGE_SIZE) break;
      afterId = last.entryId;
    }
    const pendingHolds = await ledgerRepository.holdsPendingAt(this.#pool, accountId, period.until);
    let totalIn = 0n;
    let totalOut = 0n;
    for (const line of lines) {
      if (line.amount > 0n) totalIn += line.amount;
      else totalOut += line.amount;
    }
    return {
      account: { id: account.id, owner: account.owner, currency: account.currency },
      ...period,
      openingBalance,
      closingBalance: lines.at(-1)?.balanceAfter ?? openingBalance,
      totalIn,
      totalOut,
      lines,
      pendingHolds,
    };
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
    return { accountId, viewer: { username: actor.username, isBanker: actor.role === 'banker' }, beforeId, ...range, limit: pageSize + 1, reference: null };
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
