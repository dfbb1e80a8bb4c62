import { isStoreUnavailable } from '@bank/shared/db/store-errors';
import { isDomainError, type DomainError, type ErrorCode, type FieldViolation } from '@bank/shared/errors/domain-error';
import type { ProblemField } from './problem-fields.ts';

/** gRPC status codes (numbers fixed by the gRPC spec), named for the table below. */
export const GrpcCode = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;
export type GrpcCode = (typeof GrpcCode)[keyof typeof GrpcCode];

type Mapping = {
  http: number;
  grpc: GrpcCode;
  title: string;
  /** Properties of the error that callers get besides the message (see PROBLEM_FIELDS). */
  carries?: readonly ProblemField[];
};

/**
 * The one table from domain error codes to protocol statuses. The HTTP middleware and the gRPC
 * interceptor both read it, so the two edges answer the same failure the same way. It is a
 * Record over every ErrorCode: a new code does not compile until it is mapped here.
 */
export const ERROR_STATUS: Record<ErrorCode, Mapping> = {
  INVALID_ARGUMENT: { http: 400, grpc: GrpcCode.INVALID_ARGUMENT, title: 'Invalid argument' },
  INVALID_AMOUNT: { http: 400, grpc: GrpcCode.INVALID_ARGUMENT, title: 'Invalid amount' },
  AMOUNT_OUT_OF_RANGE: { http: 400, grpc: GrpcCode.INVALID_ARGUMENT, title: 'Amount out of range' },
  SAME_ACCOUNT: { http: 400, grpc: GrpcCode.INVALID_ARGUMENT, title: 'Same account' },
  UNAUTHENTICATED: { http: 401, grpc: GrpcCode.UNAUTHENTICATED, title: 'Unauthenticated' },
  PERMISSION_DENIED: { http: 403, grpc: GrpcCode.PERMISSION_DENIED, title: 'Permission denied' },
  EMAIL_NOT_VERIFIED: { http: 403, grpc: GrpcCode.PERMISSION_DENIED, title: 'Email not verified' },
  // The login secret alone before the emailed link approved the login: ask again later.
  LOGIN_NOT_APPROVED: { http: 409, grpc: GrpcCode.FAILED_PRECONDITION, title: 'Login not approved' },
  NOT_FOUND: { http: 404, grpc: GrpcCode.NOT_FOUND, title: 'Not found' },
  ACCOUNT_NOT_FOUND: { http: 404, grpc: GrpcCode.NOT_FOUND, title: 'Account not found' },
  TRANSFER_NOT_FOUND: { http: 404, grpc: GrpcCode.NOT_FOUND, title: 'Transfer not found' },
  USER_NOT_FOUND: { http: 404, grpc: GrpcCode.NOT_FOUND, title: 'User not found' },
  ALREADY_EXISTS: { http: 409, grpc: GrpcCode.ALREADY_EXISTS, title: 'Already exists' },
  ACCOUNT_ALREADY_EXISTS: { http: 409, grpc: GrpcCode.ALREADY_EXISTS, title: 'Account already exists' },
  USERNAME_TAKEN: { http: 409, grpc: GrpcCode.ALREADY_EXISTS, title: 'Username taken' },
  EMAIL_TAKEN: { http: 409, grpc: GrpcCode.ALREADY_EXISTS, title: 'Email taken' },
  FAILED_PRECONDITION: { http: 409, grpc: GrpcCode.FAILED_PRECONDITION, title: 'Failed precondition' },
  ACCOUNT_CLOSED: { http: 409, grpc: GrpcCode.FAILED_PRECONDITION, title: 'Account closed' },
  ACCOUNT_FROZEN: { http: 409, grpc: GrpcCode.FAILED_PRECONDITION, title: 'Account frozen' },
  ACCOUNT_NOT_EMPTY: { http: 409, grpc: GrpcCode.FAILED_PRECONDITION, title: 'Account not empty' },
  IDEMPOTENCY_CONFLICT: { http: 409, grpc: GrpcCode.FAILED_PRECONDITION, title: 'Idempotency key reused' },
  INSUFFICIENT_FUNDS: { http: 422, grpc: GrpcCode.FAILED_PRECONDITION, title: 'Insufficient funds' },
  CURRENCY_MISMATCH: { http: 422, grpc: GrpcCode.FAILED_PRECONDITION, title: 'Currency mismatch' },
  RATE_LIMITED: { http: 429, grpc: GrpcCode.RESOURCE_EXHAUSTED, title: 'Too many requests' },
  UNAVAILABLE: { http: 503, grpc: GrpcCode.UNAVAILABLE, title: 'Service unavailable' },
  // Load shedding: refused before any work started, so a retry (after Retry-After) is always safe.
  OVERLOADED: { http: 503, grpc: GrpcCode.UNAVAILABLE, title: 'Overloaded' },
  PAYLOAD_TOO_LARGE: { http: 413, grpc: GrpcCode.RESOURCE_EXHAUSTED, title: 'Payload too large' },
  UNSUPPORTED_MEDIA_TYPE: { http: 415, grpc: GrpcCode.INVALID_ARGUMENT, title: 'Unsupported media type' },
  METHOD_NOT_ALLOWED: { http: 405, grpc: GrpcCode.UNIMPLEMENTED, title: 'Method not allowed' },
  // 499: nginx's "client closed request"; nobody reads the answer, it is for logs and metrics.
  CANCELLED: { http: 499, grpc: GrpcCode.CANCELLED, title: 'Client closed request' },
  DEADLINE_EXCEEDED: { http: 504, grpc: GrpcCode.DEADLINE_EXCEEDED, title: 'Deadline exceeded' },
  // The money model (issue 11): a limit or a refund bound is a refusal of the amount (422, like
  // insufficient funds); the state of a hold or of an earlier transfer is a conflict (409).
  LIMIT_EXCEEDED: { http: 422, grpc: GrpcCode.FAILED_PRECONDITION, title: 'Limit exceeded', carries: ['limit', 'remaining'] },
  REFUND_EXCEEDS_TRANSFER: { http: 422, grpc: GrpcCode.FAILED_PRECONDITION, title: 'Refund exceeds transfer', carries: ['remaining'] },
  TRANSFER_NOT_PENDING: { http: 409, grpc: GrpcCode.FAILED_PRECONDITION, title: 'Transfer not pending' },
  HOLD_EXPIRED: { http: 409, grpc: GrpcCode.FAILED_PRECONDITION, title: 'Hold expired' },
  TRANSFER_ALREADY_REVERSED: { http: 409, grpc: GrpcCode.FAILED_PRECONDITION, title: 'Transfer already reversed' },
  TRANSFER_NOT_REVERSIBLE: { http: 409, grpc: GrpcCode.FAILED_PRECONDITION, title: 'Transfer not reversible' },
  TRANSFER_NOT_REFUNDABLE: { http: 409, grpc: GrpcCode.FAILED_PRECONDITION, title: 'Transfer not refundable' },
};

const INTERNAL: Mapping = { http: 500, grpc: GrpcCode.INTERNAL, title: 'Internal error' };

/**
 * The one text of every authentication failure (401 / UNAUTHENTICATED): a missing, malformed,
 * forged, expired or revoked token, a wrong password or unknown user, a wrong or used code, secret
 * or login token all read alike, so the answer tells a prober nothing about which check failed.
 * The cause stays in the server's log line (`reason`).
 */
export const UNAUTHENTICATED_DETAIL = 'authentication failed: the credentials, code or token are missing, wrong or no longer valid';

/** What an edge tells the caller about a failure. `internal` errors must be logged by the edge. */
export type ErrorAnswer = {
  code: ErrorCode | 'INTERNAL';
  http: number;
  grpc: GrpcCode;
  title: string;
  /** Safe to show: the domain message, a generic text for internal errors, UNAUTHENTICATED_DETAIL for every 401. */
  detail: string;
  /** For the log line only, never the caller: the domain message an answer's detail replaced (a 401's cause). */
  reason?: string;
  fieldViolations: readonly FieldViolation[];
  retryAfterSeconds: number | undefined;
  /** The error's facts its code lists in the table (`limit`, `remaining`...), as strings. */
  fields: Readonly<Partial<Record<ProblemField, string>>>;
  internal: boolean;
};

/** The properties `names` of the error that hold a string or a number, as strings. */
function fieldsOf(error: DomainError, names: readonly ProblemField[] = []): Partial<Record<ProblemField, string>> {
  const fields: Partial<Record<ProblemField, string>> = {};
  for (const name of names) {
    const value = (error as unknown as Record<string, unknown>)[name];
    if (typeof value === 'string' || typeof value === 'bigint' || typeof value === 'number') fields[name] = String(value);
  }
  return fields;
}

/** Maps any thrown value to the answer; anything but a DomainError is internal and says nothing. */
export function errorAnswer(error: unknown): ErrorAnswer {
  if (isDomainError(error)) {
    const mapping = ERROR_STATUS[error.code] ?? INTERNAL;
    const { carries, ...status } = mapping;
    const retry = (error as { retryAfterSeconds?: unknown }).retryAfterSeconds;
    const unauthenticated = mapping.http === 401;
    return {
      code: mapping === INTERNAL ? 'INTERNAL' : error.code,
      ...status,
      detail: mapping === INTERNAL ? 'internal error' : unauthenticated ? UNAUTHENTICATED_DETAIL : error.message,
      ...(unauthenticated ? { reason: error.message } : {}),
      fieldViolations: error.fieldViolations,
      retryAfterSeconds: typeof retry === 'number' ? retry : undefined,
      fields: fieldsOf(error, carries),
      internal: mapping === INTERNAL,
    };
  }
  if (isStoreUnavailable(error)) {
    return {
      code: 'UNAVAILABLE',
      ...ERROR_STATUS.UNAVAILABLE,
      detail: 'a backing service is unavailable; retry shortly',
      fieldViolations: [],
      retryAfterSeconds: 1,
      fields: {},
      internal: true,
    };
  }
  return { code: 'INTERNAL', ...INTERNAL, detail: 'internal error', fieldViolations: [], retryAfterSeconds: undefined, fields: {}, internal: true };
}
