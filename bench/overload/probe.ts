// A health probe beside the load: one GET at a time, a pause between, every latency kept, as a
// kubelet (or a person with curl) would see the endpoint while the burst runs.

export type ProbeResult = {
  url: string;
  count: number;
  /** Answers other than 200, and requests that failed or took over 10 s. */
  failures: number;
  p50Ms: number | null;
  p99Ms: number | null;
  maxMs: number | null;
};

const percentile = (sorted: readonly number[], p: number): number | null =>
  sorted.length === 0 ? null : Number(sorted[Math.max(0, Math.ceil((sorted.length * p) / 100) - 1)]!.toFixed(2));

/** Starts probing `url` every `pauseMs` after the previous answer; `stop` ends it and sums up. */
export function startProbe(url: string, pauseMs: number): { stop(): Promise<ProbeResult> } {
  const latencies: number[] = [];
  let failures = 0;
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const started = performance.now();
      try {
        const response = await fetch(url, { signal: AbortSignal.timeout(10_000) });
        await response.arrayBuffer();
        if (response.status !== 200) failures += 1;
      } catch {
        failures += 1;
      }
      latencies.push(performance.now() - started);
      await new Promise((resolve) => setTimeout(resolve, pauseMs));
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      const sorted = [...latencies].sort((a, b) => a - b);
      return { url, count: sorted.length, failures, p50Ms: percentile(sorted, 50), p99Ms: percentile(sorted, 99), maxMs: percentile(sorted, 100) };
    },
  };
}
