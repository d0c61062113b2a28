/**
 * Zero-shot statement metrics from per-statement margins (log p(true answer) − log p(false answer)):
 * accuracy, the fraction whose preferred answer is the label's (the CTD study's measure), and AUROC
 * of the margin against the labels, which does not depend on the model's bias towards one answer.
 * Intervals by a bootstrap stratified by label, both statistics on the same resamples.
 */
import { auroc } from './auroc.ts';
import { type BootstrapOptions, type Interval, bootstrapTogether } from './bootstrap.ts';

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

export function statementMetrics(margins: ArrayLike<number>, labels: ArrayLike<boolean>, options: BootstrapOptions = {}): StatementMetrics {
  if (margins.length !== labels.length) throw new Error(`${margins.length} margins for ${labels.length} labels`);
  if (margins.length === 0) throw new Error('no statements to measure');
  const bad = Array.from(margins).findIndex((m) => !Number.isFinite(m));
  if (bad >= 0) throw new Error(`statement ${bad + 1} has a non-finite margin ${margins[bad]}`);
  const strata = Array.from(labels, (l) => Number(l));
  const [accuracy, area] = bootstrapTogether(
    { units: margins.length, strata },
    [(idx) => zeroShotAccuracy(margins, labels, idx), (idx) => auroc(margins, labels, idx)],
    options,
  );
  return { statements: margins.length, trueStatements: strata.reduce((a, b) => a + b, 0), accuracy, auroc: area };
}
