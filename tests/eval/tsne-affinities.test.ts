import { describe, expect, it } from 'vitest';
import { pcaProject } from '../../src/eval/pca.ts';
import { calibrateRow, nearestNeighbours, tsneAffinities } from '../../src/eval/tsne-affinities.ts';
import { planTsne, resolveTsneOptions, tsneSchedule } from '../../src/eval/tsne.ts';
import { gaussianClusters } from '../../src/eval/synthetic.ts';

describe('t-SNE affinities', () => {
  it('finds exact nearest neighbours with squared distances', () => {
    // Points on a line at 0, 1, 3, 7.
    const nn = nearestNeighbours(Float64Array.from([0, 1, 3, 7]), 4, 1, 2);
    expect(Array.from(nn.indices)).toEqual([1, 2, 0, 2, 1, 0, 2, 1]);
    expect(Array.from(nn.distances)).toEqual([1, 9, 1, 4, 4, 9, 16, 36]);
  });

  it('calibrates each row to the requested perplexity (2^H with H in bits = e^H in nats)', () => {
    const distances = [0.5, 1, 1.2, 2, 3.5, 4, 6, 9, 10, 12];
    for (const perplexity of [2, 3.5, 7]) {
      const p = calibrateRow(distances, perplexity);
      const entropy = -p.reduce((s, v) => s + (v > 0 ? v * Math.log(v) : 0), 0);
      expect(Math.exp(entropy)).toBeCloseTo(perplexity, 3);
      expect(p.reduce((s, v) => s + v, 0)).toBeCloseTo(1, 12);
      // Closer points get more probability.
      for (let j = 1; j < p.length; j++) expect(p[j]).toBeLessThanOrEqual(p[j - 1]);
    }
  });

  it('builds a symmetric P that sums to one, k = 3·perplexity neighbours per row', () => {
    const { vectors } = gaussianClusters(2, 60, 5, 3);
    const data = Float64Array.from(vectors.flatMap((v) => Array.from(v)));
    const p = tsneAffinities(data, 60, 5, 5);
    const dense = new Float64Array(60 * 60);
    for (let i = 0; i < 60; i++) {
      expect(p.rowPtr[i + 1] - p.rowPtr[i]).toBeGreaterThanOrEqual(15);
      for (let e = p.rowPtr[i]; e < p.rowPtr[i + 1]; e++) {
        expect(p.cols[e]).not.toBe(i);
        if (e > p.rowPtr[i]) expect(p.cols[e]).toBeGreaterThan(p.cols[e - 1]);
        dense[i * 60 + p.cols[e]] = p.values[e];
      }
    }
    let total = 0;
    for (let i = 0; i < 60; i++) for (let j = 0; j < 60; j++) {
      expect(dense[i * 60 + j]).toBeCloseTo(dense[j * 60 + i], 9);
      total += dense[i * 60 + j];
    }
    expect(total).toBeCloseTo(1, 6);
    expect(() => tsneAffinities(data, 60, 5, 59)).toThrow(/perplexity must be in \(0, n − 1\) = \(0, 59\) for 60 points, got 59/);
  });

  it('resolves tsne.m defaults and the schedule, and rejects bad options', () => {
    const options = resolveTsneOptions(4000);
    expect(options.learningRate).toBe(250);
    expect(tsneSchedule(options, 99)).toEqual({ exaggeration: 4, momentum: 0.5, learningRate: 250, minGain: 0.01 });
    expect(tsneSchedule(options, 100).exaggeration).toBe(1);
    expect(tsneSchedule(options, 250).momentum).toBe(0.8);
    expect(resolveTsneOptions(100).learningRate).toBe(50);
    expect(() => resolveTsneOptions(10, { dims: 4 as 2 })).toThrow(/dims must be 2 or 3/);
    expect(() => resolveTsneOptions(10, { learningRate: -1 })).toThrow(/learningRate must be a positive number/);
    expect(() => planTsne([new Float32Array(3)], {})).toThrow(/at least 2 points/);
  });

  it('starts from the principal axes scaled to a standard deviation of 1e-4', () => {
    const { vectors } = gaussianClusters(5, 50, 6, 2);
    const plan = planTsne(vectors, { perplexity: 5 });
    let variance = 0;
    for (let i = 0; i < 50; i++) variance += plan.initial[2 * i] ** 2 / 50;
    expect(Math.sqrt(variance)).toBeCloseTo(1e-4, 9);
    const random = planTsne(vectors, { perplexity: 5, init: 'random', seed: 3 });
    expect(random.initial).toEqual(planTsne(vectors, { perplexity: 5, init: 'random', seed: 3 }).initial);
    expect(random.initial).not.toEqual(planTsne(vectors, { perplexity: 5, init: 'random', seed: 4 }).initial);
  });
});

describe('PCA', () => {
  it('projects onto the axes of largest variance, centred', () => {
    // Points on the diagonal: one axis carries everything.
    const line = pcaProject([[1, 1], [2, 2], [3, 3]], 2);
    expect(line.dims).toBe(2);
    const first = [0, 1, 2].map((i) => line.data[2 * i]);
    expect(Math.abs(first[0])).toBeCloseTo(Math.SQRT2, 12);
    expect(first[1]).toBeCloseTo(0, 12);
    expect(first[2]).toBeCloseTo(-first[0], 12);
    for (let i = 0; i < 3; i++) expect(line.data[2 * i + 1]).toBeCloseTo(0, 12);
    // Variance 4 along z, 1 along x, 0 along y: the axes come out z, then x.
    const spread = pcaProject([[1, 5, 2], [-1, 5, -2], [1, 5, -2], [-1, 5, 2]], 2);
    expect(Array.from(spread.data, (v) => Math.abs(v))).toEqual([2, 1, 2, 1, 2, 1, 2, 1]);
    expect(() => pcaProject([[1, 2], [3]], 1)).toThrow(/vector 1 has 1 values, vector 0 has 2/);
  });
});
