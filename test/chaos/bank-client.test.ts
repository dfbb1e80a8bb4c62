// How the chaos clients read a shed call (503 OVERLOADED with Retry-After over HTTP, UNAVAILABLE
// with reason OVERLOADED and a RetryInfo over gRPC): a retryable answer, not a 5xx the bank must
// never give, retried with the same key after its Retry-After.
import { create, toBinary } from '@bufbuild/protobuf';
import { anyPack } from '@bufbuild/protobuf/wkt';
import * as grpc from '@grpc/grpc-js';
import { describe, expect, it } from '@jest/globals';
import { RestError } from '@bank/proto/bank/v1/rest_client';
import { ErrorInfoSchema, RetryInfoSchema } from '@bank/proto/google/rpc/error_details_pb';
import { StatusSchema } from '@bank/proto/google/rpc/status_pb';
import { AttemptFailed, grpcFailure, httpFailure, OVERLOADED, retryAfterMs, withRetries, type AttemptRecord, type RetryPolicy } from './bank-client.ts';

function grpcError(code: grpc.status, reason: string, retryDelaySeconds?: number): grpc.ServiceError {
  const metadata = new grpc.Metadata();
  const status = create(StatusSchema, {
    code,
    message: 'busy',
    details: [
      anyPack(ErrorInfoSchema, create(ErrorInfoSchema, { reason, domain: 'bank' })),
      ...(retryDelaySeconds === undefined ? [] : [anyPack(RetryInfoSchema, create(RetryInfoSchema, { retryDelay: { seconds: BigInt(retryDelaySeconds) } }))]),
    ],
  });
  metadata.set('grpc-status-details-bin', Buffer.from(toBinary(StatusSchema, status)));
  return Object.assign(new Error('busy'), { code, details: 'busy', metadata }) as grpc.ServiceError;
}

const policy = (overrides: Partial<RetryPolicy> = {}): RetryPolicy => ({ timeoutMs: 1_000, backoffBaseMs: 1, backoffMaxMs: 2, giveUpAfterMs: 10_000, retryRateLimited: true, ...overrides });

describe('a shed call', () => {
  it('over HTTP: 503 OVERLOADED is `unavailable` (retryable, allowed) with its Retry-After', () => {
    const failure = httpFailure(new RestError(503, { code: 'OVERLOADED', detail: 'this server is at its limit' }), retryAfterMs('1'));
    expect(failure).toMatchObject({ kind: 'unavailable', label: 'http 503', code: OVERLOADED, retryAfterMs: 1_000 });
    // Any other 5xx is what the bank must never answer.
    expect(httpFailure(new RestError(500, { code: 'INTERNAL' })).kind).toBe('server-error');
  });

  it('reads Retry-After in seconds, nothing else', () => {
    expect([retryAfterMs('1'), retryAfterMs(' 3 '), retryAfterMs('0')]).toEqual([1_000, 3_000, 0]);
    expect([retryAfterMs(null), retryAfterMs(undefined), retryAfterMs('Wed, 21 Oct 2015 07:28:00 GMT'), retryAfterMs('-1')]).toEqual([undefined, undefined, undefined, undefined]);
  });

  it('over gRPC: UNAVAILABLE with reason OVERLOADED is `unavailable` with its RetryInfo delay', () => {
    expect(grpcFailure(grpcError(grpc.status.UNAVAILABLE, 'OVERLOADED', 1))).toMatchObject({ kind: 'unavailable', label: 'grpc UNAVAILABLE', code: OVERLOADED, retryAfterMs: 1_000 });
    expect(grpcFailure(grpcError(grpc.status.UNAVAILABLE, 'UNAVAILABLE')).retryAfterMs).toBeUndefined();
    expect(grpcFailure(grpcError(grpc.status.INTERNAL, 'INTERNAL')).kind).toBe('server-error');
  });

  it('is retried with the same request after its Retry-After, and recorded with its code and Retry-After', async () => {
    const records: AttemptRecord[] = [];
    const sent: number[] = [];
    const started = Date.now();
    const final = await withRetries('deposit', 'http', policy({ honourRetryAfter: true }), (r) => records.push(r), async () => {
      sent.push(Date.now() - started);
      if (sent.length === 1) throw new AttemptFailed('unavailable', 'http 503', OVERLOADED, 'busy', 300);
      return 'done';
    });
    expect(final).toEqual({ status: 'acknowledged', value: 'done', attempts: 2 });
    expect(sent[1]).toBeGreaterThanOrEqual(300);
    expect(records.map((r) => [r.kind, r.code, r.retryAfterMs])).toEqual([
      ['unavailable', OVERLOADED, 300],
      ['ok', undefined, undefined],
    ]);
  });

  it("an outage's 503 (not OVERLOADED), or a client that does not honour it, retries on its backoff", async () => {
    for (const [code, honour] of [['UNAVAILABLE', true], [OVERLOADED, false]] as const) {
      const sent: number[] = [];
      const started = Date.now();
      await withRetries('deposit', 'grpc', policy({ honourRetryAfter: honour }), () => undefined, async () => {
        sent.push(Date.now() - started);
        if (sent.length === 1) throw new AttemptFailed('unavailable', 'grpc UNAVAILABLE', code, 'down', 5_000);
        return 'done';
      });
      expect(sent[1]).toBeLessThan(1_000);
    }
  });

  it('one attempt only (the burst): given up with the code it got', async () => {
    const final = await withRetries('deposit', 'http', policy({ giveUpAfterMs: 0, honourRetryAfter: true }), () => undefined, async () => {
      throw new AttemptFailed('unavailable', 'http 503', OVERLOADED, 'busy', 1_000);
    });
    expect(final).toEqual({ status: 'gave-up', label: 'http 503', code: OVERLOADED, attempts: 1 });
  });
});
