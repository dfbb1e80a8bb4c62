// `npm test`: lint, `redocly lint` of the generated OpenAPI document, typecheck, then each Jest tier in turn (never side by side: the machine has
// two cores and the later tiers start real servers), then the short chaos run alone (its own
// PostgreSQL, Redis and stack under injected faults; test/chaos), printing each step's wall time
// at the end. Last, alone, the browser tier: the web app in the system's Chromium (test/browser).
// Every step runs even after a failure, so one run shows everything that is broken; the exit code
// is non-zero when any step failed.
import { spawnSync } from 'node:child_process';

const STEPS: readonly (readonly [name: string, script: string])[] = [
  ['lint', 'lint'],
  ['openapi', 'lint:openapi'],
  ['typecheck', 'typecheck'],
  ['unit', 'test:unit'],
  ['integration', 'test:integration'],
  ['e2e', 'test:e2e'],
  ['chaos short', 'test:chaos'],
  // The web app in the system's Chromium over the real stack: after everything else, alone.
  ['browser', 'test:browser'],
];

const results: { name: string; seconds: number; ok: boolean }[] = [];
for (const [name, script] of STEPS) {
  const started = performance.now();
  console.log(`\n== ${name} (npm run ${script})`);
  const run = spawnSync('npm', ['run', '--silent', script], { stdio: 'inherit' });
  results.push({ name, seconds: (performance.now() - started) / 1_000, ok: run.status === 0 });
}

const total = results.reduce((sum, r) => sum + r.seconds, 0);
console.log('\n== test tiers');
for (const r of results) console.log(`${r.ok ? 'ok  ' : 'FAIL'}  ${r.name.padEnd(12)} ${r.seconds.toFixed(1).padStart(6)} s`);
console.log(`      ${'total'.padEnd(12)} ${total.toFixed(1).padStart(6)} s`);
process.exit(results.every((r) => r.ok) ? 0 : 1);
