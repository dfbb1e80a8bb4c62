// bench/results/edge.svg, drawn by hand: horizontal bars, each labelled with its value, in two
// panels: throughput against the database's ceilings (linear, so bar lengths compare as the
// ratios do), and p99 latency against the goals (log scale: from a fraction of a ms to seconds).

export type Bar = { value: number; color: string };
export type BarRow = { label: string; bars: Bar[]; note?: string };
export type Panel = {
  title: string;
  unit: string;
  /** Linear keeps a bar's length proportional to its ceiling's; log fits p99s from 0.3 ms to seconds. */
  scale: 'linear' | 'log';
  rows: BarRow[];
  legend: { label: string; color: string }[];
  /** Dashed vertical lines (goals). */
  marks?: { value: number; label: string }[];
};

export const COLORS = { edge: '#2563eb', grpc: '#7c3aed', minimal: '#9ca3af', ledgerMove: '#d1d5db', p99: '#ea580c', goal: '#dc2626' };

const WIDTH = 1100;
const LABEL_W = 210;
const NOTE_W = 150;
const PLOT_W = WIDTH - LABEL_W - NOTE_W - 40;
const BAR_H = 11;
const BAR_GAP = 2;
const ROW_GAP = 10;

const escape = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

export function formatValue(value: number): string {
  if (!Number.isFinite(value)) return 'n/a';
  if (value >= 100) return Math.round(value).toLocaleString('en-US');
  if (value >= 10) return value.toFixed(1);
  return value.toFixed(2);
}

/** A "nice" step (1, 2 or 5 times a power of ten) giving about `count` ticks up to `max`. */
function niceStep(max: number, count: number): number {
  const raw = max / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  return ([1, 2, 5, 10].map((m) => m * power).find((step) => step >= raw) ?? 10 * power);
}

function axis(p: Panel, values: number[]): { x: (v: number) => number; ticks: number[] } {
  if (p.scale === 'linear') {
    // Headroom so the value label of the longest bar stays clear of the notes column.
    const max = Math.max(...values, 1) * 1.08;
    const step = niceStep(max, 6);
    const hi = Math.ceil(max / step) * step;
    return {
      x: (v) => LABEL_W + (Number.isFinite(v) ? Math.max(0, (v / hi) * PLOT_W) : 0),
      ticks: Array.from({ length: Math.round(hi / step) + 1 }, (_, i) => i * step),
    };
  }
  const lo = Math.floor(Math.log10(Math.min(...values, 1)));
  const hi = Math.max(lo + 1, Math.ceil(Math.log10(Math.max(...values, 10))));
  return {
    x: (v) => LABEL_W + (v <= 0 || !Number.isFinite(v) ? 0 : Math.max(0, ((Math.log10(v) - lo) / (hi - lo)) * PLOT_W)),
    ticks: Array.from({ length: hi - lo + 1 }, (_, i) => 10 ** (lo + i)),
  };
}

const tick = (v: number) => (v >= 1 ? Math.round(v).toLocaleString('en-US') : String(Number(v.toPrecision(1))));

function panel(p: Panel, top: number): { svg: string; height: number } {
  const values = p.rows.flatMap((r) => r.bars.map((b) => b.value)).concat((p.marks ?? []).map((m) => m.value)).filter((v) => v > 0 && Number.isFinite(v));
  const { x, ticks } = axis(p, values);
  const out: string[] = [];
  out.push(`<text x="20" y="${top + 18}" class="title">${escape(p.title)}</text>`);
  let lx = LABEL_W;
  for (const item of p.legend) {
    out.push(`<rect x="${lx}" y="${top + 28}" width="12" height="12" fill="${item.color}"/>`);
    out.push(`<text x="${lx + 16}" y="${top + 38}" class="small">${escape(item.label)}</text>`);
    lx += 24 + item.label.length * 6.6;
  }
  const plotTop = top + 52;
  let y = plotTop;
  const rowsSvg: string[] = [];
  for (const row of p.rows) {
    const h = row.bars.length * (BAR_H + BAR_GAP);
    rowsSvg.push(`<text x="${LABEL_W - 8}" y="${y + h / 2 + 4}" text-anchor="end" class="label">${escape(row.label)}</text>`);
    row.bars.forEach((bar, i) => {
      const by = y + i * (BAR_H + BAR_GAP);
      const w = x(bar.value) - LABEL_W;
      rowsSvg.push(`<rect x="${LABEL_W}" y="${by}" width="${w.toFixed(1)}" height="${BAR_H}" fill="${bar.color}"/>`);
      rowsSvg.push(`<text x="${(LABEL_W + w + 4).toFixed(1)}" y="${by + BAR_H - 1}" class="small">${escape(formatValue(bar.value))}</text>`);
    });
    if (row.note) rowsSvg.push(`<text x="${WIDTH - NOTE_W - 10}" y="${y + h / 2 + 4}" class="label">${escape(row.note)}</text>`);
    y += h + ROW_GAP;
  }
  const plotBottom = y - ROW_GAP + 4;
  for (const t of ticks) {
    const gx = x(t).toFixed(1);
    out.push(`<line x1="${gx}" y1="${plotTop - 4}" x2="${gx}" y2="${plotBottom}" class="grid"/>`);
    out.push(`<text x="${gx}" y="${plotBottom + 14}" text-anchor="middle" class="small">${escape(tick(t))}</text>`);
  }
  out.push(`<text x="${LABEL_W + PLOT_W / 2}" y="${plotBottom + 30}" text-anchor="middle" class="small">${escape(p.unit)}${p.scale === 'log' ? ' (log scale)' : ''}</text>`);
  (p.marks ?? []).forEach((mark, i) => {
    // Marks close together: the first label sits left of its line, the others right of theirs.
    const mx = x(mark.value);
    const anchor = i === 0 ? `x="${(mx - 3).toFixed(1)}" text-anchor="end"` : `x="${(mx + 3).toFixed(1)}"`;
    out.push(`<line x1="${mx.toFixed(1)}" y1="${plotTop - 4}" x2="${mx.toFixed(1)}" y2="${plotBottom}" stroke="${COLORS.goal}" stroke-dasharray="4 3"/>`);
    out.push(`<text ${anchor} y="${plotTop - 6}" class="small" fill="${COLORS.goal}">${escape(mark.label)}</text>`);
  });
  out.push(...rowsSvg);
  return { svg: out.join('\n'), height: plotBottom + 44 - top };
}

export function drawChart(title: string, subtitle: string, panels: Panel[]): string {
  const parts: string[] = [];
  let top = 56;
  for (const p of panels) {
    const drawn = panel(p, top);
    parts.push(drawn.svg);
    top += drawn.height + 16;
  }
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${top}" viewBox="0 0 ${WIDTH} ${top}" font-family="Helvetica, Arial, sans-serif">
<style>
  .title { font-size: 15px; font-weight: bold; fill: #111827; }
  .label { font-size: 12px; fill: #111827; }
  .small { font-size: 10.5px; fill: #374151; }
  .grid { stroke: #e5e7eb; stroke-width: 1; }
</style>
<rect width="100%" height="100%" fill="#ffffff"/>
<text x="20" y="24" class="title" font-size="17">${escape(title)}</text>
<text x="20" y="42" class="small">${escape(subtitle)}</text>
${parts.join('\n')}
</svg>
`;
}
