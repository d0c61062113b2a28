import { describe, expect, it } from 'vitest';
import type { Engine } from '../../src/engine/engine.ts';
import { POOLING_MODES, type PoolingMode, poolBackward, poolForward } from '../../src/engine/ops/pooling.ts';
import { poolBackwardRef, poolForwardRef } from '../../src/engine/ops/pooling.ref.ts';
import { gpuEngine } from '../helpers/gpu.ts';
import { layerOpsFixture } from '../helpers/layer-ops-fixture.ts';
import { dot, expectBitIdentical, expectClose, finiteDifferenceGrad, randomArray } from '../helpers/numeric.ts';
import { sentencePoolingFixture } from '../helpers/sentence-fixtures.ts';
import { smallGridEngine } from '../helpers/small-grid.ts';

interface Case {
  batch: number;
  seq: number;
  hidden: number;
  lengths: number[];
  /** Leading tokens left out of the pooling (a prompt sentence-transformers excludes), per sequence. */
  skip?: number[];
}

/** Mask [B, T]: sequence b counts tokens skip[b] .. lengths[b] − 1; the rest is padding (or a prompt). */
function poolingMask(c: Case): Float32Array {
  return Float32Array.from({ length: c.batch * c.seq }, (_, i) => {
    const b = Math.floor(i / c.seq);
    const t = i % c.seq;
    return t >= (c.skip?.[b] ?? 0) && t < c.lengths[b] ? 1 : 0;
  });
}

function inputs(c: Case, seed: number) {
  return {
    hidden: randomArray(seed, c.batch * c.seq * c.hidden),
    mask: poolingMask(c),
    dOut: randomArray(seed + 1, c.batch * c.hidden),
  };
}

type Pooled = Record<PoolingMode, { out: Float32Array; dHidden: Float32Array }>;

async function runPooling(engine: Engine, c: Case, data: ReturnType<typeof inputs>): Promise<Pooled> {
  const tokens = [c.batch, c.seq, c.hidden];
  const hidden = engine.upload(data.hidden, tokens);
  const mask = engine.upload(data.mask, [c.batch, c.seq]);
  const dOut = engine.upload(data.dOut, [c.batch, c.hidden]);
  const result = {} as Pooled;
  for (const mode of POOLING_MODES) {
    const out = engine.alloc([c.batch, c.hidden]);
    const dHidden = engine.alloc(tokens);
    const saved = poolForward(engine, mode, hidden, mask, out);
    poolBackward(engine, mode, saved, dOut, dHidden);
    result[mode] = { out: await engine.readF32(out), dHidden: await engine.readF32(dHidden) };
    engine.release(out, dHidden, saved);
  }
  engine.release(hidden, mask, dOut);
  return result;
}

/**
 * Tolerances: the weighted sums add ≤ T terms of unit size with weights that sum to 1 (mean,
 * weighted mean) or √n (mean-sqrt-len), so 1e-6 absolute; the backward is one product with a
 * weight rounded once (1e-6 relative); CLS, last-token and max copy values, so they are exact.
 */
function expectMatchesReference(got: Pooled, c: Case, data: ReturnType<typeof inputs>) {
  const { batch, seq, hidden } = c;
  for (const mode of POOLING_MODES) {
    const exact = mode === 'cls' || mode === 'last-token' || mode === 'max';
    const tol = exact ? { atol: 0, rtol: 0 } : { atol: 1e-6, rtol: 1e-6 };
    expectClose(got[mode].out, poolForwardRef(mode, data.hidden, data.mask, batch, seq, hidden), tol, `${mode} out`);
    expectClose(got[mode].dHidden, poolBackwardRef(mode, data.hidden, data.mask, data.dOut, batch, seq, hidden), exact ? tol : { atol: 0, rtol: 1e-6 }, `${mode} dHidden`);
  }
}

describe('pooling', () => {
  it.each([
    { batch: 1, seq: 1, hidden: 1, lengths: [1] },
    { batch: 2, seq: 7, hidden: 72, lengths: [7, 3] },
    { batch: 3, seq: 33, hidden: 5, lengths: [33, 1, 20] },
    { batch: 5, seq: 7, hidden: 200, lengths: [7, 6, 5, 2, 1] },
    { batch: 2, seq: 129, hidden: 3, lengths: [129, 64] },
    { batch: 3, seq: 11, hidden: 13, lengths: [11, 9, 4], skip: [3, 3, 3] },
  ])('every mode, forward and backward, matches the float64 reference, %o', async (c) => {
    const data = inputs(c, c.seq * 13 + c.hidden);
    expectMatchesReference(await runPooling(await gpuEngine(), c, data), c, data);
  });

  it('a sequence with no counted token pools to 0 (max: −1e9) with zero gradient, except CLS', async () => {
    const c = { batch: 3, seq: 6, hidden: 9, lengths: [6, 0, 2] };
    const data = inputs(c, 4);
    const got = await runPooling(await gpuEngine(), c, data);
    expectMatchesReference(got, c, data);
    for (const mode of ['mean', 'mean-sqrt-len', 'weighted-mean', 'last-token', 'max'] as const) {
      const empty = mode === 'max' ? -1e9 : 0;
      expect(got[mode].out.subarray(9, 18).every((v) => v === empty), mode).toBe(true);
      expect(got[mode].dHidden.subarray(54, 108).every((v) => v === 0), mode).toBe(true);
    }
    expect(got.cls.out.subarray(9, 18)).toEqual(data.hidden.subarray(54, 63));
  });

  it.each(layerOpsFixture.meanPool)('float64 mean pooling matches torch (sentence-transformers formula, committed fixture), lengths $lengths', (c) => {
    const tol = { atol: 1e-12, rtol: 1e-12 };
    expectClose(poolForwardRef('mean', c.hidden, c.mask, c.batch, c.seq, c.width), c.out, tol, 'out');
    expectClose(poolBackwardRef('mean', c.hidden, c.mask, c.dOut, c.batch, c.seq, c.width), c.dHidden, tol, 'dHidden');
  });

  it.each(sentencePoolingFixture().cases)('float64 $mode pooling matches torch autograd (sentence-transformers Pooling, committed fixture)', (c) => {
    const tol = { atol: 1e-12, rtol: 1e-12 };
    expectClose(poolForwardRef(c.mode, c.hidden, c.mask, c.batch, c.seq, c.width), c.out, tol, 'out');
    expectClose(poolBackwardRef(c.mode, c.hidden, c.mask, c.dOut, c.batch, c.seq, c.width), c.dHidden, tol, 'dHidden');
  });

  it.each(POOLING_MODES)('float64 %s backward matches central finite differences, with padded tails and a skipped prompt', (mode) => {
    const c = { batch: 3, seq: 5, hidden: 4, lengths: [5, 3, 2], skip: [0, 1, 0] };
    const data = inputs(c, 6);
    const { batch, seq, hidden } = c;
    const loss = (h: ArrayLike<number>) => dot(poolForwardRef(mode, h, data.mask, batch, seq, hidden), data.dOut);
    expectClose(poolBackwardRef(mode, data.hidden, data.mask, data.dOut, batch, seq, hidden), finiteDifferenceGrad(loss, data.hidden), { atol: 1e-7, rtol: 1e-6 }, mode);
  });

  it('folds launches over a 2-D grid past the per-dimension workgroup limit (limit lowered to 3)', async () => {
    const engine = await smallGridEngine(3);
    // pooled: 900 elements, 4 workgroups (2x2); token gradients: 1800 elements, 8 workgroups (3x3, one idle)
    const c = { batch: 3, seq: 2, hidden: 300, lengths: [2, 1, 2] };
    const data = inputs(c, 9);
    expectMatchesReference(await runPooling(engine, c, data), c, data);
    engine.destroy();
  });

  it('is deterministic: two runs are bit-identical', async () => {
    const c = { batch: 4, seq: 33, hidden: 40, lengths: [33, 20, 7, 1] };
    const data = inputs(c, 2);
    const first = await runPooling(await gpuEngine(), c, data);
    const second = await runPooling(await gpuEngine(), c, data);
    for (const mode of POOLING_MODES) {
      expectBitIdentical(first[mode].out, second[mode].out, `${mode} out`);
      expectBitIdentical(first[mode].dHidden, second[mode].dHidden, `${mode} dHidden`);
    }
  });

  it('rejects bad shapes, modes and in-place use, naming the tensor', async () => {
    const engine = await gpuEngine();
    const hidden = engine.alloc([2, 3, 4]);
    const mask = engine.alloc([2, 3]);
    const out = engine.alloc([2, 4]);
    const wrongMask = engine.alloc([2, 4]);
    const wrongOut = engine.alloc([3, 4]);
    const argmax = engine.alloc([2, 4], 'u32');
    expect(() => poolForward(engine, 'mean', hidden, wrongMask, out)).toThrow(/poolForward: mask has shape \[2, 4\], expected \[2, 3\]/);
    expect(() => poolForward(engine, 'max', hidden, mask, wrongOut)).toThrow(/poolForward: out has shape \[3, 4\], expected \[2, 4\]/);
    expect(() => poolForward(engine, 'cls', out, mask, out)).toThrow(/hidden must be \[batch, seq, hidden\], got shape \[2, 4\]/);
    expect(() => poolForward(engine, 'median' as PoolingMode, hidden, mask, out)).toThrow(/pooling must be one of cls, mean, max, mean-sqrt-len, weighted-mean, last-token, got median/);
    expect(() => poolBackward(engine, 'mean', mask, wrongOut, hidden)).toThrow(/poolBackward: dOut has shape \[3, 4\], expected \[2, 4\]/);
    expect(() => poolBackward(engine, 'mean', mask, out, out)).toThrow(/dHidden must be \[batch, seq, hidden\]/);
    expect(() => poolBackward(engine, 'max', mask, out, hidden)).toThrow(/poolBackward: argmax must be u32, got f32/);
    expect(() => poolBackward(engine, 'last-token', argmax, out, hidden)).toThrow(/poolBackward: weights must be f32, got u32/);
    const intHidden = engine.alloc([2, 3, 4], 'u32');
    expect(() => poolBackward(engine, 'cls', mask, out, intHidden)).toThrow(/dHidden must be f32, got u32/);
    engine.release(hidden, mask, out, wrongMask, wrongOut, argmax, intHidden);
  });
});
