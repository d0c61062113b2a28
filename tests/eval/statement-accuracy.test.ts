/** Zero-shot statement accuracy and AUROC from margins, with stratified bootstrap intervals. */
import { describe, expect, it } from 'vitest';
import { statementComparisons, statementMetrics, zeroShotAccuracy } from '../../src/eval/statement-accuracy.ts';

describe('statement metrics', () => {
  const margins = [2, -1, 0.5, -3, 0, 1];
  const labels = [true, false, false, true, false, true];

  it('counts a statement right when the preferred answer is the label, a tie as answering false', () => {
    // right: 2/true, −1/false, 0/false (tie), 1/true; wrong: 0.5/false, −3/true
    expect(zeroShotAccuracy(margins, labels, [0, 1, 2, 3, 4, 5])).toBeCloseTo(4 / 6, 12);
    expect(zeroShotAccuracy(margins, labels, [2, 2, 0])).toBeCloseTo(1 / 3, 12);
  });

  it('reports accuracy and AUROC with intervals around them', () => {
    const m = statementMetrics(margins, labels, { resamples: 200, seed: 3 });
    expect(m).toMatchObject({ statements: 6, trueStatements: 3 });
    expect(m.accuracy.value).toBeCloseTo(4 / 6, 12);
    // true margins {2, −3, 1} vs false {−1, 0.5, 0}: 6 of 9 pairs ordered right
    expect(m.auroc.value).toBeCloseTo(6 / 9, 12);
    for (const i of [m.accuracy, m.auroc]) {
      expect(i.low).toBeLessThanOrEqual(i.value);
      expect(i.high).toBeGreaterThanOrEqual(i.value);
      expect(i.high).toBeGreaterThan(i.low);
    }
  });

  it('compares base and adapted margins on the resamples statementMetrics draws for each alone', () => {
    const adapted = [3, -2, -0.5, 1, -1, 2]; // every statement right
    const options = { resamples: 200, seed: 3 };
    const [accuracy, area] = statementComparisons(margins, adapted, labels, options);
    const base = statementMetrics(margins, labels, options);
    const after = statementMetrics(adapted, labels, options);
    expect(accuracy).toMatchObject({ key: 'zero_shot_accuracy', n: 6, base: base.accuracy, adapted: after.accuracy });
    expect(area).toMatchObject({ key: 'zero_shot_auroc', n: 6, base: base.auroc, adapted: after.auroc });
    expect(accuracy.adapted.value).toBe(1);
    expect(accuracy.change.value).toBeCloseTo(1 - 4 / 6, 12);
    expect(area.change.value).toBeCloseTo(1 - 6 / 9, 12);
    expect(accuracy.warning).toBe('only 3 statements in the smallest class, fewer than 10 a class: the value is unstable and the interval narrower than the real uncertainty');
  });

  it('refuses mismatched or non-finite input', () => {
    expect(() => statementMetrics([1, 2], [true], {})).toThrow('2 margins for 1 labels');
    expect(() => statementMetrics([1, NaN], [true, false], {})).toThrow('statement 2 has a non-finite margin NaN');
    expect(() => statementComparisons([1, 2], [1, Infinity], [true, false])).toThrow('statement 2 has a non-finite adapted margin Infinity');
  });
});
