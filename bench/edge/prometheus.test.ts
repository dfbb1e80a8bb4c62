import { describe, expect, it } from '@jest/globals';
import { meanBatchSize, parseMetrics } from './prometheus.ts';

const scrape = (batches: number, operations: number, seconds: number) =>
  parseMetrics(
    [
      '# HELP bank_ledger_batch_seconds Seconds from sending a batch to the answer.',
      '# TYPE bank_ledger_batch_seconds histogram',
      `bank_ledger_batch_seconds_bucket{le="0.01",service="api"} ${batches}`,
      `bank_ledger_batch_seconds_sum{service="api"} ${seconds}`,
      `bank_ledger_batch_seconds_count{service="api"} ${batches}`,
      '# TYPE bank_ledger_batch_size histogram',
      `bank_ledger_batch_size_bucket{le="16",service="api"} ${batches}`,
      `bank_ledger_batch_size_sum{service="api"} ${operations}`,
      `bank_ledger_batch_size_count{service="api"} ${batches}`,
      '',
    ].join('\n'),
  );

describe('meanBatchSize', () => {
  it('is movements per batch from bank_ledger_batch_size, whichever batch metric the scrape lists first', () => {
    expect(meanBatchSize(scrape(10, 100, 0.5), scrape(30, 420, 0.9))).toBe(16);
  });

  it('is null when no batch went out during the run', () => {
    expect(meanBatchSize(scrape(10, 100, 0.5), scrape(10, 100, 0.5))).toBeNull();
  });
});
