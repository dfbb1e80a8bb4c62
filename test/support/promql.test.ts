import { describe, expect, it } from '@jest/globals';
import { alertRules, dashboardExpressions, metricNames } from './promql.ts';

describe('metricNames', () => {
  it('finds the metrics of an expression, not its functions, labels, ranges, variables or keywords', () => {
    expect(
      metricNames(
        'sum by (le, protocol) (rate(grpc_server_handling_seconds_bucket{service=~"$service", code!="OK"}[$__rate_interval])) / on (protocol) group_left sum without (pod) (up) > 0.5 and bool x_total offset 5m',
      ).sort(),
    ).toEqual(['grpc_server_handling_seconds_bucket', 'up', 'x_total']);
    expect(metricNames('time() - max(bank_ledger_invariant_check_timestamp_seconds) > 1800 or absent(foo)')).toEqual([
      'bank_ledger_invariant_check_timestamp_seconds',
      'foo',
    ]);
  });
});

describe('deploy/observability', () => {
  it('every alert rule has a name, an expression, a severity, a summary and a description', () => {
    const rules = alertRules();
    expect(rules.length).toBeGreaterThan(0);
    for (const rule of rules) {
      expect({ alert: rule.alert, severity: rule.labels?.severity, summary: Boolean(rule.annotations?.summary), description: Boolean(rule.annotations?.description) }).toEqual({
        alert: expect.stringMatching(/^Bank[A-Za-z0-9]+$/),
        severity: expect.stringMatching(/^(critical|warning)$/),
        summary: true,
        description: true,
      });
      expect(metricNames(rule.expr).length).toBeGreaterThan(0);
    }
  });

  it('the dashboard and the rules cover error rate, p99, pool saturation, email queue depth and age, failed emails and the ledger invariants', () => {
    const names = new Set([...dashboardExpressions(), ...alertRules()].flatMap(({ expr }) => metricNames(expr)));
    for (const name of [
      'grpc_server_handled_total',
      'grpc_server_handling_seconds_bucket',
      'bank_db_pool_connections',
      'bank_email_queue_depth',
      'bank_outbox_oldest_unsent_age_seconds',
      'bank_emails_failed_total',
      'bank_ledger_invariant_violations',
    ]) {
      expect(names).toContain(name);
    }
  });
});
