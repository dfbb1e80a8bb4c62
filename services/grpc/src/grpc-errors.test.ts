import { describe, expect, it } from '@jest/globals';
import { fromBinary } from '@bufbuild/protobuf';
import { anyUnpack } from '@bufbuild/protobuf/wkt';
import { status as grpcStatus, type Metadata } from '@grpc/grpc-js';
import { BadRequestSchema, ErrorInfoSchema, RetryInfoSchema } from '@bank/proto/google/rpc/error_details_pb';
import { StatusSchema } from '@bank/proto/google/rpc/status_pb';
import { InvalidArgument, LimitExceeded, Overloaded } from '@bank/shared/errors/domain-error';
import { toServiceError } from './grpc-errors.ts';

const statusOf = (metadata: Metadata | undefined) => fromBinary(StatusSchema, metadata?.get('grpc-status-details-bin')[0] as Buffer);

describe('toServiceError', () => {
  it('maps INVALID_ARGUMENT with google.rpc.BadRequest field violations and ErrorInfo in grpc-status-details-bin', () => {
    const { error } = toServiceError(new InvalidArgument([{ field: 'amount', description: 'must be positive' }, { field: 'currency', description: 'is required' }]), 'req-1');
    expect(error.code).toBe(grpcStatus.INVALID_ARGUMENT);
    const status = statusOf(error.metadata);
    expect(status.code).toBe(grpcStatus.INVALID_ARGUMENT);
    const bad = status.details.map((d) => anyUnpack(d, BadRequestSchema)).find(Boolean);
    expect(bad?.fieldViolations.map((v) => [v.field, v.description])).toEqual([
      ['amount', 'must be positive'],
      ['currency', 'is required'],
    ]);
    const info = status.details.map((d) => anyUnpack(d, ErrorInfoSchema)).find(Boolean);
    expect(info).toMatchObject({ reason: 'INVALID_ARGUMENT', domain: 'bank.v1', metadata: { requestId: 'req-1' } });
    expect(error.metadata?.get('bank-error-code')).toEqual(['INVALID_ARGUMENT']);
  });

  it('maps LIMIT_EXCEEDED to FAILED_PRECONDITION with the limit and what remains in the ErrorInfo metadata', () => {
    const { error } = toServiceError(new LimitExceeded('outgoing_daily_limit', 1_234n), 'req-3');
    expect(error.code).toBe(grpcStatus.FAILED_PRECONDITION);
    const info = statusOf(error.metadata).details.map((d) => anyUnpack(d, ErrorInfoSchema)).find(Boolean);
    expect(info).toMatchObject({ reason: 'LIMIT_EXCEEDED', domain: 'bank.v1' });
    expect(info?.metadata).toEqual({ limit: 'outgoing_daily_limit', remaining: '1234', requestId: 'req-3' });
  });

  it('maps a call shed for overload to UNAVAILABLE with RetryInfo of 1 s and the reason OVERLOADED', () => {
    const { error } = toServiceError(new Overloaded('this server is at its limit of 64 calls in flight'), 'req-4');
    expect(error.code).toBe(grpcStatus.UNAVAILABLE);
    const details = statusOf(error.metadata).details;
    expect(details.map((d) => anyUnpack(d, ErrorInfoSchema)).find(Boolean)).toMatchObject({ reason: 'OVERLOADED', domain: 'bank.v1' });
    expect(details.map((d) => anyUnpack(d, RetryInfoSchema)).find(Boolean)?.retryDelay?.seconds).toBe(1n);
  });

  it('maps anything unexpected to INTERNAL without its message', () => {
    const { error, answer } = toServiceError(new TypeError('cannot read secret of undefined'), 'req-2');
    expect(error.code).toBe(grpcStatus.INTERNAL);
    expect(error.details).toBe('internal error');
    expect(answer.internal).toBe(true);
    expect(statusOf(error.metadata).message).toBe('internal error');
  });
});
