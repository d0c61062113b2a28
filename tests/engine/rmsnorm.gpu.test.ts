import { describe, expect, it } from 'vitest';
import type { Engine } from '../../src/engine/engine.ts';
import { rmsNormBackward, rmsNormForward } from '../../src/engine/ops/rmsnorm.ts';
import { rmsNormBackwardRef, rmsNormForwardRef } from '../../src/engine/ops/rmsnorm.ref.ts';
import { gpuEngine } from '../helpers/gpu.ts';
import { expectBitIdentical, expectClose, randomArray } from '../helpers/numeric.ts';
import { smallGridEngine } from '../helpers/small-grid.ts';

function inputs(rows: number, width: number, seed: number) {
  return {
    x: randomArray(seed, rows * width, 2),
    weight: randomArray(seed + 1, width, 0.3).map((v) => v + 1),
    dy: randomArray(seed + 2, rows * width),
  };
}

async function runRmsNorm(engine: Engine, rows: number, width: number, data: ReturnType<typeof inputs>, eps: number) {
  const x = engine.upload(data.x, [rows, width]);
  const weight = engine.upload(data.weight, [width]);
  const dy = engine.upload(data.dy, [rows, width]);
  const y = engine.alloc([rows, width]);
  const rstd = engine.alloc([rows]);
  const dx = engine.alloc([rows, width]);
  const dweight = engine.alloc([width]);
  rmsNormForward(engine, x, weight, y, rstd, eps);
  rmsNormBackward(engine, x, weight, rstd, dy, dx, dweight);
  const out = { y: await engine.readF32(y), rstd: await engine.readF32(rstd), dx: await engine.readF32(dx), dweight: await engine.readF32(dweight) };
  engine.release(x, weight, dy, y, rstd, dx, dweight);
  return out;
}

/** y and dx compare divided by rstd (their rounding error scales with it); dweight adds one term per row. */
function expectMatchesReference(got: Awaited<ReturnType<typeof runRmsNorm>>, data: ReturnType<typeof inputs>, rows: number, width: number, eps: number) {
  const ref = rmsNormForwardRef(data.x, data.weight, width, eps);
  const back = rmsNormBackwardRef(data.x, data.weight, ref.rstd, data.dy, width);
  const perRstd = (v: ArrayLike<number>) => Float64Array.from(v, (value, i) => value / ref.rstd[Math.floor(i / width)]);
  expectClose(perRstd(got.y), perRstd(ref.y), { atol: 5e-6, rtol: 1e-6 }, 'y/rstd');
  expectClose(got.rstd, ref.rstd, { atol: 0, rtol: 1e-6 }, 'rstd');
  expectClose(perRstd(got.dx), perRstd(back.dx), { atol: 2e-5, rtol: 1e-6 }, 'dx/rstd');
  expectClose(got.dweight, back.dweight, { atol: 2e-6 * Math.sqrt(rows), rtol: 1e-6 }, 'dweight');
}

describe('RMSNorm', () => {
  it.each([
    [1, 3],
    [3, 64],
    [17, 96],
    [65, 129],
    [4, 896],
  ])('forward and backward match the float64 reference, rows=%i hidden=%i', async (rows, width) => {
    const data = inputs(rows, width, rows * 17 + width);
    expectMatchesReference(await runRmsNorm(await gpuEngine(), rows, width, data, 1e-6), data, rows, width, 1e-6);
  });

  it("Qwen3's per-head q/k norm: a [tokens, heads·headDim] projection viewed as [tokens·heads, headDim]", async () => {
    const engine = await gpuEngine();
    const [tokens, heads, headDim] = [5, 3, 16];
    const data = inputs(tokens * heads, headDim, 12);
    const projection = engine.upload(data.x, [tokens, heads * headDim]);
    const y = engine.alloc([tokens * heads, headDim]);
    const rstd = engine.alloc([tokens * heads]);
    rmsNormForward(engine, { ...projection, shape: [tokens * heads, headDim] }, engine.upload(data.weight, [headDim]), y, rstd, 1e-6);
    const ref = rmsNormForwardRef(data.x, data.weight, headDim, 1e-6);
    expectClose(await engine.readF32(y), ref.y, { atol: 5e-6, rtol: 1e-6 }, 'y');
    engine.release(projection, y, rstd);
  });

  it('a zero row gives y = 0 and finite gradients (rstd = 1/sqrt(eps))', async () => {
    const width = 8;
    const data = inputs(2, width, 4);
    data.x.fill(0, 0, width);
    const got = await runRmsNorm(await gpuEngine(), 2, width, data, 1e-5);
    expectClose(got.y.subarray(0, width), new Float64Array(width), { atol: 0, rtol: 0 }, 'zero row y');
    expect(got.rstd[0]).toBeCloseTo(1 / Math.sqrt(1e-5), 2);
    expect(got.dx.every(Number.isFinite)).toBe(true);
  });

  it('folds launches over a 2-D grid past the per-dimension workgroup limit (limit lowered to 3)', async () => {
    const engine = await smallGridEngine(3);
    const rows = 16 * 7 + 3; // 8 row workgroups: a 3x3 grid with one idle
    const width = 64 * 4 + 5; // 5 column workgroups for dweight
    const data = inputs(rows, width, 6);
    expectMatchesReference(await runRmsNorm(engine, rows, width, data, 1e-5), data, rows, width, 1e-5);
    engine.destroy();
  });

  it('is deterministic: two runs are bit-identical', async () => {
    const data = inputs(100, 96, 9);
    const first = await runRmsNorm(await gpuEngine(), 100, 96, data, 1e-6);
    const second = await runRmsNorm(await gpuEngine(), 100, 96, data, 1e-6);
    for (const key of ['y', 'rstd', 'dx', 'dweight'] as const) expectBitIdentical(first[key], second[key], key);
  });

  it('rejects mismatched shapes and in-place use, naming the tensor', async () => {
    const engine = await gpuEngine();
    const x = engine.alloc([4, 6]);
    const weight = engine.alloc([6]);
    const y = engine.alloc([4, 6]);
    const rstd = engine.alloc([4]);
    const wrong = engine.alloc([5]);
    expect(() => rmsNormForward(engine, x, wrong, y, rstd, 1e-6)).toThrow(/rmsNormForward: weight has shape \[5\], expected \[6\]/);
    expect(() => rmsNormForward(engine, x, weight, y, wrong, 1e-6)).toThrow(/rstd has shape \[5\], expected \[4\]/);
    expect(() => rmsNormForward(engine, x, weight, x, rstd, 1e-6)).toThrow(/output y shares a buffer with input x/);
    expect(() => rmsNormForward(engine, x, weight, y, rstd, -1)).toThrow(/eps must be a positive number/);
    expect(() => rmsNormForward(engine, weight, weight, y, rstd, 1e-6)).toThrow(/x must be 2-D/);
    expect(() => rmsNormBackward(engine, x, weight, rstd, y, wrong)).toThrow(/rmsNormBackward: dx has shape \[5\], expected \[4, 6\]/);
    expect(() => rmsNormBackward(engine, x, weight, rstd, y, y)).toThrow(/output dx shares a buffer with input dy/);
    const dx = engine.alloc([4, 6]);
    expect(() => rmsNormBackward(engine, x, weight, rstd, y, dx, wrong)).toThrow(/dweight has shape \[5\], expected \[6\]/);
    engine.release(x, weight, y, rstd, wrong, dx);
  });
});
