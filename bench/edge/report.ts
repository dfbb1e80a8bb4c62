// The bench's answer: one table of the edge runs against their ceilings, the pgbench ceilings,
// the ratios the issues' goals name, bench/results/edge.json and the chart.
import { COLORS, drawChart, formatValue, type Panel } from './chart.ts';
import type { LoginProbeResult } from './login-probe.ts';
import type { IntegrationCounts } from './integrations.ts';
import type { PgbenchResult } from './pgbench.ts';
import type { CpuBudget } from './process-cpu.ts';
import type { LoadResult } from './wrk.ts';

export type EdgeRun = {
  scenario: string;
  protocol: 'http' | 'grpc';
  /** hold_capture: one unit is a hold and its capture (pairs/s); balance: GetBalance on one account. */
  what: 'transfer' | 'history' | 'hold_capture' | 'balance';
  mode: 'uniform' | 'hot';
  concurrency: number;
  result: LoadResult;
  apiCpuSeconds: number;
  grpcCpuSeconds: number;
  /** CPU of the process that served the run (api for HTTP, grpc for gRPC) per 2xx answer, ms. */
  serverCpuMsPerRequest: number;
  meanBatchSize: number | null;
  /** CPU per 2xx answer by process, over the run and the worker's drain after it (absent in results written before it was measured). */
  cpu?: CpuBudget;
  /** Seconds the worker took after the run to finish the emails and webhooks it caused (absent before it was waited for). */
  drainSeconds?: number;
  ceiling: { scenario: string; tps: number; p99Ms: number };
  /** The real ledger function called by pgbench: ledger_move(), or ledger_apply() for the pair. */
  ledgerMove: { scenario: string; tps: number } | null;
  /** balance: the entries in the account read. */
  entries?: number;
};

/** The accounts GetBalance read (or why it was not measured). */
export type BalanceSetup = {
  accounts: { label: string; entries: number; accountId: string; at: string; buildSeconds: number }[];
  /** VACUUM (ANALYZE) of the ledger tables after the builds. */
  vacuumSeconds: number;
  note: string;
};

export type BenchReport = {
  at: string;
  node: string;
  cpus: number;
  cpuModel: string;
  secondsPerRun: number;
  users: number;
  setupSeconds: number;
  totalSeconds: number;
  notes: string[];
  edge: EdgeRun[];
  pgbench: PgbenchResult[];
  loginProbe: LoginProbeResult;
  /** Notifications and webhooks during the run (absent in results written before they were counted). */
  integrations?: IntegrationCounts;
  balance: BalanceSetup;
};

export function pgScenario(r: Pick<PgbenchResult, 'script' | 'mode' | 'clients' | 'target'>): string {
  switch (r.script) {
    case 'history_select':
      return `pgbench history SELECT c${r.clients}`;
    case 'balance_select':
      return `pgbench balance SELECT ${r.target ?? ''} c${r.clients}`;
    case 'minimal':
      return `pgbench minimal c${r.clients} ${r.mode}`;
    case 'minimal_pair':
      return `pgbench minimal pair c${r.clients} ${r.mode}`;
    case 'ledger_move':
      return `pgbench ledger_move() c${r.clients} ${r.mode}`;
    case 'hold_capture':
      return `pgbench ledger_apply() hold+capture c${r.clients} ${r.mode}`;
  }
}

const ratio = (a: number, b: number) => (b > 0 && Number.isFinite(a) ? a / b : NaN);
const x = (value: number) => (Number.isFinite(value) ? `${value.toFixed(2)}x` : 'n/a');
const ms = (value: number) => (Number.isFinite(value) ? value.toFixed(value >= 100 ? 0 : value >= 1 ? 1 : 2) : 'n/a');
const batch = (value: number | null) => (value === null ? 'n/a' : value.toFixed(1));

function table(header: string[], rows: string[][], rightAligned: Set<number>): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (rightAligned.has(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

function find(report: BenchReport, protocol: 'http' | 'grpc', what: EdgeRun['what'], mode: 'uniform' | 'hot', concurrency: number) {
  return report.edge.find((r) => r.protocol === protocol && r.what === what && r.mode === mode && r.concurrency === concurrency);
}

/** GetBalance is flat when the long history's p99 stays within this of the short one's (bench:history's P3 bound). */
const FLAT_BALANCE_RATIO = 1.5;
/** 10k, 200k, 5M, 2.5M: how many entries a GetBalance account has, short. */
export const entriesCount = (n: number) => (n >= 1_000_000 ? `${n / 1_000_000}M` : n >= 1_000 ? `${n / 1_000}k` : String(n));
const entriesShort = (r: EdgeRun) => (r.entries === undefined ? '?' : entriesCount(r.entries));

export type Goals = Record<string, { value: number; goal: string; met: boolean | null; detail: string }>;

/** The ratios the issue's goals name, each with its goal. */
export function goals(report: BenchReport): Goals {
  const pg = (script: PgbenchResult['script'], mode: 'uniform' | 'hot', clients: number) =>
    report.pgbench.find((r) => r.script === script && r.mode === mode && r.clients === clients);
  const httpUniform = find(report, 'http', 'transfer', 'uniform', 32);
  const grpcUniform = find(report, 'grpc', 'transfer', 'uniform', 32);
  const httpHot = find(report, 'http', 'transfer', 'hot', 32);
  const grpcHot = find(report, 'grpc', 'transfer', 'hot', 32);
  const history = find(report, 'http', 'history', 'uniform', 32);
  const minimalUniform = pg('minimal', 'uniform', 32)?.tps ?? NaN;
  const minimalHot = pg('minimal', 'hot', 32)?.tps ?? NaN;
  const select = pg('history_select', 'uniform', 32)?.tps ?? NaN;
  const out: Goals = {};
  const add = (key: string, value: number, goal: string, met: boolean | null, detail: string) => (out[key] = { value, goal, met: Number.isFinite(value) ? met : null, detail });
  const p1 = ratio(httpUniform?.result.okPerSecond ?? NaN, minimalUniform);
  add('P1 HTTP c32 uniform / pgbench minimal c32 uniform', p1, '>= 1.0x', p1 >= 1, `${formatValue(httpUniform?.result.okPerSecond ?? NaN)} / ${formatValue(minimalUniform)} req/s`);
  const p1g = ratio(grpcUniform?.result.okPerSecond ?? NaN, httpUniform?.result.okPerSecond ?? NaN);
  add('P1 gRPC c32 uniform / HTTP c32 uniform', p1g, '>= 1.0x', p1g >= 1, `${formatValue(grpcUniform?.result.okPerSecond ?? NaN)} / ${formatValue(httpUniform?.result.okPerSecond ?? NaN)} req/s`);
  const p2 = ratio(httpHot?.result.okPerSecond ?? NaN, minimalHot);
  add('P2 HTTP c32 hot pair / pgbench minimal c32 hot pair', p2, '>= 5x', p2 >= 5, `${formatValue(httpHot?.result.okPerSecond ?? NaN)} / ${formatValue(minimalHot)} req/s`);
  add('P2 HTTP c32 hot pair p99 (ms)', httpHot?.result.p99Ms ?? NaN, '<= 100 ms', (httpHot?.result.p99Ms ?? Infinity) <= 100, '');
  const p2g = ratio(grpcHot?.result.okPerSecond ?? NaN, minimalHot);
  add('P2 gRPC c32 hot pair / pgbench minimal c32 hot pair', p2g, '>= 5x', p2g >= 5, `${formatValue(grpcHot?.result.okPerSecond ?? NaN)} / ${formatValue(minimalHot)} req/s`);
  add('P2 gRPC c32 hot pair p99 (ms)', grpcHot?.result.p99Ms ?? NaN, '<= 100 ms', (grpcHot?.result.p99Ms ?? Infinity) <= 100, '');
  const h = ratio(history?.result.okPerSecond ?? NaN, select);
  add('history page HTTP c32 / pgbench same SELECT c32', h, '>= 0.25x', h >= 0.25, `${formatValue(history?.result.okPerSecond ?? NaN)} / ${formatValue(select)} req/s`);
  const probe = report.loginProbe;
  add(
    `P4 GET /v1/accounts p99 during a burst of ${probe.logins.requests} logins (ms)`,
    probe.during.p99Ms,
    '<= 50 ms',
    probe.during.p99Ms <= 50,
    `before the burst ${ms(probe.before.p99Ms)} ms; logins ${formatValue(probe.logins.perSecond)}/s (${probe.logins.errors} failed)`,
  );
  const cpu = httpUniform?.serverCpuMsPerRequest ?? NaN;
  add('API CPU per transfer, HTTP c32 uniform (ms)', cpu, '<= 0.3 ms', cpu <= 0.3, `gRPC process at c32 uniform: ${ms(grpcUniform?.serverCpuMsPerRequest ?? NaN)} ms`);
  add('mean batch size, HTTP c32 uniform', httpUniform?.meanBatchSize ?? NaN, 'report', null, `hot pair ${batch(httpHot?.meanBatchSize ?? null)}`);
  add('mean batch size, gRPC c32 uniform', grpcUniform?.meanBatchSize ?? NaN, 'report', null, `hot pair ${batch(grpcHot?.meanBatchSize ?? null)}`);
  const pairs = find(report, 'http', 'hold_capture', 'uniform', 32);
  if (pairs) {
    const hc = ratio(pairs.result.okPerSecond, pairs.ledgerMove?.tps ?? NaN);
    add(
      'hold then capture HTTP c32 / pgbench ledger_apply() pair c32',
      hc,
      'report',
      null,
      `${formatValue(pairs.result.okPerSecond)} / ${formatValue(pairs.ledgerMove?.tps ?? NaN)} pairs/s; p99 ${ms(pairs.result.p99Ms)} ms; minimal pair ${formatValue(pairs.ceiling.tps)}/s`,
    );
  }
  // Flat GetBalance (issue 11, item 6): the longest history's p99 against the shortest's.
  const balances = report.edge.filter((r) => r.what === 'balance').sort((a, b) => (a.entries ?? 0) - (b.entries ?? 0));
  const [shortest, longest] = [balances[0], balances.at(-1)];
  if (shortest && longest && longest !== shortest) {
    const flat = ratio(longest.result.p99Ms, shortest.result.p99Ms);
    add(
      `GetBalance p99 ${entriesShort(longest)} / ${entriesShort(shortest)} entries, HTTP c32`,
      flat,
      `<= ${FLAT_BALANCE_RATIO}x (flat)`,
      flat <= FLAT_BALANCE_RATIO,
      `p99 ${ms(longest.result.p99Ms)} / ${ms(shortest.result.p99Ms)} ms; rate ${formatValue(longest.result.okPerSecond)} / ${formatValue(shortest.result.okPerSecond)} req/s (x${ratio(longest.result.okPerSecond, shortest.result.okPerSecond).toFixed(2)}); pgbench SELECT p99 ${ms(longest.ceiling.p99Ms)} / ${ms(shortest.ceiling.p99Ms)} ms`,
    );
  }
  return out;
}

export function printReport(report: BenchReport): string {
  const lines: string[] = [];
  const edgeRows = report.edge.map((r) => [
    r.scenario,
    formatValue(r.result.okPerSecond),
    ms(r.result.p50Ms),
    ms(r.result.p99Ms),
    String(r.result.errors),
    `${r.ceiling.scenario.replace('pgbench ', '')} ${formatValue(r.ceiling.tps)}/s`,
    x(ratio(r.result.okPerSecond, r.ceiling.tps)),
    r.ledgerMove ? x(ratio(r.result.okPerSecond, r.ledgerMove.tps)) : '',
    ms(r.serverCpuMsPerRequest),
    ms((r.result.clientCpuSeconds * 1_000) / (r.result.requests - r.result.errors)),
    batch(r.meanBatchSize),
  ]);
  const p = report.loginProbe;
  edgeRows.push(
    [`login probe: GET /v1/accounts c${p.concurrency} before`, formatValue(p.before.perSecond), ms(p.before.p50Ms), ms(p.before.p99Ms), String(p.before.errors), '', '', '', '', '', ''],
    [
      `login probe: same during ${p.logins.requests} logins`,
      formatValue(p.during.perSecond),
      ms(p.during.p50Ms),
      ms(p.during.p99Ms),
      String(p.during.errors),
      'goal p99 <= 50 ms',
      `p99 ${x(ratio(p.during.p99Ms, p.before.p99Ms))} before`,
      '',
      '',
      '',
      '',
    ],
    [`login probe: the ${p.logins.requests} logins (POST /v1/sessions)`, formatValue(p.logins.perSecond), ms(p.logins.p50Ms), ms(p.logins.p99Ms), String(p.logins.errors), '', '', '', '', '', ''],
  );
  lines.push(
    table(
      ['scenario', 'per s (2xx)', 'p50 ms', 'p99 ms', 'errors', 'ceiling (pgbench)', 'ratio', 'vs ledger_move() / apply()', 'server CPU ms/req', 'client CPU ms/req', 'mean batch'],
      edgeRows,
      new Set([1, 2, 3, 4, 6, 7, 8, 9, 10]),
    ),
  );
  lines.push('');
  const budgets = report.edge.filter((r) => r.cpu);
  if (budgets.length > 0) {
    lines.push(
      table(
        ['CPU ms per request, by process', 'api', 'grpc', 'worker', 'postgres', 'redis', 'load gen', 'bench receiver', 'other', 'total', 'cores busy', 'drain s'],
        budgets.map((r) => {
          const c = r.cpu!;
          return [
            r.scenario,
            ms(c.api),
            ms(c.grpc),
            ms(c.worker),
            ms(c.postgres),
            ms(c.redis),
            ms(c.load),
            ms(c.bench),
            ms(c.other),
            ms(c.total),
            `${c.coresBusy.toFixed(2)} of ${report.cpus}`,
            r.drainSeconds === undefined ? '' : r.drainSeconds.toFixed(1),
          ];
        }),
        new Set([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]),
      ),
    );
    lines.push('');
    const split = budgets.filter((r) => r.cpu!.postgresBy);
    if (split.length > 0) {
      lines.push(
        table(
          ["PostgreSQL's CPU ms per request, by whose backends", "API's", "gRPC's", "worker's", 'server and other', 'postgres'],
          split.map((r) => {
            const by = r.cpu!.postgresBy!;
            return [r.scenario, ms(by.api), ms(by.grpc), ms(by.worker), ms(by.rest), ms(r.cpu!.postgres)];
          }),
          new Set([1, 2, 3, 4, 5]),
        ),
      );
      lines.push('');
    }
  }
  lines.push(
    table(
      ['database ceiling (pgbench -n -M prepared)', 'tps', 'p50 ms', 'p99 ms', 'failed'],
      report.pgbench.map((r) => [pgScenario(r), formatValue(r.tps), ms(r.p50Ms), ms(r.p99Ms), String(r.failed)]),
      new Set([1, 2, 3, 4]),
    ),
  );
  lines.push('');
  const g = goals(report);
  lines.push(
    table(
      ['goal', 'measured', 'goal', 'met', 'detail'],
      Object.entries(g).map(([name, v]) => [
        name,
        name.includes('(ms)') || name.includes('batch') ? (Number.isFinite(v.value) ? (name.includes('batch') ? v.value.toFixed(1) : ms(v.value)) : 'n/a') : x(v.value),
        v.goal,
        v.met === null ? '' : v.met ? 'yes' : 'no',
        v.detail,
      ]),
      new Set([1]),
    ),
  );
  lines.push('');
  if (report.balance.accounts.length > 0) {
    lines.push(
      table(
        ['GetBalance account', 'account id', 'at (middle of its history)', 'built in s'],
        report.balance.accounts.map((a) => [`${a.label} entries`, a.accountId, a.at, a.buildSeconds.toFixed(1)]),
        new Set([3]),
      ),
    );
    lines.push('');
  }
  for (const note of report.notes) lines.push(`note: ${note}`);
  return lines.join('\n');
}

export function reportJson(report: BenchReport): string {
  return `${JSON.stringify({ ...report, goals: goals(report) }, (_, value: unknown) => (typeof value === 'number' && !Number.isFinite(value) ? null : value), 2)}\n`;
}

export function reportChart(report: BenchReport): string {
  const bars = (runs: EdgeRun[]) =>
    runs.map((r) => ({
      label: r.scenario,
      bars: [
        { value: r.result.okPerSecond, color: r.protocol === 'grpc' ? COLORS.grpc : COLORS.edge },
        { value: r.ceiling.tps, color: COLORS.minimal },
        ...(r.ledgerMove ? [{ value: r.ledgerMove.tps, color: COLORS.ledgerMove }] : []),
      ],
      note: `${x(ratio(r.result.okPerSecond, r.ceiling.tps))} of ceiling${r.result.errors > 0 ? `, ${r.result.errors} errors` : ''}`,
    }));
  const balances = report.edge.filter((r) => r.what === 'balance').sort((a, b) => (a.entries ?? 0) - (b.entries ?? 0));
  // Two panels: the SELECT's ceiling is an order of magnitude above the transfers' and would
  // squeeze their bars on a shared linear axis.
  const throughput: Panel = {
    title: 'Transfers (and hold+capture pairs): each edge run against the database alone (pgbench, same run, same accounts)',
    unit: 'transfers (pairs) per second (2xx only)',
    scale: 'linear',
    legend: [
      { label: 'HTTP (wrk; pairs: node:http)', color: COLORS.edge },
      { label: 'gRPC (grpc-js)', color: COLORS.grpc },
      { label: 'pgbench minimal (pair: 2 calls)', color: COLORS.minimal },
      { label: 'pgbench ledger_move() / ledger_apply() pair', color: COLORS.ledgerMove },
    ],
    rows: bars(report.edge.filter((r) => r.what === 'transfer' || r.what === 'hold_capture')),
  };
  const history: Panel = {
    title: 'Reads: newest history page and GetBalance (mid-history instant) against the same SELECT in pgbench',
    unit: 'reads per second (2xx only)',
    scale: 'linear',
    legend: [
      { label: 'HTTP (wrk)', color: COLORS.edge },
      { label: 'pgbench, the same SELECT', color: COLORS.minimal },
    ],
    rows: [
      ...bars(report.edge.filter((r) => r.what === 'history')),
      ...bars(balances),
    ],
  };
  const p = report.loginProbe;
  const latency: Panel = {
    title: 'p99 latency per scenario',
    unit: 'milliseconds',
    scale: 'log',
    legend: [
      { label: 'edge p99', color: COLORS.p99 },
      { label: 'pgbench ceiling p99', color: COLORS.minimal },
    ],
    marks: [
      { value: 50, label: 'P4 goal 50 ms' },
      { value: 100, label: 'P2 goal 100 ms' },
    ],
    rows: [
      ...report.edge.map((r) => ({
        label: r.scenario,
        bars: [
          { value: r.result.p99Ms, color: COLORS.p99 },
          { value: r.ceiling.p99Ms, color: COLORS.minimal },
        ],
        // The flat-balance ratio beside the longest history's row.
        ...(r.what === 'balance' && r === balances.at(-1) && balances.length > 1
          ? { note: `p99 ${x(ratio(r.result.p99Ms, balances[0]!.result.p99Ms))} the ${entriesShort(balances[0]!)} one` }
          : {}),
      })),
      { label: `GET /v1/accounts c${p.concurrency}, quiet`, bars: [{ value: p.before.p99Ms, color: COLORS.p99 }] },
      { label: `same, during ${p.logins.requests} logins`, bars: [{ value: p.during.p99Ms, color: COLORS.p99 }], note: `logins ${formatValue(p.logins.perSecond)}/s` },
    ],
  };
  return drawChart(
    'bench:edge — HTTP and gRPC edges against the database ceiling',
    `${report.at}, ${report.cpus} CPUs (${report.cpuModel}), node ${report.node}, ${report.secondsPerRun} s per run, ${report.users} users; load generators share the cores with the stack`,
    [throughput, history, latency],
  );
}
