import { describe, expect, it } from '@jest/globals';
import { Backoffs, type BackoffOptions } from 'bullmq';
import { EMAIL_JOB_OPTIONS } from './email-queue.ts';

describe('EMAIL_JOB_OPTIONS', () => {
  it('retries for over two hours before an email is given up, starting within seconds', () => {
    const attempts = EMAIL_JOB_OPTIONS.attempts ?? 1;
    const backoff = EMAIL_JOB_OPTIONS.backoff as BackoffOptions;
    // BullMQ waits calculate(attemptsMade) after each failed attempt but the last.
    const delays = Array.from({ length: attempts - 1 }, (_, i) => Number(Backoffs.calculate(backoff, i + 1, new Error('smtp down'), undefined as never)));
    const totalMs = delays.reduce((sum, ms) => sum + ms, 0);
    expect(delays[0]).toBeLessThanOrEqual(10_000);
    expect(totalMs).toBeGreaterThan(2 * 3_600_000);
    expect(totalMs).toBeLessThan(24 * 3_600_000);
  });
});
