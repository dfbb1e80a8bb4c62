// The chaos run's configuration, without running it: the short run's plan fits its 120 s budget
// (and a configuration that would not is refused before anything starts), the overload burst is
// more than a process admits and queues (so it must be shed), and only full runs write
// bench/results/chaos.json.
import path from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { chaosConfig, FAULTS, planRun, SHORT_BUDGET_SECONDS, SHORT_FAULTS, STACK_DEFAULTS } from './chaos-config.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const short = (env: NodeJS.ProcessEnv = {}) => chaosConfig(['--short'], env);
const full = (env: NodeJS.ProcessEnv = {}) => chaosConfig([], env);

describe('the short run (npm test): at most 120 s of storm and recovery', () => {
  it('plans its faults, the storm, the email wait and the checks within the budget', () => {
    const config = short();
    expect(config.faults).toEqual(SHORT_FAULTS);
    expect(config.budgetSeconds).toBe(SHORT_BUDGET_SECONDS);
    const plan = planRun(config);
    expect(plan.totalMs).toBeLessThanOrEqual(SHORT_BUDGET_SECONDS * 1_000);
    expect(plan.totalMs).toBe(plan.steps.reduce((sum, step) => sum + step.ms, 0));
    // Every fault is in the plan, with the ceiling of the email wait.
    for (const name of SHORT_FAULTS) expect(plan.steps.some((step) => step.what.startsWith(name))).toBe(true);
    expect(plan.steps).toContainEqual({ what: 'email wait (ceiling)', ms: config.emailWaitMs });
    expect(plan.stormMs).toBeGreaterThanOrEqual(config.stormSeconds * 1_000);
  });

  it('a worker kill is planned with the lock and stall check its jobs wait for', () => {
    const quick = planRun(short({ CHAOS_FAULTS: 'kill-worker' }));
    const slow = planRun(short({ CHAOS_FAULTS: 'kill-worker', WORKER_LOCK_DURATION_MS: '20000', WORKER_STALLED_INTERVAL_MS: '20000' }));
    expect(slow.totalMs - quick.totalMs).toBeGreaterThan(20_000);
  });

  it.each([
    ['a longer storm', { CHAOS_SECONDS: '100' }],
    ['every fault', { CHAOS_FAULTS: FAULTS.join(',') }],
    ['a longer email wait', { CHAOS_EMAIL_WAIT_MS: '90000' }],
  ])('refuses to start with %s, saying what the plan adds up to', (_what, env) => {
    expect(() => short(env)).toThrow(/^the short run's plan is \d+\.\d s of storm and recovery, more than its budget of 120 s \(warm-up 3\.0 s, .*\); shorten /);
  });

  it('takes a smaller budget, never a larger one', () => {
    expect(short({ CHAOS_BUDGET_SECONDS: '100' }).budgetSeconds).toBe(100);
    expect(() => short({ CHAOS_BUDGET_SECONDS: '121' })).toThrow("CHAOS_BUDGET_SECONDS: the short run's budget is at most 120 s (got 121)");
  });

  it('the full run has no budget unless given one', () => {
    expect(full().budgetSeconds).toBeNull();
    expect(() => full({ CHAOS_BUDGET_SECONDS: '60' })).toThrow(/^the full run's plan is .* more than its budget of 60 s/);
  });
});

describe('the overload burst', () => {
  it('sends each edge more calls at once than its process admits and queues, so some must be shed', () => {
    const config = full({ CHAOS_FAULTS: 'overload-burst' });
    const capacity = Number(STACK_DEFAULTS.MAX_INFLIGHT_REQUESTS) + Number(STACK_DEFAULTS.MAX_QUEUED_REQUESTS);
    // Per edge: the burst is more than the process admits and queues, the storm with the email
    // burst before a Redis or worker fault is well under it (so only the burst is shed).
    expect(config.burstConcurrency / 2).toBeGreaterThan(capacity);
    expect(config.concurrency / 2 + config.emailBurst).toBeLessThan(capacity);
  });

  it('refuses a burst or limits under which nothing could be shed', () => {
    expect(() => full({ CHAOS_FAULTS: 'overload-burst', CHAOS_BURST_CONCURRENCY: '64' })).toThrow(
      'the overload burst cannot shed: 32 clients per edge (CHAOS_BURST_CONCURRENCY=64) do not exceed MAX_INFLIGHT_REQUESTS + MAX_QUEUED_REQUESTS = 32 per process; raise the burst or lower the limits',
    );
    // Production's limits (128 + 64) would let the default burst in whole, as before.
    expect(() => full({ CHAOS_FAULTS: 'overload-burst', MAX_INFLIGHT_REQUESTS: '128', MAX_QUEUED_REQUESTS: '64' })).toThrow(/cannot shed: 60 clients per edge/);
    // Without the burst the limits are not its business.
    expect(full({ CHAOS_FAULTS: 'kill-api', MAX_INFLIGHT_REQUESTS: '128' }).stackEnv.MAX_INFLIGHT_REQUESTS).toBe('128');
  });
});

describe('where the results go', () => {
  it('a full run writes bench/results/chaos.json, also when CHAOS_FAULTS lists every fault', () => {
    expect(full()).toMatchObject({ subset: false, resultsFile: path.join(ROOT, 'bench/results/chaos.json') });
    expect(full({ CHAOS_FAULTS: [...FAULTS].reverse().join(',') })).toMatchObject({ subset: false, resultsFile: path.join(ROOT, 'bench/results/chaos.json') });
  });

  it('a subset writes reports/chaos-subset.json (gitignored), the short run reports/chaos-short.json', () => {
    expect(full({ CHAOS_FAULTS: 'overload-burst' })).toMatchObject({ subset: true, resultsFile: path.join(ROOT, 'reports/chaos-subset.json') });
    expect(short()).toMatchObject({ resultsFile: path.join(ROOT, 'reports/chaos-short.json') });
    expect(short({ CHAOS_FAULTS: 'kill-worker' }).resultsFile).toBe(path.join(ROOT, 'reports/chaos-short.json'));
    expect(full({ CHAOS_FAULTS: 'kill-api', CHAOS_RESULTS: '/tmp/x.json' }).resultsFile).toBe('/tmp/x.json');
  });
});

describe('refusals in the storm', () => {
  it('a small share by default, at most half', () => {
    expect(full().refusedShare).toBe(0.03);
    expect(() => full({ CHAOS_REFUSED_SHARE: '0.6' })).toThrow('CHAOS_REFUSED_SHARE must be at most 0.5 (got 0.6)');
  });
});
