import { describe, expect, it } from 'vitest';
import { Rng } from '../../src/data/rng.ts';
import { auroc } from '../../src/eval/auroc.ts';
import { bootstrap, bootstrapTogether, quantile } from '../../src/eval/bootstrap.ts';
import { stratifiedFolds, stratifiedSplit } from '../../src/eval/folds.ts';
import { crossValidatedPredictions, fitLogisticRegression, predictClass } from '../../src/eval/probe.ts';
import { meanReciprocalRank, recallAtK, relevantRanks } from '../../src/eval/retrieval.ts';
import { meanOf, sentenceSeparation, separation } from '../../src/eval/separation.ts';
import { silhouette } from '../../src/eval/silhouette.ts';
import { gaussianClusters } from '../../src/eval/synthetic.ts';
import { accuracyAt, fitThreshold } from '../../src/eval/threshold.ts';
import { trustworthiness } from '../../src/eval/trustworthiness.ts';
import { cosine } from '../../src/eval/vectors.ts';
import { finiteDifferenceGrad } from '../helpers/numeric.ts';

const all = (n: number) => Int32Array.from({ length: n }, (_, i) => i);

// Four unit vectors used by several hand computations:
// cos(a1,a2)=0.6  cos(a1,b1)=0  cos(a1,b2)=-0.6  cos(a2,b1)=0.8  cos(a2,b2)=0.28  cos(b1,b2)=0.8
const a1 = [1, 0];
const a2 = [0.6, 0.8];
const b1 = [0, 1];
const b2 = [-0.6, 0.8];

describe('separation scores', () => {
  it('separation = mean cos(similar) − mean cos(different), on the sample and on a resample', () => {
    const cos = [0.9, 0.7, 0.2, 0.4];
    const similar = [true, true, false, false];
    expect(separation(cos, similar, all(4))).toBeCloseTo(0.8 - 0.3, 12);
    expect(separation(cos, similar, [0, 0, 2])).toBeCloseTo(0.9 - 0.2, 12);
    expect(separation(cos, similar, [0, 1])).toBeNaN();
    expect(meanOf(cos, all(4), (i) => !similar[i])).toBeCloseTo(0.3, 12);
  });

  it('sentence-level KG separation: within-true, within-false, between, score', () => {
    const vectors = [a1, a2, b1, b2];
    const associated = [true, true, false, false];
    const s = sentenceSeparation(vectors, associated, all(4));
    expect(s.withinTrue).toBeCloseTo(0.6, 12);
    expect(s.withinFalse).toBeCloseTo(0.8, 12);
    expect(s.between).toBeCloseTo((0 - 0.6 + 0.8 + 0.28) / 4, 12);
    expect(s.score).toBeCloseTo(0.7 - 0.12, 12);
    // Resampled: copies of one sentence never pair with each other; between counts every draw.
    const r = sentenceSeparation(vectors, associated, [0, 0, 1, 2, 3]);
    expect(r.withinTrue).toBeCloseTo(0.6, 12);
    expect(r.between).toBeCloseTo((2 * (0 - 0.6) + 0.8 + 0.28) / 6, 12);
    expect(sentenceSeparation(vectors, associated, [0, 0, 2, 3]).withinTrue).toBeNaN();
  });
});

describe('AUROC', () => {
  it('matches the Mann–Whitney count on a textbook case', () => {
    // positives 0.35, 0.8; negatives 0.1, 0.4: 3 of 4 comparisons won
    expect(auroc([0.1, 0.4, 0.35, 0.8], [false, false, true, true], all(4))).toBeCloseTo(0.75, 12);
  });

  it('counts ties as half', () => {
    // positives 0.5, 0.9 vs negatives 0.5, 0.5: two ties (1) + two wins (2) = 3 of 4
    expect(auroc([0.5, 0.5, 0.5, 0.9], [true, false, false, true], all(4))).toBeCloseTo(0.75, 12);
    expect(auroc([0.3, 0.3, 0.3], [true, false, true], all(3))).toBeCloseTo(0.5, 12);
    expect(auroc([0.3, 0.2], [true, true], all(2))).toBeNaN();
  });
});

describe('zero-shot pair accuracy', () => {
  const scores = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6];
  const positive = [false, false, true, false, true, true];

  it('picks the lowest threshold with the best train accuracy, at a midpoint', () => {
    // t=0.25 and t=0.45 both get 5/6; the lower wins
    expect(fitThreshold(scores, positive, all(6))).toBeCloseTo(0.25, 12);
    expect(accuracyAt(scores, positive, 0.25, all(6))).toBeCloseTo(5 / 6, 12);
  });

  it('applies the train threshold to the test split', () => {
    const s = [...scores, 0.22, 0.3, 0.26];
    const p = [...positive, false, true, false];
    const t = fitThreshold(s, p, all(6));
    expect(accuracyAt(s, p, t, [6, 7, 8])).toBeCloseTo(2 / 3, 12); // 0.26 ≥ 0.25 is called related, wrongly
  });

  it('never splits tied scores', () => {
    // Between 0.5 and 0.7 gives 2/3, as does "all related"; the tied 0.5s stay together.
    expect(fitThreshold([0.5, 0.5, 0.7], [false, true, true], all(3))).toBeCloseTo(-0.5, 12);
  });
});

describe('silhouette (cosine distance)', () => {
  it('matches the hand computation', () => {
    // distances 1−cos: a1a2 .4, a1b1 1, a1b2 1.6, a2b1 .2, a2b2 .72, b1b2 .2
    const expected = ((1.3 - 0.4) / 1.3 + (0.46 - 0.4) / 0.46 + (0.6 - 0.2) / 0.6 + (1.16 - 0.2) / 1.16) / 4;
    expect(silhouette([a1, a2, b1, b2], [0, 0, 1, 1], all(4))).toBeCloseTo(expected, 12);
  });

  it('scores a singleton class 0 and needs two classes', () => {
    // a1, a2 in class 0, b1 alone: s(a1) = (1 − .4)/1, s(a2) = (.2 − .4)/.4, s(b1) = 0
    const expected = ((1 - 0.4) / 1 + (0.2 - 0.4) / 0.4 + 0) / 3;
    expect(silhouette([a1, a2, b1], [0, 0, 1], all(3))).toBeCloseTo(expected, 12);
    expect(silhouette([a1, a2], [0, 0], all(2))).toBeNaN();
  });

  it("leaves a point's own bootstrap copies out of its a(i)", () => {
    // Resample a1, a1, a2, b1, b2. a(a1) counts only a2 (0.4); b(a1) = (1 + 1.6)/2 as before;
    // a(a2) = (0.4 + 0.4)/2; the B points see class A as a1, a1, a2.
    const s = [(1.3 - 0.4) / 1.3, (0.46 - 0.4) / 0.46];
    const bB1 = (1 + 1 + 0.2) / 3;
    const bB2 = (1.6 + 1.6 + 0.72) / 3;
    const expected = (2 * s[0] + s[1] + (bB1 - 0.2) / bB1 + (bB2 - 0.2) / bB2) / 5;
    expect(silhouette([a1, a2, b1, b2], [0, 0, 1, 1], [0, 0, 1, 2, 3])).toBeCloseTo(expected, 12);
  });
});

describe('retrieval', () => {
  const corpus = [a1, b1, a2];
  it('ranks, recall@k and MRR', () => {
    // q=a1 scores 1, 0, .6 → relevant a2 at rank 2; q=b1 scores 0, 1, .8 → relevant a1 rank 3, a2 rank 2
    const ranks = relevantRanks([a1, b1], corpus, [[2], [0, 2]]);
    expect(ranks).toEqual([[2], [3, 2]]);
    expect(recallAtK(ranks, 1, all(2))).toBe(0);
    expect(recallAtK(ranks, 2, all(2))).toBeCloseTo((1 + 0.5) / 2, 12);
    expect(meanReciprocalRank(ranks, all(2))).toBeCloseTo(0.5, 12);
    expect(meanReciprocalRank(ranks, [0, 0, 1])).toBeCloseTo(0.5, 12);
  });

  it('breaks ties against the query and checks relevance lists', () => {
    expect(relevantRanks([a1], [a1, a1], [[1]])).toEqual([[2]]);
    expect(relevantRanks([a1], [a1, a1], [[0, 1]])).toEqual([[1, 1]]);
    expect(() => relevantRanks([a1], corpus, [[5]])).toThrow(/relevant item 5 is not in the corpus/);
    expect(() => relevantRanks([a1], corpus, [[]])).toThrow(/no relevant item/);
  });
});

describe('linear probe', () => {
  it('logistic regression reaches the optimum of its regularised objective', () => {
    const x = [[1, 0.2], [0.8, -0.1], [-1, 0.3], [-0.7, -0.2], [0.1, 0.9], [0.2, 1]];
    const y = [0, 0, 1, 1, 2, 2];
    const l2 = 0.05;
    const model = fitLogisticRegression(x, y, 3, all(6), { l2, iterations: 2000 });
    const objective = (w: Float64Array) => {
      let loss = 0;
      x.forEach((xi, i) => {
        const z = [0, 1, 2].map((c) => w[2 * 3 + c] + xi[0] * w[c] + xi[1] * w[3 + c]);
        const m = Math.max(...z);
        loss += -(z[y[i]] - m - Math.log(z.reduce((s, v) => s + Math.exp(v - m), 0)));
      });
      let reg = 0;
      for (let e = 0; e < 6; e++) reg += w[e] * w[e];
      return loss / x.length + (l2 / 2) * reg;
    };
    const grad = finiteDifferenceGrad(objective, model.weights);
    for (const g of grad) expect(Math.abs(g)).toBeLessThan(1e-6);
    x.forEach((xi, i) => expect(predictClass(model, xi)).toBe(y[i]));
  });

  it('cross-validated predictions: separable clusters are all right, random labels are not', () => {
    const { vectors, labels } = gaussianClusters(3, 60, 8, 3);
    const predicted = crossValidatedPredictions(vectors, labels, { folds: 5, seed: 1 });
    expect(Array.from(predicted)).toEqual(labels);
    const rng = new Rng(9);
    const shuffled = labels.map(() => rng.int(3));
    const noise = crossValidatedPredictions(vectors, shuffled, { folds: 5, seed: 1 });
    const accuracy = noise.filter((p, i) => p === shuffled[i]).length / noise.length;
    expect(accuracy).toBeLessThan(0.7);
  });
});

describe('bootstrap, splits', () => {
  it('quantiles interpolate linearly', () => {
    expect(quantile([1, 2, 3, 4], 0.5)).toBe(2.5);
    expect(quantile([1, 2, 3, 4], 0.25)).toBe(1.75);
    expect(quantile([7], 0.9)).toBe(7);
  });

  it('is seeded, brackets the estimate and keeps strata sizes', () => {
    const values = Float64Array.from({ length: 40 }, (_, i) => Math.sin(i) + i / 40);
    const stat = (idx: Int32Array) => meanOf(values, idx);
    const a = bootstrap({ units: 40 }, stat, { seed: 3, resamples: 300 });
    const b = bootstrap({ units: 40 }, stat, { seed: 3, resamples: 300 });
    const c = bootstrap({ units: 40 }, stat, { seed: 4, resamples: 300 });
    expect(a).toEqual(b);
    expect(a.low).not.toBe(c.low);
    expect(a.low).toBeLessThan(a.value);
    expect(a.high).toBeGreaterThan(a.value);
    // Counting stratum-1 units is constant when resampling within strata.
    const strata = Int32Array.from({ length: 40 }, (_, i) => (i < 10 ? 1 : 0));
    const count = bootstrap({ units: 40, strata }, (idx) => idx.filter((i) => strata[i] === 1).length, { resamples: 100 });
    expect([count.value, count.low, count.high]).toEqual([10, 10, 10]);
    // Paired: a statistic minus itself has a zero-width interval.
    const [, , zero] = bootstrapTogether({ units: 40 }, [stat, stat, (idx) => stat(idx) - stat(idx)], { resamples: 50 });
    expect([zero.low, zero.high]).toEqual([0, 0]);
    expect(() => bootstrap({ units: 4 }, stat, { level: 1.5 })).toThrow(/level must be in \(0, 1\)/);
  });

  it('stratified folds and splits keep the class mix', () => {
    const labels = Int32Array.from({ length: 30 }, (_, i) => (i < 20 ? 0 : 1));
    const fold = stratifiedFolds(labels, 5, 2);
    for (let f = 0; f < 5; f++) {
      expect(labels.filter((l, i) => fold[i] === f && l === 0).length).toBe(4);
      expect(labels.filter((l, i) => fold[i] === f && l === 1).length).toBe(2);
    }
    const { train, test } = stratifiedSplit(labels, 0.5, 2);
    expect(test.length).toBe(15);
    expect(new Set([...train, ...test]).size).toBe(30);
    expect(Array.from(test).filter((i) => labels[i] === 1).length).toBe(5);
    expect(() => stratifiedFolds(labels, 1, 0)).toThrow(/folds must be an integer ≥ 2/);
  });
});

describe('trustworthiness', () => {
  it('matches the hand computation on a line with two points swapped', () => {
    const input = Float64Array.from([0, 1, 2, 3, 4, 5]);
    // Map swaps points 4 and 5: each gets one false neighbour of input rank 2 (penalty 1 each).
    const map = Float64Array.from([0, 1, 2, 3, 5, 4]);
    expect(trustworthiness(input, 1, map, 1, 1)).toBeCloseTo(1 - (2 / (6 * 1 * (12 - 3 - 1))) * 2, 12);
    expect(trustworthiness(input, 1, input, 1, 2)).toBe(1);
    expect(() => trustworthiness(input, 1, map, 1, 3)).toThrow(/k must be an integer in 1..2/);
  });

  it('cosine helper', () => {
    expect(cosine([3, 4], [4, 3])).toBeCloseTo(24 / 25, 12);
    expect(cosine([0, 0], [1, 0])).toBe(0);
  });
});
