import { describe, expect, it } from 'vitest';
import type { Engine } from '../../src/engine/engine.ts';
import { Rng } from '../../src/data/rng.ts';
import {
  type TsneAffinities,
  type TsneStep,
  releaseAffinities,
  tsneForces,
  tsneReduce,
  tsneUpdate,
  uploadAffinities,
} from '../../src/engine/ops/tsne.ts';
import { tsneForcesRef, tsneGradientRef, tsneKlRef, tsneStepRef } from '../../src/engine/ops/tsne.ref.ts';
import { gpuEngine } from '../helpers/gpu.ts';
import { expectBitIdentical, expectClose, finiteDifferenceGrad, randomArray } from '../helpers/numeric.ts';

/** A random symmetric sparse P (each point linked to `k` random others), summing to one. */
function randomAffinities(seed: number, n: number, k: number): TsneAffinities {
  const rng = new Rng(seed);
  const links = Array.from({ length: n }, () => new Map<number, number>());
  for (let i = 0; i < n; i++) {
    for (let t = 0; t < Math.min(k, n - 1); t++) {
      let j = rng.int(n - 1);
      if (j >= i) j++;
      const v = rng.next() + 0.1;
      links[i].set(j, (links[i].get(j) ?? 0) + v);
      links[j].set(i, (links[j].get(i) ?? 0) + v);
    }
  }
  let total = 0;
  for (const row of links) for (const v of row.values()) total += v;
  const rowPtr = new Uint32Array(n + 1);
  const cols: number[] = [];
  const values: number[] = [];
  links.forEach((row, i) => {
    for (const [j, v] of [...row].sort((a, b) => a[0] - b[0])) {
      cols.push(j);
      values.push(v / total);
    }
    rowPtr[i + 1] = cols.length;
  });
  return { n, rowPtr, cols: Uint32Array.from(cols), values: Float32Array.from(values) };
}

async function gpuForces(engine: Engine, ys: Float32Array, n: number, dim: number, p: TsneAffinities) {
  const pt = uploadAffinities(engine, p);
  const y = engine.upload(ys, [n, dim]);
  const attr = engine.alloc([n, dim]);
  const rep = engine.alloc([n, dim]);
  const z = engine.alloc([n]);
  const stats = engine.alloc([4]);
  tsneForces(engine, y, pt, attr, rep, z);
  tsneReduce(engine, z, y, stats);
  const out = {
    attr: await engine.readF32(attr),
    rep: await engine.readF32(rep),
    zRow: await engine.readF32(z),
    stats: await engine.readF32(stats),
  };
  engine.release(y, attr, rep, z, stats);
  releaseAffinities(engine, pt);
  return out;
}

const STEP: TsneStep = { exaggeration: 4, momentum: 0.5, learningRate: 50, minGain: 0.01 };

describe('t-SNE gradient kernels', () => {
  // Shapes straddle the 64-point tile, the 512-point workgroup (64 threads × 8 rows) and the
  // 64-thread reduction.
  it.each([
    [1, 2],
    [7, 2],
    [33, 3],
    [129, 2],
    [129, 3],
    [600, 2],
    [513, 3],
  ])('forces and reduction match the float64 reference, n=%i dim=%i', async (n, dim) => {
    const engine = await gpuEngine();
    const ys = randomArray(n * 10 + dim, n * dim, 3);
    const p = randomAffinities(n, n, 5);
    const got = await gpuForces(engine, ys, n, dim, p);
    const ref = tsneForcesRef(ys, n, dim, p);
    // f32 sums of up to n terms of size <= 1: relative error ~ n·6e-8
    const tol = { atol: 1e-6, rtol: 5e-5 };
    expectClose(got.attr, ref.attr, { atol: 1e-8, rtol: 5e-5 }, 'attr');
    expectClose(got.rep, ref.rep, tol, 'rep');
    expectClose(got.zRow, ref.zRow, tol, 'zRow');
    expectClose([got.stats[0]], [ref.z], tol, 'Z');
    const mean = new Float64Array(dim);
    for (let c = 0; c < n * dim; c++) mean[c % dim] += ys[c] / n;
    expectClose(got.stats.subarray(1, 1 + dim), mean, { atol: 1e-6, rtol: 1e-5 }, 'mean');
  });

  it.each([
    [7, 2],
    [33, 3],
    [129, 2],
  ])('update step matches the float64 reference over 5 steps, n=%i dim=%i', async (n, dim) => {
    const engine = await gpuEngine();
    const ys = randomArray(n + 77, n * dim, 1e-2);
    const p = randomAffinities(n + 1, n, 4);
    const pt = uploadAffinities(engine, p);
    const y = engine.upload(ys, [n, dim]);
    const velocity = engine.alloc([n, dim], 'f32', true);
    const gains = engine.upload(new Float32Array(n * dim).fill(1), [n, dim]);
    const attr = engine.alloc([n, dim]);
    const rep = engine.alloc([n, dim]);
    const z = engine.alloc([n]);
    const stats = engine.alloc([4]);
    const state = { y: Float64Array.from(ys), velocity: new Float64Array(n * dim), gains: new Float64Array(n * dim).fill(1) };
    for (let s = 0; s < 5; s++) {
      const step = { ...STEP, momentum: s < 2 ? 0.5 : 0.8 };
      tsneForces(engine, y, pt, attr, rep, z);
      tsneReduce(engine, z, y, stats);
      tsneUpdate(engine, y, attr, rep, stats, velocity, gains, step);
      tsneStepRef(state, n, dim, p, step);
    }
    // Five steps amplify f32 rounding of the gradient through gains and momentum.
    expectClose(await engine.readF32(y), state.y, { atol: 1e-5, rtol: 1e-3 }, 'y');
    expectClose(await engine.readF32(gains), state.gains, { atol: 1e-6, rtol: 1e-6 }, 'gains');
    engine.release(y, velocity, gains, attr, rep, z, stats);
    releaseAffinities(engine, pt);
  });

  it('reference gradient matches central finite differences of KL(P‖Q)', () => {
    for (const [n, dim] of [
      [7, 2],
      [9, 3],
    ]) {
      const ys = randomArray(n, n * dim, 1.5);
      const p = randomAffinities(n + 5, n, 3);
      const fd = finiteDifferenceGrad((v) => tsneKlRef(v, n, dim, p), ys);
      expectClose(tsneGradientRef(ys, n, dim, p), fd, { atol: 1e-7, rtol: 1e-5 }, `dKL n=${n} dim=${dim}`);
    }
  });

  it('is deterministic (bit-identical over two runs) and validates shapes', async () => {
    const engine = await gpuEngine();
    const n = 257;
    const ys = randomArray(3, n * 2, 2);
    const p = randomAffinities(4, n, 6);
    const a = await gpuForces(engine, ys, n, 2, p);
    const b = await gpuForces(engine, ys, n, 2, p);
    expectBitIdentical(a.rep, b.rep, 'rep');
    expectBitIdentical(a.stats, b.stats, 'stats');

    const pt = uploadAffinities(engine, p);
    const y = engine.upload(ys, [n, 2]);
    const wrong = engine.alloc([n, 3]);
    const z = engine.alloc([n]);
    expect(() => tsneForces(engine, y, pt, wrong, wrong, z)).toThrow(/attr has shape \[257, 3\], expected \[257, 2\]/);
    const y4 = engine.alloc([n, 4]);
    expect(() => tsneForces(engine, y4, pt, wrong, wrong, z)).toThrow(/y must have shape \[n, 2\] or \[n, 3\]/);
    expect(() => uploadAffinities(engine, { ...p, cols: Uint32Array.from(p.cols, (c) => c + n) })).toThrow(/out of range for n = 257/);
    engine.release(y, wrong, z, y4);
    releaseAffinities(engine, pt);
  });
});
