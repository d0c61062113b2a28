import { describe, expect, it } from 'vitest';
import { tsneStepRef } from '../../src/engine/ops/tsne.ref.ts';
import { gaussianClusters } from '../../src/eval/synthetic.ts';
import { GpuTsne, planTsne, runTsne, tsneSchedule } from '../../src/eval/tsne.ts';
import { trustworthiness } from '../../src/eval/trustworthiness.ts';
import { gpuEngine } from '../helpers/gpu.ts';
import { expectBitIdentical, expectClose } from '../helpers/numeric.ts';

/** Share of points whose k nearest map neighbours carry their label. */
function neighbourPurity(map: Float32Array, dim: number, labels: number[], k: number): number {
  const n = labels.length;
  let agree = 0;
  for (let i = 0; i < n; i++) {
    const d = labels.map((_, j) => {
      let s = 0;
      for (let c = 0; c < dim; c++) s += (map[i * dim + c] - map[j * dim + c]) ** 2;
      return [s, j] as const;
    });
    d.sort((a, b) => a[0] - b[0]);
    for (const [, j] of d.slice(1, k + 1)) if (labels[j] === labels[i]) agree++;
  }
  return agree / (n * k);
}

/** Share of points nearer their own cluster's map centroid than any other centroid. */
function centroidSeparation(map: Float32Array, dim: number, labels: number[], clusters: number): number {
  const centroids = Array.from({ length: clusters }, () => new Float64Array(dim));
  const counts = new Array(clusters).fill(0);
  labels.forEach((l, i) => {
    counts[l]++;
    for (let c = 0; c < dim; c++) centroids[l][c] += map[i * dim + c];
  });
  centroids.forEach((m, l) => m.forEach((_, c) => (m[c] /= counts[l])));
  let right = 0;
  labels.forEach((l, i) => {
    const dist = centroids.map((m) => m.reduce((s, v, c) => s + (map[i * dim + c] - v) ** 2, 0));
    if (dist.indexOf(Math.min(...dist)) === l) right++;
  });
  return right / labels.length;
}

const flat = (vectors: Float32Array[]) => Float64Array.from(vectors.flatMap((v) => Array.from(v)));

describe('GPU t-SNE', () => {
  it.each([2, 3] as const)('%i-D map of 5 Gaussian clusters: trustworthiness(10) ≥ 0.9 and the clusters separate', async (dims) => {
    const engine = await gpuEngine();
    const { vectors, labels } = gaussianClusters(11, 400, 30, 5);
    const map = await runTsne(engine, vectors, { dims, perplexity: 30, iterations: 500 });
    expect(map.length).toBe(400 * dims);
    const t = trustworthiness(flat(vectors), 30, map, dims, 10);
    expect(t).toBeGreaterThanOrEqual(0.9);
    expect(neighbourPurity(map, dims, labels, 10)).toBeGreaterThanOrEqual(0.99);
    expect(centroidSeparation(map, dims, labels, 5)).toBe(1);
  });

  it('follows the float64 reference optimiser through the exaggeration and momentum switches (n=70, 10 iterations)', async () => {
    const engine = await gpuEngine();
    const { vectors } = gaussianClusters(4, 70, 10, 3);
    const plan = planTsne(vectors, { perplexity: 10, exaggerationIterations: 4, momentumSwitchIteration: 7, init: 'random', seed: 2 });
    const state = { y: Float64Array.from(plan.initial), velocity: new Float64Array(140), gains: new Float64Array(140).fill(1) };
    for (let t = 0; t < 10; t++) tsneStepRef(state, 70, 2, plan.affinities, tsneSchedule(plan.options, t));
    const run = new GpuTsne(engine, plan);
    run.step(10);
    const got = await run.positions();
    run.release();
    const mean = [0, 1].map((c) => state.y.filter((_, i) => i % 2 === c).reduce((s, v) => s + v, 0) / 70);
    // f32 vs float64 through 10 steps; gains make a sign flip of a tiny gradient a discrete change,
    // so longer runs drift apart without either being wrong.
    expectClose(got, Float64Array.from(state.y, (v, i) => v - mean[i % 2]), { atol: 1e-5, rtol: 2e-3 }, 'map');
  });

  it('is deterministic: two runs give bit-identical maps; progress reports the map', async () => {
    const engine = await gpuEngine();
    const { vectors } = gaussianClusters(8, 150, 12, 4);
    const seen: number[] = [];
    const a = await runTsne(engine, vectors, { iterations: 120, progressEvery: 40, onProgress: (it, map) => seen.push(it, map.length) });
    const b = await runTsne(engine, vectors, { iterations: 120 });
    expectBitIdentical(a, b, 'map');
    expect(seen).toEqual([40, 300, 80, 300, 120, 300]);
    const controller = new AbortController();
    controller.abort();
    await expect(runTsne(engine, vectors, { iterations: 10, signal: controller.signal })).rejects.toThrow(/abort/i);
  });
});
