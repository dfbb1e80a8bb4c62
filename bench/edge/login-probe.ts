// The login burst probe: a cheap authenticated GET /v1/accounts at a steady concurrency, first on
// its own, then while 64 logins (each one bcrypt compare at the stack's cost) arrive at once.
// Its p99 during the burst shows whether authenticated requests queue behind password checks.
import { percentile } from './grpc-load.ts';
import { PASSWORD, type BenchUser } from './users.ts';

export type ProbeWindow = { requests: number; errors: number; seconds: number; perSecond: number; p50Ms: number; p99Ms: number };
export type LoginProbeResult = {
  concurrency: number;
  before: ProbeWindow;
  during: ProbeWindow;
  logins: ProbeWindow;
};

type Sample = { startedAt: number; ms: number; ok: boolean };

function window(samples: readonly Sample[], seconds: number): ProbeWindow {
  const ok = samples.filter((s) => s.ok).map((s) => s.ms).sort((a, b) => a - b);
  return {
    requests: samples.length,
    errors: samples.length - ok.length,
    seconds: Number(seconds.toFixed(2)),
    perSecond: ok.length / seconds,
    p50Ms: percentile(ok, 50),
    p99Ms: percentile(ok, 99),
  };
}

async function timed(run: () => Promise<Response>, expect: number): Promise<Sample> {
  const startedAt = performance.now();
  try {
    const response = await run();
    await response.arrayBuffer();
    return { startedAt, ms: performance.now() - startedAt, ok: response.status === expect };
  } catch {
    return { startedAt, ms: performance.now() - startedAt, ok: false };
  }
}

/** GET /v1/accounts from `concurrency` loops (one user each) until `stopped()`. */
async function cheapGets(baseUrl: string, users: readonly BenchUser[], concurrency: number, stopped: () => boolean): Promise<Sample[]> {
  const samples: Sample[] = [];
  await Promise.all(
    Array.from({ length: concurrency }, async (_, i) => {
      const headers = { authorization: `Bearer ${users[i % users.length]!.accessToken}`, accept: 'application/json' };
      while (!stopped()) samples.push(await timed(() => fetch(`${baseUrl}/v1/accounts`, { headers, signal: AbortSignal.timeout(60_000) }), 200));
    }),
  );
  return samples;
}

export async function runLoginProbe(options: { baseUrl: string; users: readonly BenchUser[]; concurrency: number; seconds: number }): Promise<LoginProbeResult> {
  const { baseUrl, users, concurrency } = options;
  let started = performance.now();
  const quietUntil = started + options.seconds * 1_000;
  const quiet = await cheapGets(baseUrl, users, concurrency, () => performance.now() >= quietUntil);
  const before = window(quiet, (performance.now() - started) / 1_000);

  let burstOver = false;
  const probe = cheapGets(baseUrl, users, concurrency, () => burstOver);
  await new Promise((resolve) => setTimeout(resolve, 200)); // the probe's connections are open and busy
  started = performance.now();
  const logins = await Promise.all(
    users.map((u) =>
      timed(
        () =>
          fetch(`${baseUrl}/v1/sessions`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', accept: 'application/json' },
            body: JSON.stringify({ username: u.username, password: PASSWORD }),
            signal: AbortSignal.timeout(120_000),
          }),
        202,
      ),
    ),
  );
  const ended = performance.now();
  burstOver = true;
  const during = (await probe).filter((s) => s.startedAt >= started && s.startedAt < ended);
  const seconds = (ended - started) / 1_000;
  return { concurrency, before, during: window(during, seconds), logins: window(logins, seconds) };
}
