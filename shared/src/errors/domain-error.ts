/**
 * One error hierarchy for the whole service. Every error a use case throws on purpose is a
 * DomainError with a stable `code`; the edges (HTTP middleware, gRPC interceptor) map codes to
 * protocol statuses in one table each. Anything else is an internal error.
 */
export type ErrorCode =
  | 'INVALID_ARGUMENT'
  | 'UNAUTHENTICATED'
  | 'PERMISSION_DENIED'
  | 'NOT_FOUND'
  | 'ACCOUNT_NOT_FOUND'
  | 'TRANSFER_NOT_FOUND'
  | 'USER_NOT_FOUND'
  | 'ALREADY_EXISTS'
  | 'ACCOUNT_ALREADY_EXISTS'
  | 'USERNAME_TAKEN'
  | 'EMAIL_TAKEN'
  | 'FAILED_PRECONDITION'
  | 'INSUFFICIENT_FUNDS'
  | 'CURRENCY_MISMATCH'
  | 'ACCOUNT_CLOSED'
  | 'ACCOUNT_FROZEN'
  | 'ACCOUNT_NOT_EMPTY'
  | 'SAME_ACCOUNT'
  | 'AMOUNT_OUT_OF_RANGE'
  | 'INVALID_AMOUNT'
  | 'IDEMPOTENCY_CONFLICT'
  | 'EMAIL_NOT_VERIFIED'
  | 'LOGIN_NOT_APPROVED'
  | 'RATE_LIMITED'
  | 'UNAVAILABLE'
  | 'OVERLOADED'
  | 'PAYLOAD_TOO_LARGE'
  | 'UNSUPPORTED_MEDIA_TYPE'
  | 'METHOD_NOT_ALLOWED'
  | 'CANCELLED'
  | 'DEADLINE_EXCEEDED'
  | 'LIMIT_EXCEEDED'
  | 'TRANSFER_NOT_PENDING'
  | 'HOLD_EXPIRED'
  | 'TRANSFER_ALREADY_REVERSED'
  | 'TRANSFER_NOT_REVERSIBLE'
  | 'TRANSFER_NOT_REFUNDABLE'
  | 'REFUND_EXCEEDS_TRANSFER';

/** One offending input field, named the way the API names it (snake_case path). */
export type FieldViolation = { field: string; description: string };

export class DomainError extends Error {
  readonly code: ErrorCode;
  readonly fieldViolations: readonly FieldViolation[];

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; fieldViolations?: readonly FieldViolation[] }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.fieldViolations = options?.fieldViolations ?? [];
  }
}

export class InvalidArgument extends DomainError {
  constructor(fieldViolations: readonly FieldViolation[], options?: { cause?: unknown }) {
    const message = fieldViolations.map((v) => `${v.field}: ${v.description}`).join('; ') || 'invalid argument';
    super('INVALID_ARGUMENT', message, { ...options, fieldViolations });
  }

  static field(field: string, description: string): InvalidArgument {
    return new InvalidArgument([{ field, description }]);
  }
}

export class Unauthenticated extends DomainError {
  constructor(message = 'authentication required', options?: { cause?: unknown }) {
    super('UNAUTHENTICATED', message, options);
  }
}

export class PermissionDenied extends DomainError {
  constructor(message = 'permission denied') {
    super('PERMISSION_DENIED', message);
  }
}

export class AccountNotFound extends DomainError {
  constructor(accountId: bigint | string) {
    super('ACCOUNT_NOT_FOUND', `account ${String(accountId)} not found`);
  }
}

export class TransferNotFound extends DomainError {
  constructor(transferId: bigint | string) {
    super('TRANSFER_NOT_FOUND', `transfer ${String(transferId)} not found`);
  }
}

export class AccountAlreadyExists extends DomainError {
  constructor(currency: string) {
    super('ACCOUNT_ALREADY_EXISTS', `an open ${currency} account already exists for this user`);
  }
}

export class InsufficientFunds extends DomainError {
  constructor(accountId: bigint | string) {
    super('INSUFFICIENT_FUNDS', `account ${String(accountId)} has insufficient funds`);
  }
}

export class CurrencyMismatch extends DomainError {
  constructor(message: string) {
    super('CURRENCY_MISMATCH', message);
  }
}

export class AccountClosed extends DomainError {
  constructor(accountId: bigint | string) {
    super('ACCOUNT_CLOSED', `account ${String(accountId)} is closed`);
  }
}

/** A banker froze the account: it can be read, but no money moves in or out until it is unfrozen. */
export class AccountFrozen extends DomainError {
  constructor(accountId: bigint | string) {
    super('ACCOUNT_FROZEN', `account ${String(accountId)} is frozen`);
  }
}

export class AccountNotEmpty extends DomainError {
  constructor(accountId: bigint | string) {
    super('ACCOUNT_NOT_EMPTY', `account ${String(accountId)} has a non-zero balance and cannot be closed`);
  }
}

export class SameAccount extends DomainError {
  constructor() {
    super('SAME_ACCOUNT', 'from_account_id and to_account_id must differ', {
      fieldViolations: [{ field: 'to_account_id', description: 'must differ from from_account_id' }],
    });
  }
}

export class AmountOutOfRange extends DomainError {
  constructor(message: string, field = 'amount') {
    super('AMOUNT_OUT_OF_RANGE', message, { fieldViolations: [{ field, description: message }] });
  }
}

export class NonPositiveAmount extends DomainError {
  constructor(amount: bigint, field = 'amount') {
    const description = amount === 0n ? 'must be greater than zero (got 0)' : `must be greater than zero (got a negative amount)`;
    super('INVALID_AMOUNT', `${field}: ${description}`, { fieldViolations: [{ field, description }] });
  }
}

export class IdempotencyConflict extends DomainError {
  constructor() {
    super('IDEMPOTENCY_CONFLICT', 'this idempotency key was already used with a different request');
  }
}

export class Unavailable extends DomainError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('UNAVAILABLE', message, options);
  }
}

/**
 * Load shedding: the process (or its database pool, or the ledger's queue) already has as much
 * work waiting as it may, so this call is refused before it started anything (no query sent, no
 * money moved). An Unavailable with its own code, so operators can tell shedding from an outage;
 * the edges answer 503 / UNAVAILABLE with Retry-After / retry info.
 */
export class Overloaded extends Unavailable {
  override readonly code = 'OVERLOADED';
  readonly retryAfterSeconds = 1;
}

// --- money model (issue 11) ---

/** The limits a movement can exceed (env DEPOSIT_MAX_AMOUNT, DEPOSIT_DAILY_LIMIT, OUTGOING_DAILY_LIMIT). */
export type LimitName = 'deposit_max_amount' | 'deposit_daily_limit' | 'outgoing_daily_limit';

/**
 * A movement above a limit. `remaining` is what the limit still allows now (minor units; for
 * deposit_max_amount the cap itself); the edges send `limit` and `remaining` (a decimal string)
 * as problem fields and as gRPC ErrorInfo metadata.
 */
export class LimitExceeded extends DomainError {
  readonly limit: LimitName;
  readonly remaining: bigint;
  constructor(limit: LimitName, remaining: bigint) {
    const message = limit === 'deposit_max_amount'
      ? `a single deposit may be at most ${remaining} minor units`
      : `the ${limit.replaceAll('_', ' ')} allows ${remaining} more minor units in the last 24 hours`;
    super('LIMIT_EXCEEDED', message);
    this.limit = limit;
    this.remaining = remaining < 0n ? 0n : remaining;
  }
}

/** Capture or void of a transfer that is not (or no longer) a pending hold. */
export class TransferNotPending extends DomainError {
  constructor(transferId: bigint | string, status: string) {
    super('TRANSFER_NOT_PENDING', `transfer ${String(transferId)} is not a pending hold (it is ${status})`);
  }
}

/** Capture of a hold whose time ran out: it is expired now, and its reservation released. */
export class HoldExpired extends DomainError {
  constructor(transferId: bigint | string) {
    super('HOLD_EXPIRED', `the hold of transfer ${String(transferId)} has expired`);
  }
}

export class TransferAlreadyReversed extends DomainError {
  constructor(transferId: bigint | string) {
    super('TRANSFER_ALREADY_REVERSED', `transfer ${String(transferId)} was already reversed`);
  }
}

/** A reversal of something that moved no money (a hold not captured) or of a reversal. */
export class TransferNotReversible extends DomainError {
  constructor(transferId: bigint | string, why: string) {
    super('TRANSFER_NOT_REVERSIBLE', `transfer ${String(transferId)} cannot be reversed: ${why}`);
  }
}

/** A refund of something other than a posted transfer between users, or of a reversed one. */
export class TransferNotRefundable extends DomainError {
  constructor(transferId: bigint | string, why: string) {
    super('TRANSFER_NOT_REFUNDABLE', `transfer ${String(transferId)} cannot be refunded: ${why}`);
  }
}

/** Refunds of a transfer would sum to more than it moved; `remaining` is what may still be refunded. */
export class RefundExceedsTransfer extends DomainError {
  readonly remaining: bigint;
  constructor(transferId: bigint | string, remaining: bigint) {
    super('REFUND_EXCEEDS_TRANSFER', `transfer ${String(transferId)} can be refunded by at most ${remaining} more minor units`, {
      fieldViolations: [{ field: 'amount', description: `must be at most ${remaining}` }],
    });
    this.remaining = remaining;
  }
}

export const isDomainError = (error: unknown): error is DomainError => error instanceof DomainError;

// --- identity (issue 3) ---

export class UserNotFound extends DomainError {
  constructor(username: string) {
    super('USER_NOT_FOUND', `user ${username} not found`);
  }
}

export class UsernameTaken extends DomainError {
  constructor() {
    super('USERNAME_TAKEN', 'this username is already taken', {
      fieldViolations: [{ field: 'username', description: 'is already taken' }],
    });
  }
}

export class EmailTaken extends DomainError {
  constructor() {
    super('EMAIL_TAKEN', 'this email address is already in use', {
      fieldViolations: [{ field: 'email', description: 'is already in use' }],
    });
  }
}

export class EmailNotVerified extends DomainError {
  constructor() {
    super('EMAIL_NOT_VERIFIED', 'the email address of this user is not verified yet; follow the link in the verification email first');
  }
}

/**
 * The login secret alone, before the emailed link approved the login: not yet, not wrong. Counts
 * no attempt, so the client that gave the password may ask again until the link is followed.
 */
export class LoginNotApproved extends DomainError {
  constructor() {
    super('LOGIN_NOT_APPROVED', 'this login is not approved yet; open the link in the login email, or confirm with its code or token');
  }
}

/** Too many attempts; the edges turn `retryAfterSeconds` into Retry-After / retry info. */
export class RateLimited extends DomainError {
  readonly retryAfterSeconds: number;
  constructor(retryAfterSeconds: number) {
    const seconds = Math.max(1, Math.ceil(retryAfterSeconds));
    super('RATE_LIMITED', `too many attempts, retry after ${seconds} s`);
    this.retryAfterSeconds = seconds;
  }
}

/** A verification link that does not exist, was used, expired, or was replaced by a newer one. */
export class VerificationLinkInvalid extends DomainError {
  readonly reason: 'not_found' | 'used' | 'expired' | 'superseded';
  constructor(reason: 'not_found' | 'used' | 'expired' | 'superseded') {
    const messages = {
      not_found: 'this verification link is not valid',
      used: 'this verification link was already used',
      expired: 'this verification link has expired; request a new one by updating your email',
      superseded: 'this verification link was replaced by a newer one for a different email address',
    } as const;
    super(reason === 'not_found' ? 'NOT_FOUND' : 'FAILED_PRECONDITION', messages[reason]);
    this.reason = reason;
  }
}

// --- edges (issue 4) ---

/** A request body over the configured size limit (HTTP 413). */
export class PayloadTooLarge extends DomainError {
  constructor(limitBytes: number) {
    super('PAYLOAD_TOO_LARGE', `the request body is larger than ${limitBytes} bytes`, {
      fieldViolations: [{ field: 'body', description: `must be at most ${limitBytes} bytes` }],
    });
  }
}

/** A request body in a format the API does not read (HTTP 415). */
export class UnsupportedMediaType extends DomainError {
  constructor(contentType: string) {
    super('UNSUPPORTED_MEDIA_TYPE', `content-type ${contentType.slice(0, 60)} is not supported; send application/json`, {
      fieldViolations: [{ field: 'content-type', description: 'must be application/json' }],
    });
  }
}

/** A known HTTP path asked with a verb it does not serve (HTTP 405 with Allow). */
export class MethodNotAllowed extends DomainError {
  readonly allow: readonly string[];
  constructor(method: string, path: string, allow: readonly string[]) {
    super('METHOD_NOT_ALLOWED', `${method.slice(0, 20)} is not allowed on ${path.slice(0, 200)}; use ${allow.join(', ')}`);
    this.allow = allow;
  }
}

/** The client went away (closed the connection, cancelled) before it could be answered. */
export class RequestCancelled extends DomainError {
  constructor(options?: { cause?: unknown }) {
    super('CANCELLED', 'the client closed the request', options);
  }
}

/** The caller's deadline passed before the call could be answered (gRPC DEADLINE_EXCEEDED, HTTP 504). */
export class DeadlineExceeded extends DomainError {
  constructor(message = 'deadline exceeded', options?: { cause?: unknown }) {
    super('DEADLINE_EXCEEDED', message, options);
  }
}
