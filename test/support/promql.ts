// The metric names a PromQL expression reads, and the expressions of the dashboard and the alert
// rules in deploy/observability, for the check that each one exists in a real scrape.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';

// Words that stand where a metric name could but are not one (functions and aggregations are
// recognised by the parenthesis that follows them).
const NOT_METRICS = new Set(['and', 'or', 'unless', 'bool', 'offset', 'group_left', 'group_right', 'inf', 'nan', 'Inf', 'NaN']);

/** Metric names in a PromQL expression: strings, label matchers, ranges and grouping lists removed. */
export function metricNames(expression: string): string[] {
  const bare = expression
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names = new Set<string>();
  for (const match of bare.matchAll(/(?<![\w:.$])[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const rest = bare.slice((match.index ?? 0) + match[0].length).trimStart();
    if (rest.startsWith('(') || NOT_METRICS.has(match[0])) continue;
    names.add(match[0]);
  }
  return [...names];
}

const root = path.resolve(import.meta.dirname, '../..');

type Panel = { title?: string; targets?: { expr?: string }[]; panels?: Panel[] };

/** Every query of the Grafana dashboard, with its panel's title. */
export function dashboardExpressions(): { where: string; expr: string }[] {
  const dashboard = JSON.parse(readFileSync(path.join(root, 'deploy/observability/grafana-dashboard.json'), 'utf8')) as { panels: Panel[] };
  const walk = (panels: Panel[]): { where: string; expr: string }[] =>
    panels.flatMap((panel) => [
      ...(panel.targets ?? []).flatMap((target) => (target.expr ? [{ where: `panel "${panel.title}"`, expr: target.expr }] : [])),
      ...walk(panel.panels ?? []),
    ]);
  return walk(dashboard.panels);
}

export type AlertRule = { alert: string; expr: string; for?: string; labels?: Record<string, string>; annotations?: Record<string, string> };

/** The PrometheusRule's alert rules. */
export function alertRules(): AlertRule[] {
  const rule = parseYaml(readFileSync(path.join(root, 'deploy/observability/prometheus-rules.yaml'), 'utf8')) as { spec: { groups: { rules: AlertRule[] }[] } };
  return rule.spec.groups.flatMap((group) => group.rules);
}

/** Metric names with at least one sample in a Prometheus text exposition. */
export function scrapedNames(exposition: string): Set<string> {
  return new Set(
    exposition
      .split('\n')
      .filter((line) => line && !line.startsWith('#'))
      .map((line) => /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line)?.[0] ?? ''),
  );
}
