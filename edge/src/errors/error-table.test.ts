import { describe, expect, it } from '@jest/globals';
import {
  AccountNotFound,
  DomainError,
  HoldExpired,
  InsufficientFunds,
  InvalidArgument,
  LimitExceeded,
  Overloaded,
  RateLimited,
  RefundExceedsTransfer,
  TransferAlreadyReversed,
  TransferNotPending,
  TransferNotRefundable,
  TransferNotReversible,
  Unauthenticated,
} from '@bank/shared/errors/domain-error';
import { ConnectionError } from 'slonik';
import { isStoreUnavailable } from '@bank/shared/db/store-errors';
import { ERROR_STATUS, errorAnswer, GrpcCode, UNAUTHENTICATED_DETAIL } from './error-table.ts';
import { PROBLEM_FIELDS } from './problem-fields.ts';

describe('the error-code table', () => {
  it('maps HTTP and gRPC consistently (4xx <-> non-OK, 5xx <-> server-side codes)', () => {
    for (const [code, mapping] of Object.entries(ERROR_STATUS)) {
      expect({ code, httpClass: Math.floor(mapping.http / 100) }).toEqual({ code, httpClass: mapping.http >= 500 ? 5 : 4 });
      if (mapping.http === 400) expect(mapping.grpc).toBe(GrpcCode.INVALID_ARGUMENT);
      if (mapping.http === 401) expect(mapping.grpc).toBe(GrpcCode.UNAUTHENTICATED);
      if (mapping.http === 404) expect(mapping.grpc).toBe(GrpcCode.NOT_FOUND);
    }
  });

  it('answers domain errors with their code, message and field violations', () => {
    expect(errorAnswer(InvalidArgument.field('amount', 'must be positive'))).toMatchObject({
      code: 'INVALID_ARGUMENT',
      http: 400,
      grpc: GrpcCode.INVALID_ARGUMENT,
      fieldViolations: [{ field: 'amount', description: 'must be positive' }],
      internal: false,
    });
    expect(errorAnswer(new InsufficientFunds(5n))).toMatchObject({ http: 422, grpc: GrpcCode.FAILED_PRECONDITION, code: 'INSUFFICIENT_FUNDS' });
    expect(errorAnswer(new AccountNotFound(5n))).toMatchObject({ http: 404, grpc: GrpcCode.NOT_FOUND });
    expect(errorAnswer(new RateLimited(12.2))).toMatchObject({ http: 429, grpc: GrpcCode.RESOURCE_EXHAUSTED, retryAfterSeconds: 13 });
  });

  it('answers every authentication failure with one text, keeping its cause for the log', () => {
    const causes = [
      new Unauthenticated(),
      new Unauthenticated('missing authorization: Bearer <access token>'),
      new Unauthenticated('token has expired'),
      new Unauthenticated('token signed by an unknown key'),
      new Unauthenticated('this session is no longer active'),
      new Unauthenticated('invalid username or password'),
      new Unauthenticated('too many failed attempts; log in again'),
    ];
    const answers = causes.map(errorAnswer);
    expect(new Set(answers.map((a) => JSON.stringify({ code: a.code, http: a.http, grpc: a.grpc, title: a.title, detail: a.detail })))).toEqual(
      new Set([JSON.stringify({ code: 'UNAUTHENTICATED', http: 401, grpc: GrpcCode.UNAUTHENTICATED, title: 'Unauthenticated', detail: UNAUTHENTICATED_DETAIL })]),
    );
    expect(answers.map((a) => a.reason)).toEqual(causes.map((c) => c.message));
    expect(errorAnswer(new InsufficientFunds(5n))).not.toHaveProperty('reason');
  });

  it('answers a call shed for overload with 503 / UNAVAILABLE, its own code and a retry after 1 s, as no internal error', () => {
    expect(errorAnswer(new Overloaded('every database connection is in use'))).toMatchObject({
      code: 'OVERLOADED',
      http: 503,
      grpc: GrpcCode.UNAVAILABLE,
      title: 'Overloaded',
      retryAfterSeconds: 1,
      internal: false,
    });
  });

  it('answers a limit refusal with 422 / FAILED_PRECONDITION and the limit and what remains, as strings', () => {
    const answer = errorAnswer(new LimitExceeded('deposit_daily_limit', 2_500_000_000_000_000_000n));
    expect(answer).toMatchObject({ code: 'LIMIT_EXCEEDED', http: 422, grpc: GrpcCode.FAILED_PRECONDITION, title: 'Limit exceeded', internal: false });
    expect(answer.fields).toEqual({ limit: 'deposit_daily_limit', remaining: '2500000000000000000' });
    expect(errorAnswer(new LimitExceeded('outgoing_daily_limit', -5n)).fields).toEqual({ limit: 'outgoing_daily_limit', remaining: '0' });
  });

  it('answers a refund above what is left with 422, the amount field and what remains', () => {
    const answer = errorAnswer(new RefundExceedsTransfer(7n, 40n));
    expect(answer).toMatchObject({ code: 'REFUND_EXCEEDS_TRANSFER', http: 422, grpc: GrpcCode.FAILED_PRECONDITION, fields: { remaining: '40' } });
    expect(answer.fieldViolations.map((v) => v.field)).toEqual(['amount']);
  });

  it('answers the state of a hold, a reversal or a refund as a 409 conflict / FAILED_PRECONDITION without extra fields', () => {
    for (const error of [
      new TransferNotPending(1n, 'posted'),
      new HoldExpired(1n),
      new TransferAlreadyReversed(1n),
      new TransferNotReversible(1n, 'it moved no money'),
      new TransferNotRefundable(1n, 'it is a deposit'),
    ]) {
      expect(errorAnswer(error)).toMatchObject({ code: error.code, http: 409, grpc: GrpcCode.FAILED_PRECONDITION, detail: error.message, fields: {} });
    }
  });

  it('carries only the facts its table row names, and none that would clash with the problem\'s own members', () => {
    const nosy = Object.assign(new InsufficientFunds(5n), { limit: 'secret', remaining: 9n });
    expect(errorAnswer(nosy).fields).toEqual({});
    for (const mapping of Object.values(ERROR_STATUS)) {
      for (const name of mapping.carries ?? []) expect(Object.keys(PROBLEM_FIELDS)).toContain(name);
    }
    for (const member of ['type', 'title', 'status', 'code', 'detail', 'errors', 'requestId']) expect(Object.keys(PROBLEM_FIELDS)).not.toContain(member);
  });

  it('answers anything else as an internal error that says nothing about it', () => {
    const answer = errorAnswer(new Error('password=hunter2 at db.internal:5432'));
    expect(answer).toEqual({
      code: 'INTERNAL',
      http: 500,
      grpc: GrpcCode.INTERNAL,
      title: 'Internal error',
      detail: 'internal error',
      fieldViolations: [],
      retryAfterSeconds: undefined,
      fields: {},
      internal: true,
    });
    expect(errorAnswer(new DomainError('NOT_A_CODE' as never, 'secret detail'))).toMatchObject({ http: 500, detail: 'internal error' });
  });
});

describe('isStoreUnavailable', () => {
  const withCode = (code: string) => Object.assign(new Error('x'), { code });
  it('recognises an unreachable or restarting database, directly or as a cause, and nothing else', () => {
    expect(isStoreUnavailable(new ConnectionError('pool closed'))).toBe(true);
    expect(isStoreUnavailable(withCode('ECONNREFUSED'))).toBe(true);
    expect(isStoreUnavailable(withCode('57P01'))).toBe(true); // admin shutdown
    expect(isStoreUnavailable(withCode('08006'))).toBe(true); // connection failure
    expect(isStoreUnavailable(withCode('53300'))).toBe(true); // too many connections
    expect(isStoreUnavailable(new Error('wrapped', { cause: withCode('ECONNRESET') }))).toBe(true);
    expect(isStoreUnavailable(withCode('23505'))).toBe(false);
    expect(isStoreUnavailable(new TypeError('bug'))).toBe(false);
    expect(errorAnswer(withCode('ECONNREFUSED'))).toMatchObject({ code: 'UNAVAILABLE', http: 503, grpc: GrpcCode.UNAVAILABLE, retryAfterSeconds: 1, internal: true });
  });
});
