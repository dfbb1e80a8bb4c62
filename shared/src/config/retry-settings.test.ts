// The retry, recovery and delay settings that used to be constants (issue 12: every backoff, lock,
// stall interval and TTL configurable, so tests never wait production intervals): their defaults
// are the production values they replaced, set values are read as numbers, and values outside
// their bounds are refused naming the variable.
import { describe, expect, it } from '@jest/globals';
import { Backoffs, type BackoffOptions } from 'bullmq';
import { loginDelayMs, LOGIN_DELAY_MAX_MS } from '../auth/session.service.ts';
import { MAX_JOB_RECOVERIES } from '../outbox/outbox-publisher.ts';
import { EMAIL_JOB_OPTIONS, EMAIL_JOB_RETRIES, emailJobDefaults } from '../queue/email-queue.ts';
import { ConfigError, parseConfig } from './config.ts';

const problemsOf = (env: NodeJS.ProcessEnv): readonly string[] => {
  try {
    parseConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  return [];
};

describe('EMAIL_JOB_ATTEMPTS, EMAIL_JOB_BACKOFF_MS, OUTBOX_JOB_MAX_RECOVERIES, LOGIN_DELAY_MAX_MS', () => {
  it('default to the values production ran on as constants', () => {
    const config = parseConfig({});
    expect(config.EMAIL_JOB_ATTEMPTS).toBe(12);
    expect(config.EMAIL_JOB_BACKOFF_MS).toBe(5_000);
    expect(config.OUTBOX_JOB_MAX_RECOVERIES).toBe(3);
    expect(config.LOGIN_DELAY_MAX_MS).toBe(2_000);
    // The constants the code falls back on without a config say the same.
    expect(EMAIL_JOB_RETRIES).toEqual({ attempts: config.EMAIL_JOB_ATTEMPTS, backoffMs: config.EMAIL_JOB_BACKOFF_MS });
    expect(MAX_JOB_RECOVERIES).toBe(config.OUTBOX_JOB_MAX_RECOVERIES);
    expect(LOGIN_DELAY_MAX_MS).toBe(config.LOGIN_DELAY_MAX_MS);
    expect(emailJobDefaults({ attempts: config.EMAIL_JOB_ATTEMPTS, backoffMs: config.EMAIL_JOB_BACKOFF_MS })).toEqual(EMAIL_JOB_OPTIONS);
  });

  it('reads set values as numbers (0 recoveries and no login delay are allowed)', () => {
    const config = parseConfig({ EMAIL_JOB_ATTEMPTS: '2', EMAIL_JOB_BACKOFF_MS: '50', OUTBOX_JOB_MAX_RECOVERIES: '0', LOGIN_DELAY_MAX_MS: '0' });
    expect([config.EMAIL_JOB_ATTEMPTS, config.EMAIL_JOB_BACKOFF_MS, config.OUTBOX_JOB_MAX_RECOVERIES, config.LOGIN_DELAY_MAX_MS]).toEqual([2, 50, 0, 0]);
  });

  it.each([
    ['EMAIL_JOB_ATTEMPTS', '0'],
    ['EMAIL_JOB_ATTEMPTS', '101'],
    ['EMAIL_JOB_ATTEMPTS', '2.5'],
    ['EMAIL_JOB_BACKOFF_MS', '9'],
    ['EMAIL_JOB_BACKOFF_MS', 'soon'],
    ['OUTBOX_JOB_MAX_RECOVERIES', '-1'],
    ['OUTBOX_JOB_MAX_RECOVERIES', '101'],
    ['LOGIN_DELAY_MAX_MS', '-1'],
    ['LOGIN_DELAY_MAX_MS', '60001'],
  ])('refuses %s=%s, naming it', (name, value) => {
    const problems = problemsOf({ [name]: value });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(new RegExp(`^${name}: `));
  });
});

describe('what the settings change', () => {
  it('an email job retries EMAIL_JOB_ATTEMPTS times, the first retry after about EMAIL_JOB_BACKOFF_MS, doubling', () => {
    const options = emailJobDefaults({ attempts: 3, backoffMs: 100 });
    expect(options.attempts).toBe(3);
    // BullMQ waits calculate(attemptsMade) after each failed attempt but the last; 20% jitter.
    const delays = [1, 2].map((made) => Number(Backoffs.calculate(options.backoff as BackoffOptions, made, new Error('smtp down'), undefined as never)));
    expect(delays[0]).toBeGreaterThanOrEqual(80);
    expect(delays[0]).toBeLessThanOrEqual(100);
    expect(delays[1]).toBeGreaterThanOrEqual(160);
    expect(delays[1]).toBeLessThanOrEqual(200);
  });

  it("a login's wait past the limit stops at LOGIN_DELAY_MAX_MS (2 s without it)", () => {
    expect([5, 6, 7, 20].map((failures) => loginDelayMs(failures, 5))).toEqual([100, 200, 400, LOGIN_DELAY_MAX_MS]);
    expect([5, 6, 7, 20].map((failures) => loginDelayMs(failures, 5, 250))).toEqual([100, 200, 250, 250]);
    expect(loginDelayMs(20, 5, 0)).toBe(0);
    expect(loginDelayMs(4, 5, 250)).toBe(0);
  });
});
