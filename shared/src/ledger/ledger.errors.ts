import {
  AccountAlreadyExists,
  AccountClosed,
  AccountFrozen,
  AccountNotFound,
  AmountOutOfRange,
  CurrencyMismatch,
  type DomainError,
  IdempotencyConflict,
  InsufficientFunds,
  PermissionDenied,
  SameAccount,
} from '../errors/domain-error.ts';

/**
 * The refusals ledger_move() (migration 0004) and ledger_move_batch() (0006) answer with, by
 * name. A refusal is an ordinary answer of the function, not a database error; the same list is
 * in those migrations' headers.
 */
export const LEDGER_REFUSALS = [
  'account_not_found',
  'permission_denied',
  'account_closed',
  'account_frozen',
  'currency_mismatch',
  'insufficient_funds',
  'idempotency_conflict',
  // Only from ledger_move_batch() (0006), where a bigint overflow must not fail the whole batch.
  'amount_out_of_range',
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
  amount_out_of_range: () => new AmountOutOfRange('amount would overflow an account balance'),
};

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
