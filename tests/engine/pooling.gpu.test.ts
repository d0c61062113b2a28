import { describe, expect, it } from 'vitest';
import type { Engine } from '../../src/engine/engine.ts';
import { clsPoolBackward, clsPoolForward, meanPoolBackward, meanPoolForward } from '../../src/engine/ops/pooling.ts';
import { clsPoolBackwardRef, clsPoolForwardRef, meanPoolBackwardRef, meanPoolForwardRef } from '../../src/engine/ops/pooling.ref.ts';
import { gpuEngine } from '../helpers/gpu.ts';
import { layerOpsFixture } from '../helpers/layer-ops-fixture.ts';
import { dot, expectBitIdentical, expectClose, finiteDifferenceGrad, randomArray } from '../helpers/numeric.ts';
import { smallGridEngine } from '../helpers/small-grid.ts';

interface Case {
  batch: number;
  seq: number;
  hidden: number;
  lengths: number[];
}

/** Mask [B, T]: sequence b has lengths[b] real tokens, then padding to the end. */
function paddingMask(seq: number, lengths: number[]): Float32Array {
  return Float32Array.from({ length: lengths.length * seq }, (_, i) => (i % seq < lengths[Math.floor(i / seq)] ? 1 : 0));
}

function inputs(c: Case, seed: number) {
  return {
    hidden: randomArray(seed, c.batch * c.seq * c.hidden),
    mask: paddingMask(c.seq, c.lengths),
    dOut: randomArray(seed + 1, c.batch * c.hidden),
  };
}

async function runPooling(engine: Engine, c: Case, data: ReturnType<typeof inputs>) {
  const tokens = [c.batch, c.seq, c.hidden];
  const pooled = [c.batch, c.hidden];
  const hidden = engine.upload(data.hidden, tokens);
  const mask = engine.upload(data.mask, [c.batch, c.seq]);
  const dOut = engine.upload(data.dOut, pooled);
  const mean = engine.alloc(pooled);
  const cls = engine.alloc(pooled);
  const dMean = engine.alloc(tokens);
  const dCls = engine.alloc(tokens);
  meanPoolForward(engine, hidden, mask, mean);
  meanPoolBackward(engine, mask, dOut, dMean);
  clsPoolForward(engine, hidden, cls);
  clsPoolBackward(engine, dOut, dCls);
  const out = {
    mean: await engine.readF32(mean),
    dMean: await engine.readF32(dMean),
    cls: await engine.readF32(cls),
    dCls: await engine.readF32(dCls),
  };
  engine.release(hidden, mask, dOut, mean, cls, dMean, dCls);
  return out;
}

/**
 * Tolerances: the mean is a sum of ≤ T unit values over an exact integer count (5e-7; largest error
 * seen 1e-7); its backward is one multiply and divide (1e-7 relative); CLS pooling copies, so exact.
 */
function expectMatchesReference(got: Awaited<ReturnType<typeof runPooling>>, c: Case, data: ReturnType<typeof inputs>) {
  const { batch, seq, hidden } = c;
  expectClose(got.mean, meanPoolForwardRef(data.hidden, data.mask, batch, seq, hidden), { atol: 5e-7, rtol: 1e-6 }, 'mean');
  expectClose(got.dMean, meanPoolBackwardRef(data.mask, data.dOut, batch, seq, hidden), { atol: 0, rtol: 1e-7 }, 'dMean');
  expectClose(got.cls, clsPoolForwardRef(data.hidden, batch, seq, hidden), { atol: 0, rtol: 0 }, 'cls');
  expectClose(got.dCls, clsPoolBackwardRef(data.dOut, batch, seq, hidden), { atol: 0, rtol: 0 }, 'dCls');
}

describe('pooling', () => {
  it.each([
    { batch: 1, seq: 1, hidden: 1, lengths: [1] },
    { batch: 2, seq: 7, hidden: 72, lengths: [7, 3] },
    { batch: 3, seq: 33, hidden: 5, lengths: [33, 1, 20] },
    { batch: 5, seq: 7, hidden: 200, lengths: [7, 6, 5, 2, 1] },
    { batch: 2, seq: 129, hidden: 3, lengths: [129, 64] },
  ])('mean and CLS pooling forward and backward match the float64 reference, %o', async (c) => {
    const data = inputs(c, c.seq * 13 + c.hidden);
    expectMatchesReference(await runPooling(await gpuEngine(), c, data), c, data);
  });

  it('a sequence with no real token mean-pools to 0 with zero gradient', async () => {
    const c = { batch: 3, seq: 6, hidden: 9, lengths: [6, 0, 2] };
    const data = inputs(c, 4);
    const got = await runPooling(await gpuEngine(), c, data);
    expectMatchesReference(got, c, data);
    expect(got.mean.subarray(9, 18).every((v) => v === 0)).toBe(true);
    expect(got.dMean.subarray(54, 108).every((v) => v === 0)).toBe(true);
  });

  it.each(layerOpsFixture.meanPool)('float64 mean pooling matches torch (sentence-transformers formula, committed fixture), lengths $lengths', (c) => {
    const tol = { atol: 1e-12, rtol: 1e-12 };
    expectClose(meanPoolForwardRef(c.hidden, c.mask, c.batch, c.seq, c.width), c.out, tol, 'out');
    expectClose(meanPoolBackwardRef(c.mask, c.dOut, c.batch, c.seq, c.width), c.dHidden, tol, 'dHidden');
  });

  it('float64 backward matches central finite differences (mean and CLS), with padded tails', () => {
    const c = { batch: 3, seq: 4, hidden: 5, lengths: [4, 2, 1] };
    const data = inputs(c, 6);
    const { batch, seq, hidden } = c;
    const tol = { atol: 1e-7, rtol: 1e-6 };
    const meanLoss = (h: ArrayLike<number>) => dot(meanPoolForwardRef(h, data.mask, batch, seq, hidden), data.dOut);
    expectClose(meanPoolBackwardRef(data.mask, data.dOut, batch, seq, hidden), finiteDifferenceGrad(meanLoss, data.hidden), tol, 'dMean');
    const clsLoss = (h: ArrayLike<number>) => dot(clsPoolForwardRef(h, batch, seq, hidden), data.dOut);
    expectClose(clsPoolBackwardRef(data.dOut, batch, seq, hidden), finiteDifferenceGrad(clsLoss, data.hidden), tol, 'dCls');
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
    for (const key of ['mean', 'dMean', 'cls', 'dCls'] as const) expectBitIdentical(first[key], second[key], key);
  });

  it('rejects bad shapes and in-place use, naming the tensor', async () => {
    const engine = await gpuEngine();
    const hidden = engine.alloc([2, 3, 4]);
    const mask = engine.alloc([2, 3]);
    const out = engine.alloc([2, 4]);
    const wrongMask = engine.alloc([2, 4]);
    const wrongOut = engine.alloc([3, 4]);
    expect(() => meanPoolForward(engine, hidden, wrongMask, out)).toThrow(/meanPoolForward: mask has shape \[2, 4\], expected \[2, 3\]/);
    expect(() => meanPoolForward(engine, hidden, mask, wrongOut)).toThrow(/meanPoolForward: out has shape \[3, 4\], expected \[2, 4\]/);
    expect(() => meanPoolForward(engine, out, mask, out)).toThrow(/hidden must be \[batch, seq, hidden\], got shape \[2, 4\]/);
    expect(() => meanPoolBackward(engine, mask, wrongOut, hidden)).toThrow(/meanPoolBackward: dOut has shape \[3, 4\], expected \[2, 4\]/);
    expect(() => meanPoolBackward(engine, mask, out, out)).toThrow(/dHidden must be \[batch, seq, hidden\]/);
    expect(() => clsPoolForward(engine, hidden, wrongOut)).toThrow(/clsPoolForward: out has shape \[3, 4\]/);
    expect(() => clsPoolBackward(engine, wrongOut, hidden)).toThrow(/clsPoolBackward: dOut has shape \[3, 4\]/);
    const intHidden = engine.alloc([2, 3, 4], 'u32');
    expect(() => clsPoolBackward(engine, out, intHidden)).toThrow(/dHidden must be f32, got u32/);
    engine.release(hidden, mask, out, wrongMask, wrongOut, intHidden);
  });
});
