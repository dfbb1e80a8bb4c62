/** When deliveries are retried: the first retry soon, then exponentially further apart, for a day. */
export type RetryPolicy = {
  /** The first retry's delay (before jitter); at most 30 s, so the first retry comes within 30 s. */
  baseMs: number;
  /** No wait between two attempts is longer than this (before jitter). */
  maxDelayMs: number;
  /** Attempts stop once the waits so far would add up to more than this (24 hours). */
  windowMs: number;
};

export const DEFAULT_RETRY_POLICY: RetryPolicy = { baseMs: 10_000, maxDelayMs: 3_600_000, windowMs: 86_400_000 };

/** The wait before retry `n` (1 = the first retry) before jitter: base, 2 base, 4 base..., capped. */
export function nominalDelayMs(n: number, policy: RetryPolicy): number {
  return Math.min(policy.maxDelayMs, policy.baseMs * 2 ** Math.min(n - 1, 52));
}

/**
 * How long to wait after the `failures`-th failed attempt (1 = the first attempt failed) before
 * the next one, or null when the delivery has been retried for the whole window and fails for
 * good. The wait is the nominal delay with "equal jitter": between half and all of it, so
 * deliveries failed together do not come back together, and no wait exceeds its nominal delay.
 * `random` returns a number in [0, 1) (Math.random; tests pass their own).
 */
export function retryDelayMs(failures: number, policy: RetryPolicy, random: () => number = Math.random): number | null {
  if (!Number.isInteger(failures) || failures < 1) throw new RangeError(`failures must be a positive integer (got ${failures})`);
  let elapsed = 0;
  for (let n = 1; n <= failures; n += 1) {
    elapsed += nominalDelayMs(n, policy);
    if (elapsed > policy.windowMs) return null;
  }
  const nominal = nominalDelayMs(failures, policy);
  return Math.round(nominal / 2 + (nominal / 2) * Math.min(Math.max(random(), 0), 1));
}

/** How many attempts a delivery gets in all (the first plus every retry the window allows). */
export function maxAttempts(policy: RetryPolicy): number {
  let failures = 1;
  while (retryDelayMs(failures, policy, () => 0) !== null) failures += 1;
  return failures;
}
