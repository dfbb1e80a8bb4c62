// How late a job held by a dead worker runs again is a matter of configuration: the production
// defaults must keep it within 15 s (issue 12), a login code that arrives a minute late is lost.
import { describe, expect, it } from '@jest/globals';
import { parseConfig } from '@bank/shared/config/config';
import { worstCaseRedeliveryMs } from './email-worker.ts';

describe('redelivery after a worker dies', () => {
  it('the default lock and stall check bring a dead worker\'s job back within 15 s', () => {
    const config = parseConfig({ NODE_ENV: 'production' });
    expect(worstCaseRedeliveryMs({ lockDurationMs: config.WORKER_LOCK_DURATION_MS, stalledIntervalMs: config.WORKER_STALLED_INTERVAL_MS })).toBeLessThanOrEqual(15_000);
  });

  it('the worst case is the lock plus one stall check, and never less than two checks', () => {
    expect(worstCaseRedeliveryMs({ lockDurationMs: 30_000, stalledIntervalMs: 30_000 })).toBe(60_000);
    expect(worstCaseRedeliveryMs({ lockDurationMs: 10_000, stalledIntervalMs: 5_000 })).toBe(15_000);
    expect(worstCaseRedeliveryMs({ lockDurationMs: 2_000, stalledIntervalMs: 5_000 })).toBe(10_000);
  });

  it('both settings are read from the environment', () => {
    const config = parseConfig({ WORKER_LOCK_DURATION_MS: '2000', WORKER_STALLED_INTERVAL_MS: '1000' });
    expect([config.WORKER_LOCK_DURATION_MS, config.WORKER_STALLED_INTERVAL_MS]).toEqual([2_000, 1_000]);
  });
});
