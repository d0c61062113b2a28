/**
 * Zero-shot statement metrics from per-statement margins (log p(true answer) − log p(false answer)):
 * accuracy, the fraction whose preferred answer is the label's (the CTD study's measure), and AUROC
 * of the margin against the labels, which does not depend on the model's bias towards one answer.
 * Intervals by a bootstrap stratified by label, both statistics on the same resamples.
 */
import { auroc } from './auroc.ts';
import { type MetricComparison, compareMetric } from './before-after.ts';
import { type BootstrapOptions, type Interval, type Sample, type Statistic, bootstrapTogether } from './bootstrap.ts';

/** Fraction of the selected statements where (margin > 0) agrees with the label; a tie counts as answering false. */
export function zeroShotAccuracy(margins: ArrayLike<number>, labels: ArrayLike<boolean>, indices: ArrayLike<number>): number {
  if (indices.length === 0) return NaN;
  let right = 0;
  for (let k = 0; k < indices.length; k++) {
    const i = indices[k];
    if (margins[i] > 0 === labels[i]) right++;
  }
  return right / indices.length;
}

export interface StatementMetrics {
  statements: number;
  trueStatements: number;
  accuracy: Interval;
  /** NaN when only one label occurs. */
  auroc: Interval;
}

function checkMargins(margins: ArrayLike<number>, labels: ArrayLike<boolean>, which = ''): void {
  if (margins.length !== labels.length) throw new Error(`${margins.length} ${which}margins for ${labels.length} labels`);
  if (margins.length === 0) throw new Error('no statements to measure');
  const bad = Array.from(margins).findIndex((m) => !Number.isFinite(m));
  if (bad >= 0) throw new Error(`statement ${bad + 1} has a non-finite ${which}margin ${margins[bad]}`);
}

/** The statements as bootstrap units, stratified by label. */
function statementSample(labels: ArrayLike<boolean>): Sample {
  return { units: labels.length, strata: Array.from(labels, (l) => Number(l)) };
}

/** Accuracy and AUROC of the margins as statistics of the selected statements. */
function statementStatistics(margins: ArrayLike<number>, labels: ArrayLike<boolean>): { accuracy: Statistic; auroc: Statistic } {
  return { accuracy: (idx) => zeroShotAccuracy(margins, labels, idx), auroc: (idx) => auroc(margins, labels, idx) };
}

export function statementMetrics(margins: ArrayLike<number>, labels: ArrayLike<boolean>, options: BootstrapOptions = {}): StatementMetrics {
  checkMargins(margins, labels);
  const sample = statementSample(labels);
  const statistics = statementStatistics(margins, labels);
  const [accuracy, area] = bootstrapTogether(sample, [statistics.accuracy, statistics.auroc], options);
  return { statements: margins.length, trueStatements: Array.from(labels).filter(Boolean).length, accuracy, auroc: area };
}

/**
 * Zero-shot accuracy and margin AUROC of the base model and the adapted one on the same statements,
 * as before/after comparisons (paired resamples, the same draws as statementMetrics takes, so each
 * model's interval is the one `qlora-lab score` reports for it).
 */
export function statementComparisons(baseMargins: ArrayLike<number>, adaptedMargins: ArrayLike<number>, labels: ArrayLike<boolean>, options: BootstrapOptions = {}): MetricComparison[] {
  checkMargins(baseMargins, labels, 'base ');
  checkMargins(adaptedMargins, labels, 'adapted ');
  const sample = statementSample(labels);
  const before = statementStatistics(baseMargins, labels);
  const after = statementStatistics(adaptedMargins, labels);
  return [
    compareMetric({ key: 'zero_shot_accuracy', unit: 'statement', sample }, before.accuracy, after.accuracy, options),
    compareMetric({ key: 'zero_shot_auroc', unit: 'statement', sample }, before.auroc, after.auroc, options),
  ];
}
