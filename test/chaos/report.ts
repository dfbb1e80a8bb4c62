// The run's answer: one table of the faults (when, how long, recovery, what the clients saw while
// it lasted), the checks, and the same as JSON.
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Check } from './checks.ts';
import type { ChaosConfig } from './chaos-config.ts';
import type { FaultReport } from './faults.ts';

export type ChaosReport = {
  at: string;
  profile: ChaosConfig['profile'];
  node: string;
  cpus: number;
  /** `subset`: CHAOS_FAULTS named some of the faults (written to reports/chaos-subset.json). */
  faultsRun: 'all' | 'subset';
  /** CHAOS_SECONDS, and how long the storm really ran (faults may stretch it). */
  stormSeconds: number;
  stormSecondsActual: number;
  /** From the storm's start to the end of the checks; the plan's figure; the budget (short run: 120). */
  stormAndRecoverySeconds: number;
  plannedSeconds: number;
  budgetSeconds: number | null;
  totalSeconds: number;
  settings: Record<string, string | number>;
  requests: Record<string, number>;
  facts: Record<string, number>;
  faults: (FaultReport & { recoverySeconds: number | null })[];
  checks: Check[];
  /** The checks this profile asserts (the short run: money, emails, errors; and every fault injected). */
  asserted: string[];
  passed: boolean;
};

const s = (ms: number | null | undefined) => (ms === null || ms === undefined ? '-' : (ms / 1_000).toFixed(1));

export function printReport(report: ChaosReport, log: (line: string) => void = console.log): void {
  const header = ['fault', 'injected', 'at s', 'lasted s', 'recovery s', 'emails back s', 'dup emails', 'ok', '503', 'shed', 'timeout', 'network', '429', '5xx'];
  const rows = report.faults.map((f) => [
    f.name,
    f.injected ? (f.failure === undefined ? 'yes' : 'NO EFFECT') : 'NO',
    f.at.toFixed(1),
    f.injected ? s(f.durationMs) : '-',
    f.injected ? (f.recoveryMs === null ? 'NOT' : s(f.recoveryMs)) : '-',
    f.strandedEmails === undefined ? '' : `${f.emailRecoveryMs === null ? 'NOT' : s(f.emailRecoveryMs)} (${f.strandedEmails})`,
    String(f.duplicateEmails ?? 0),
    String(f.during.ok ?? 0),
    String(f.during.unavailable ?? 0),
    f.shed === undefined ? '' : `${f.shed.shed}/${f.shed.sent}`,
    String(f.during.timeout ?? 0),
    String(f.during.network ?? 0),
    String(f.during['rate-limited'] ?? 0),
    String(f.during['server-error'] ?? 0),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ');
  log('');
  log(
    `chaos (${report.profile}${report.faultsRun === 'subset' ? ', a subset of the faults' : ''}): storm ${report.stormSecondsActual.toFixed(0)} s (CHAOS_SECONDS=${report.stormSeconds}), ` +
      `storm and recovery ${report.stormAndRecoverySeconds.toFixed(0)} s (planned ${report.plannedSeconds.toFixed(0)} s${report.budgetSeconds === null ? '' : `, budget ${report.budgetSeconds} s`}), whole run ${report.totalSeconds.toFixed(0)} s`,
  );
  log(line(header));
  for (const row of rows) log(line(row));
  log("recovery: from the fault's end until its canary requests succeeded; emails back: until the emails it stranded arrived (how many)");
  log('dup emails: emails delivered twice or more whose first copy arrived between this fault and the next');
  log(`ok..5xx: the answers clients got from injection to recovery; timeout: the client's own ${report.settings.requestTimeoutMs} ms deadline (impatient first attempts not counted)`);
  log("shed: the overload burst's requests answered 503 OVERLOADED (gRPC UNAVAILABLE) by load shedding, of all it sent");
  for (const f of report.faults) for (const note of [...f.notes, ...(f.error ? [`error: ${f.error}`] : [])]) log(`  ${f.name}: ${note}`);
  log('');
  log(`requests: ${Object.entries(report.requests).map(([k, v]) => `${k} ${v}`).join(', ')}`);
  log(`facts: ${Object.entries(report.facts).map(([k, v]) => `${k} ${v}`).join(', ')}`);
  for (const c of report.checks) {
    const asserted = report.asserted.includes(c.group) ? '' : ' (reported, not asserted)';
    log(`${c.ok ? 'ok  ' : 'FAIL'}  ${c.group}: ${c.name}${asserted}: ${c.detail}`);
  }
  log(report.passed ? 'chaos: PASSED' : 'chaos: FAILED');
}

export function writeReport(file: string, report: ChaosReport): void {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify(report, (_key, value: unknown) => (typeof value === 'bigint' ? value.toString() : value), 2)}\n`);
}

export const machine = () => ({ node: process.version, cpus: os.cpus().length });
