import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { Engine } from '../../src/engine/engine.ts';
import { AdamW, type AdamWHyper } from '../../src/engine/ops/adamw.ts';
import { AdamWRef } from '../../src/engine/ops/adamw.ref.ts';
import { gpuEngine } from '../helpers/gpu.ts';
import { expectBitIdentical, expectClose, randomArray } from '../helpers/numeric.ts';
import { smallGridEngine } from '../helpers/small-grid.ts';

interface TorchAdamWCase {
  shapes: number[][];
  hyper: Omit<AdamWHyper, 'step'>;
  params: number[][];
  grads: number[][][];
  gradNorms: number[];
  after: { params: number[][]; m: number[][]; v: number[][] }[];
}
const torchCases = (
  JSON.parse(readFileSync(new URL('../fixtures/training_ops/training_ops.json', import.meta.url), 'utf8')) as { adamw: TorchAdamWCase[] }
).adamw;

const BASE: Omit<AdamWHyper, 'step' | 'maxGradNorm'> = { lr: 1e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01 };

interface Trajectory {
  params: Float32Array[][];
  m: Float32Array[][];
  v: Float32Array[][];
  gradNorms: number[];
}

/** Run AdamW on the GPU for grads.length steps, reading everything back after each step. */
async function runGpu(engine: Engine, initial: ArrayLike<number>[], shapes: number[][], grads: ArrayLike<number>[][], hyper: Omit<AdamWHyper, 'step'>): Promise<Trajectory> {
  const params = initial.map((p, i) => engine.upload(Float32Array.from(p), shapes[i]));
  const optimiser = new AdamW(engine, params);
  const out: Trajectory = { params: [], m: [], v: [], gradNorms: [] };
  const read = (ts: readonly { shape: readonly number[] }[]) => Promise.all(ts.map((t) => engine.readF32(t as never)));
  for (let s = 0; s < grads.length; s++) {
    const g = grads[s].map((values, i) => engine.upload(Float32Array.from(values), shapes[i]));
    optimiser.step(g, { ...hyper, step: s + 1 });
    out.gradNorms.push((await engine.readF32(optimiser.gradNorm))[0]);
    out.params.push(await read(params));
    out.m.push(await read(optimiser.state().m));
    out.v.push(await read(optimiser.state().v));
    engine.release(...g);
  }
  optimiser.release();
  engine.release(...params);
  return out;
}

const maxAbs = (a: ArrayLike<number>) => Array.from(a).reduce((s, v) => Math.max(s, Math.abs(v)), 0);

/**
 * GPU (f32) against float64 after every step. Tolerances: gradNorm 1e-6 relative; params 1e-6
 * relative plus 1e-6·lr absolute (an f32 rounding of an lr-sized update); m and v 1e-6 relative to
 * the step's largest moment over all tensors (a moment averages signed gradients and can cancel to
 * far below their size, so its own magnitude is no measure of its rounding).
 */
function expectTrajectory(got: Trajectory, want: { params: ArrayLike<number>[]; m: ArrayLike<number>[]; v: ArrayLike<number>[]; norm: number }[], lr: number): void {
  want.forEach((w, s) => {
    expectClose([got.gradNorms[s]], [w.norm], { atol: 0, rtol: 1e-6 }, `step ${s + 1} gradNorm`);
    const mScale = Math.max(...w.m.map(maxAbs));
    const vScale = Math.max(...w.v.map(maxAbs));
    w.params.forEach((p, i) => {
      expectClose(got.params[s][i], p, { atol: 1e-6 * lr, rtol: 1e-6 }, `step ${s + 1} params[${i}]`);
      expectClose(got.m[s][i], w.m[i], { atol: 1e-6 * mScale, rtol: 0 }, `step ${s + 1} m[${i}]`);
      expectClose(got.v[s][i], w.v[i], { atol: 1e-6 * vScale, rtol: 0 }, `step ${s + 1} v[${i}]`);
    });
  });
}

/** The float64 reference trajectory for the same inputs. */
function referenceTrajectory(initial: ArrayLike<number>[], grads: ArrayLike<number>[][], hyper: Omit<AdamWHyper, 'step'>) {
  const ref = new AdamWRef(initial);
  return grads.map((g, s) => {
    const norm = ref.step(g, { ...hyper, step: s + 1 });
    return { norm, params: ref.params.map((p) => p.slice()), m: ref.m.map((p) => p.slice()), v: ref.v.map((p) => p.slice()) };
  });
}

const SHAPES = [[7, 33], [129], [1], [3000]]; // 3000: three partial sums in one tensor
const STEPS = 5;
const initialParams = SHAPES.map((s, i) => randomArray(10 + i, s.reduce((a, b) => a * b)));
const stepGrads = Array.from({ length: STEPS }, (_, s) => SHAPES.map((shape, i) => randomArray(100 * s + i, shape.reduce((a, b) => a * b))));

describe('AdamW with global grad-norm clipping', () => {
  it('float64 reference matches torch (clip_grad_norm_ + optim.AdamW) step by step to 1e-12', () => {
    for (const c of torchCases) {
      const ref = new AdamWRef(c.params);
      c.grads.forEach((g, s) => {
        const label = `maxGradNorm=${c.hyper.maxGradNorm} step ${s + 1}`;
        expect(Math.abs(ref.step(g, { ...c.hyper, step: s + 1 }) - c.gradNorms[s]), label).toBeLessThan(1e-12);
        c.after[s].params.forEach((p, i) => expectClose(ref.params[i], p, { atol: 1e-14, rtol: 1e-12 }, `${label} params[${i}]`));
        c.after[s].m.forEach((m, i) => expectClose(ref.m[i], m, { atol: 1e-14, rtol: 1e-12 }, `${label} m[${i}]`));
        c.after[s].v.forEach((v, i) => expectClose(ref.v[i], v, { atol: 1e-16, rtol: 1e-12 }, `${label} v[${i}]`));
      });
    }
  });

  it('torch fixture: the GPU matches torch step by step (no clipping, clipping triggered, not triggered)', async () => {
    const engine = await gpuEngine();
    for (const c of torchCases) {
      const got = await runGpu(engine, c.params, c.shapes, c.grads, c.hyper);
      expectTrajectory(got, c.after.map((a, s) => ({ ...a, norm: c.gradNorms[s] })), c.hyper.lr);
    }
  });

  it.each([
    ['clipping triggers', 1],
    ['clipping does not trigger', 1e4],
    ['no clipping', null],
  ] as const)(`%s (maxGradNorm %s): ${STEPS}-step trajectory matches the reference`, async (_, maxGradNorm) => {
    const engine = await gpuEngine();
    const hyper = { ...BASE, maxGradNorm };
    const want = referenceTrajectory(initialParams, stepGrads, hyper);
    if (maxGradNorm !== null) {
      const triggered = want.map((w) => w.norm > maxGradNorm);
      expect(triggered, 'whether each step clips').toEqual(Array(STEPS).fill(maxGradNorm === 1));
    }
    expectTrajectory(await runGpu(engine, initialParams, SHAPES, stepGrads, hyper), want, hyper.lr);
  });

  it('is deterministic: two optimisers on the same inputs agree bit for bit', async () => {
    const engine = await gpuEngine();
    const hyper = { ...BASE, maxGradNorm: 1 };
    const first = await runGpu(engine, initialParams, SHAPES, stepGrads, hyper);
    const second = await runGpu(engine, initialParams, SHAPES, stepGrads, hyper);
    expectBitIdentical(Float32Array.from(first.gradNorms), Float32Array.from(second.gradNorms), 'gradNorm');
    for (let s = 0; s < STEPS; s++)
      for (let i = 0; i < SHAPES.length; i++) {
        expectBitIdentical(first.params[s][i], second.params[s][i], `params[${i}]`);
        expectBitIdentical(first.m[s][i], second.m[s][i], `m[${i}]`);
        expectBitIdentical(first.v[s][i], second.v[s][i], `v[${i}]`);
      }
  });

  it('folds its launches over a 2-D grid when a dimension would exceed the device limit', async () => {
    const engine = await smallGridEngine(8); // 10000 elements: 10 partial sums, 40 update workgroups
    const shapes = [[10000], [3]];
    const initial = shapes.map((s, i) => randomArray(70 + i, s[0]));
    const grads = [0, 1].map((s) => shapes.map((shape, i) => randomArray(80 + 2 * s + i, shape[0])));
    const hyper = { ...BASE, maxGradNorm: 1 };
    expectTrajectory(await runGpu(engine, initial, shapes, grads, hyper), referenceTrajectory(initial, grads, hyper), hyper.lr);
    engine.destroy();
  });

  it('skips the whole update when a gradient is NaN or infinite (parameters and moments keep their values)', async () => {
    const engine = await gpuEngine();
    const hyper = { ...BASE, maxGradNorm: 1 };
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY]) {
      const grads = [stepGrads[0], stepGrads[1].map((g, i) => (i === 3 ? Float32Array.from(g, (v, k) => (k === 1234 ? bad : v)) : g))];
      const got = await runGpu(engine, initialParams, SHAPES, grads, hyper);
      expect(Number.isFinite(got.gradNorms[1]), `step 2 gradNorm with a ${bad} gradient`).toBe(false);
      for (let i = 0; i < SHAPES.length; i++) {
        expectBitIdentical(got.params[1][i], got.params[0][i], `params[${i}] after the skipped step`);
        expectBitIdentical(got.m[1][i], got.m[0][i], `m[${i}] after the skipped step`);
        expectBitIdentical(got.v[1][i], got.v[0][i], `v[${i}] after the skipped step`);
      }
      const [first, second] = referenceTrajectory(initialParams, grads, hyper);
      expect(Number.isFinite(second.norm), 'reference norm').toBe(false);
      expect(second.params, 'the reference skips too').toEqual(first.params);
    }
  });

  it('rejects bad gradients and hyper-parameters, naming the problem', async () => {
    const engine = await gpuEngine();
    const params = [engine.alloc([3, 4]), engine.alloc([5])];
    const grads = [engine.alloc([3, 4]), engine.alloc([5])];
    const wrong = engine.alloc([4, 3]);
    expect(() => new AdamW(engine, [])).toThrow('AdamW: no parameters to optimise');
    expect(() => new AdamW(engine, [params[0], params[0]])).toThrow('AdamW: params[1] is the same buffer as params[0]');
    const optimiser = new AdamW(engine, params);
    const hyper = { ...BASE, maxGradNorm: 1, step: 1 };
    expect(() => optimiser.step([grads[0]], hyper)).toThrow('AdamW.step: got 1 gradients for 2 parameters');
    expect(() => optimiser.step([wrong, grads[1]], hyper)).toThrow('AdamW.step: grads[0] has shape [4, 3], expected [3, 4]');
    expect(() => optimiser.step([grads[0], params[1]], hyper)).toThrow('AdamW.step: grads[1] is the same buffer as params[1]');
    expect(() => optimiser.step(grads, { ...hyper, step: 0 })).toThrow('AdamW.step: step must be an integer ≥ 1, got 0');
    expect(() => optimiser.step(grads, { ...hyper, beta1: 1 })).toThrow('AdamW.step: beta1 must be in [0, 1), got 1');
    expect(() => optimiser.step(grads, { ...hyper, lr: Number.NaN })).toThrow('AdamW.step: lr must be a finite number ≥ 0, got NaN');
    expect(() => optimiser.step(grads, { ...hyper, maxGradNorm: 0 })).toThrow('AdamW.step: maxGradNorm must be null or a finite number > 0, got 0');
    expect(() => optimiser.step(grads, { ...hyper, eps: 0 })).toThrow('AdamW.step: eps must be a finite number > 0, got 0');
    optimiser.release();
    expect(() => optimiser.step(grads, hyper)).toThrow('AdamW.step: the optimiser was released');
    engine.release(...params, ...grads, wrong);
  });
});
