import { describe, expect, it } from '@jest/globals';
import { DeadlineExceeded, RequestCancelled } from '../errors/domain-error.ts';
import { throwIfAborted } from './use-case-options.ts';

function thrownBy(run: () => void): unknown {
  try {
    run();
  } catch (error) {
    return error;
  }
  return undefined;
}

describe('throwIfAborted', () => {
  it('does nothing without a signal or before it aborts', () => {
    expect(thrownBy(() => throwIfAborted(undefined))).toBeUndefined();
    expect(thrownBy(() => throwIfAborted(new AbortController().signal))).toBeUndefined();
  });

  it('throws the reason itself when the edge aborted with a DomainError', () => {
    const reason = new DeadlineExceeded();
    expect(thrownBy(() => throwIfAborted(AbortSignal.abort(reason)))).toBe(reason);
  });

  it('throws RequestCancelled, with the reason as its cause, for any other reason', () => {
    const controller = new AbortController();
    controller.abort();
    const thrown = thrownBy(() => throwIfAborted(controller.signal));
    expect(thrown).toBeInstanceOf(RequestCancelled);
    expect(thrown).toMatchObject({ code: 'CANCELLED', cause: controller.signal.reason });
    expect((controller.signal.reason as Error).name).toBe('AbortError');
  });
});
