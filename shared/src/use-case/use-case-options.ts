import { isDomainError, RequestCancelled } from '../errors/domain-error.ts';

/**
 * What every public use-case method takes last. `signal` is the edge's cancellation: it aborts
 * when the deadline passes or the client goes away, with a DomainError the edge chose as reason
 * (RequestCancelled, DeadlineExceeded).
 */
export type UseCaseOptions = { signal?: AbortSignal | undefined };

/**
 * Throws when the call was cancelled: the signal's reason when it is a DomainError, otherwise
 * RequestCancelled with the reason as cause (an `abort()` without a reason gives a DOMException).
 * Use cases call it after their pure validation, right before their first database or Redis
 * work, so a call nobody waits for any more issues no query.
 */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (!signal?.aborted) return;
  throw isDomainError(signal.reason) ? signal.reason : new RequestCancelled({ cause: signal.reason });
}
