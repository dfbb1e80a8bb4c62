// What the servers say about a run: their /metrics before and after, as differences.

/** Every sample of a Prometheus text exposition, summed per metric name (labels folded). */
export function parseMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{.*\})?\s+(\S+)/.exec(line);
    if (!match) continue;
    const value = Number(match[2]);
    if (Number.isFinite(value)) out.set(match[1]!, (out.get(match[1]!) ?? 0) + value);
  }
  return out;
}

export async function scrape(url: string): Promise<Map<string, number>> {
  const response = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  if (!response.ok) throw new Error(`GET ${url} answered ${response.status}`);
  return parseMetrics(await response.text());
}

export type MetricsDelta = {
  /** process_cpu_seconds_total after minus before. */
  cpuSeconds: number;
  /** Mean operations per ledger batch during the run, or null when the process has no such metric. */
  meanBatchSize: number | null;
};

const delta = (before: Map<string, number>, after: Map<string, number>, name: string): number | null => {
  const a = after.get(name);
  return a === undefined ? null : a - (before.get(name) ?? 0);
};

/**
 * The mean batch size from a histogram or summary named like `bank_ledger_batch_size`
 * (sum over count), or from counters of batched operations over batches. Never from
 * `bank_ledger_batch_seconds`, the batches' database time.
 */
export function meanBatchSize(before: Map<string, number>, after: Map<string, number>): number | null {
  const others = [...after.keys()].filter((name) => /^bank_ledger_batch\w*_count$/.test(name) && !name.endsWith('_seconds_count'));
  for (const name of ['bank_ledger_batch_size_count', ...others]) {
    const base = name.slice(0, -'_count'.length);
    const sum = delta(before, after, `${base}_sum`);
    const count = delta(before, after, name);
    if (sum !== null && count !== null) return count > 0 ? sum / count : null;
  }
  const batches = delta(before, after, 'bank_ledger_batches_total');
  const operations = delta(before, after, 'bank_ledger_batch_size_total') ?? delta(before, after, 'bank_ledger_batched_operations_total');
  if (batches !== null && operations !== null) return batches > 0 ? operations / batches : null;
  return null;
}

export function metricsDelta(before: Map<string, number>, after: Map<string, number>): MetricsDelta {
  return {
    cpuSeconds: delta(before, after, 'process_cpu_seconds_total') ?? NaN,
    meanBatchSize: meanBatchSize(before, after),
  };
}
