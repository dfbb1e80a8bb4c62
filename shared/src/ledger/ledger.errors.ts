import {
  AccountAlreadyExists,
  AccountClosed,
  AccountFrozen,
  AccountNotFound,
  AmountOutOfRange,
  CurrencyMismatch,
  type DomainError,
  HoldExpired,
  IdempotencyConflict,
  InsufficientFunds,
  LimitExceeded,
  type LimitName,
  PermissionDenied,
  RefundExceedsTransfer,
  SameAccount,
  TransferAlreadyReversed,
  TransferNotFound,
  TransferNotPending,
  TransferNotRefundable,
  TransferNotReversible,
} from '../errors/domain-error.ts';

/**
 * The refusals ledger_apply() (migration 0009; before it ledger_move() and ledger_move_batch())
 * answers with, by name. A refusal is an ordinary answer of the function, not a database error;
 * the same list, with each detail's format, is in that migration's header.
 */
export const LEDGER_REFUSALS = [
  'account_not_found',
  'permission_denied',
  'account_closed',
  'account_frozen',
  'currency_mismatch',
  'insufficient_funds',
  'idempotency_conflict',
  // A bigint overflow must not fail the whole batch.
  'amount_out_of_range',
  'transfer_not_found',
  'hold_expired',
  'limit_exceeded',
  'transfer_not_pending',
  'transfer_already_reversed',
  'transfer_not_reversible',
  'transfer_not_refundable',
  'refund_exceeds_transfer',
] as const;
export type LedgerRefusal = (typeof LEDGER_REFUSALS)[number];

/**
 * The one translation from a refusal to its domain error. `detail` is ledger_move()'s
 * error_detail: an account id, or for currency_mismatch the sentence naming the currencies. A
 * Record over every refusal, so a name added to LEDGER_REFUSALS does not compile until mapped.
 */
const REFUSAL_ERRORS: Record<LedgerRefusal, (detail: string) => DomainError> = {
  account_not_found: (id) => new AccountNotFound(id),
  permission_denied: (id) => new PermissionDenied(`you may not move money out of or into account ${id}`),
  account_closed: (id) => new AccountClosed(id),
  account_frozen: (id) => new AccountFrozen(id),
  currency_mismatch: (message) => new CurrencyMismatch(message),
  insufficient_funds: (id) => new InsufficientFunds(id),
  idempotency_conflict: () => new IdempotencyConflict(),
  amount_out_of_range: (sentence) => new AmountOutOfRange(sentence || 'amount would overflow an account balance'),
  transfer_not_found: (id) => new TransferNotFound(id),
  hold_expired: (id) => new HoldExpired(id),
  limit_exceeded: (detail) => {
    const [limit, remaining] = splitDetail(detail);
    return new LimitExceeded(limit as LimitName, BigInt(remaining));
  },
  transfer_not_pending: (detail) => new TransferNotPending(...splitDetail(detail)),
  transfer_already_reversed: (id) => new TransferAlreadyReversed(id),
  transfer_not_reversible: (detail) => new TransferNotReversible(...splitDetail(detail)),
  transfer_not_refundable: (detail) => new TransferNotRefundable(...splitDetail(detail)),
  refund_exceeds_transfer: (detail) => {
    const [id, remaining] = splitDetail(detail);
    return new RefundExceedsTransfer(id, BigInt(remaining));
  },
};

/** '<first>:<rest>' (the rest may hold colons). */
function splitDetail(detail: string): [string, string] {
  const at = detail.indexOf(':');
  return at < 0 ? [detail, ''] : [detail.slice(0, at), detail.slice(at + 1)];
}

export function refusalError(refusal: LedgerRefusal, detail: string): DomainError {
  return REFUSAL_ERRORS[refusal](detail);
}

type PgLikeError = { code?: string; detail?: string; constraint?: string | null };

/**
 * Turns a database error into the domain error it stands for, when it is one: a bigint overflow,
 * or a constraint that backstops a rule the code normally checks first (by constraint name).
 * Returns undefined for anything else (a real fault, left to bubble up as an internal error).
 */
export function databaseErrorToDomainError(error: unknown): DomainError | undefined {
  const e = (error ?? {}) as PgLikeError;
  // numeric_value_out_of_range: a balance would overflow bigint.
  if (e.code === '22003') return new AmountOutOfRange('amount would overflow an account balance');
  switch (e.constraint) {
    case 'accounts_balance_nonnegative':
      return new InsufficientFunds(e.detail ?? '?');
    case 'accounts_owner_currency_open_key':
      return new AccountAlreadyExists('this currency');
    case 'transfers_distinct_accounts':
      return new SameAccount();
    case 'transfers_amount_positive':
      return new AmountOutOfRange('amount must be greater than zero');
  }
  return undefined;
}
