/** Plain-text and CSV renderings of a before/after result (CLI, reports, downloads). */
import type { BeforeAfterResult } from './before-after.ts';
import type { Interval } from './bootstrap.ts';
import { toCsv } from './export.ts';
import { METRIC_HELP } from './help.ts';

/** A value to 3 decimals ('n/a' when undefined), with a sign when asked. */
export function formatNumber(v: number, signed = false): string {
  if (!Number.isFinite(v)) return 'n/a';
  const text = v.toFixed(3);
  return signed && v >= 0 ? `+${text}` : text;
}

/** "value [low, high]"; "value [no interval]" when the bootstrap gave none, so a bare value never looks exact. */
export function formatInterval(i: Interval, signed = false): string {
  if (!Number.isFinite(i.value)) return formatNumber(i.value);
  const range = Number.isFinite(i.low) ? ` [${formatNumber(i.low, signed)}, ${formatNumber(i.high, signed)}]` : ' [no interval]';
  return formatNumber(i.value, signed) + range;
}

/** "* Metric name: warning." for each metric with a small-sample warning (marked * in tables). */
export function formatWarnings(result: BeforeAfterResult): string[] {
  return result.metrics.flatMap((m) => (m.warning ? [`* ${METRIC_HELP[m.key].name}: ${m.warning}.`] : []));
}

/** An aligned text table: metric, n, base, adapted and change, each with its bootstrap interval. */
export function formatBeforeAfterTable(result: BeforeAfterResult): string {
  const level = `${Math.round(result.level * 100)}%`;
  const header = ['Metric', 'n', `Base [${level} CI]`, `Adapted [${level} CI]`, `Change [${level} CI]`];
  const rows = result.metrics.map((m) => [METRIC_HELP[m.key].name + (m.warning ? ' *' : ''), String(m.n), formatInterval(m.base), formatInterval(m.adapted), formatInterval(m.change, true)]);
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c].length)));
  const line = (cells: string[]) => cells.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('  ').trimEnd();
  return [
    line(header),
    widths.map((w) => '-'.repeat(w)).join('  '),
    ...rows.map(line),
    `Intervals: ${level} percentile bootstrap, ${result.resamples} paired resamples, seed ${result.seed}.`,
    ...formatWarnings(result),
  ].join('\n');
}

/** One CSV row per metric, with formulas. */
export function beforeAfterCsv(result: BeforeAfterResult): string {
  return toCsv(
    result.metrics.map((m) => ({
      metric: m.key,
      name: METRIC_HELP[m.key].name,
      n: m.n,
      base: m.base.value,
      base_low: m.base.low,
      base_high: m.base.high,
      adapted: m.adapted.value,
      adapted_low: m.adapted.low,
      adapted_high: m.adapted.high,
      change: m.change.value,
      change_low: m.change.low,
      change_high: m.change.high,
      formula: METRIC_HELP[m.key].formula,
      warning: m.warning ?? '',
    })),
  );
}
