import { describe, expect, it } from '@jest/globals';
import { DEFAULT_RETRY_POLICY, maxAttempts, nominalDelayMs, retryDelayMs } from './webhook-backoff.ts';

const low = () => 0;
const high = () => 0.999_999;

describe('webhook retry backoff', () => {
  it('retries the first failure within 30 s with the default policy, whatever the jitter', () => {
    for (const random of [low, () => 0.5, high]) {
      const delay = retryDelayMs(1, DEFAULT_RETRY_POLICY, random)!;
      expect(delay).toBeGreaterThan(0);
      expect(delay).toBeLessThanOrEqual(30_000);
    }
  });

  it('doubles the nominal wait each time up to the cap', () => {
    const waits = [1, 2, 3, 4, 5].map((n) => nominalDelayMs(n, { baseMs: 10_000, maxDelayMs: 60_000, windowMs: 86_400_000 }));
    expect(waits).toEqual([10_000, 20_000, 40_000, 60_000, 60_000]);
  });

  it('jitters between half and all of the nominal wait', () => {
    const policy = DEFAULT_RETRY_POLICY;
    for (const n of [1, 4, 12]) {
      const nominal = nominalDelayMs(n, policy);
      expect(retryDelayMs(n, policy, low)).toBe(nominal / 2);
      expect(retryDelayMs(n, policy, high)).toBe(Math.round(nominal / 2 + (nominal / 2) * 0.999_999));
      const sample = retryDelayMs(n, policy, () => 0.3)!;
      expect(sample).toBeGreaterThanOrEqual(nominal / 2);
      expect(sample).toBeLessThanOrEqual(nominal);
    }
  });

  it('keeps retrying for a day, then gives up', () => {
    const policy = DEFAULT_RETRY_POLICY;
    const attempts = maxAttempts(policy);
    let nominalTotal = 0;
    for (let failures = 1; failures < attempts; failures += 1) {
      expect(retryDelayMs(failures, policy, low)).not.toBeNull();
      nominalTotal += nominalDelayMs(failures, policy);
    }
    expect(retryDelayMs(attempts, policy, low)).toBeNull();
    // The retries cover most of the day, and no more than it.
    expect(nominalTotal).toBeLessThanOrEqual(86_400_000);
    expect(nominalTotal + nominalDelayMs(attempts, policy)).toBeGreaterThan(86_400_000);
    expect(nominalTotal).toBeGreaterThan(86_400_000 - 3_600_000);
  });

  it('scales down with a short base for tests and still ends', () => {
    const policy = { baseMs: 20, maxDelayMs: 100, windowMs: 1_000 };
    expect([1, 2, 3, 4].map((n) => retryDelayMs(n, policy, low))).toEqual([10, 20, 40, 50]);
    // 20 + 40 + 80 + 100 x 8 = 940 ms of waits fit in the window; one more would not.
    expect(maxAttempts(policy)).toBe(12);
  });

  it('refuses a failure count that is not a positive integer', () => {
    expect(() => retryDelayMs(0, DEFAULT_RETRY_POLICY)).toThrow(RangeError);
  });
});
