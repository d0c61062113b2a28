import { describe, expect, it } from 'vitest';
import type { Engine } from '../../src/engine/engine.ts';
import { layerNormBackward, layerNormForward } from '../../src/engine/ops/layernorm.ts';
import { layerNormBackwardRef, layerNormForwardRef } from '../../src/engine/ops/layernorm.ref.ts';
import { packHalfRef, unpackHalfRef } from '../../src/engine/ops/half.ref.ts';
import { releaseStored, storeMatrix } from '../../src/engine/stored.ts';
import { rowsPerWorkgroup } from '../../src/engine/ops/reductions.ts';
import { gpuEngine } from '../helpers/gpu.ts';
import { layerOpsFixture } from '../helpers/layer-ops-fixture.ts';
import { smallGridEngine } from '../helpers/small-grid.ts';
import { dot, expectBitIdentical, expectClose, finiteDifferenceGrad, randomArray } from '../helpers/numeric.ts';

const BERT_EPS = 1e-12;

/** Rows centred off zero (offset 1, spread 2) so the two-pass variance matters. */
function inputs(rows: number, width: number, seed: number) {
  return {
    x: randomArray(seed, rows * width, 2).map((v) => v + 1),
    gamma: randomArray(seed + 1, width, 0.1).map((v) => v + 1),
    beta: randomArray(seed + 2, width, 0.1),
    dy: randomArray(seed + 3, rows * width),
  };
}

/** gamma and beta as f32 tensors, or with `half` stored as packed f16 (stored.ts). */
async function runLayerNorm(engine: Engine, rows: number, width: number, data: ReturnType<typeof inputs>, eps: number, half = false) {
  const x = engine.upload(data.x, [rows, width]);
  const store = (name: string, v: Float32Array) => (half ? storeMatrix(engine, name, v, [1, width], 'f16') : engine.upload(v, [width]));
  const gamma = store('gamma', data.gamma);
  const beta = store('beta', data.beta);
  const dy = engine.upload(data.dy, [rows, width]);
  const y = engine.alloc([rows, width]);
  const mean = engine.alloc([rows]);
  const rstd = engine.alloc([rows]);
  const dx = engine.alloc([rows, width]);
  const dgamma = engine.alloc([width]);
  const dbeta = engine.alloc([width]);
  layerNormForward(engine, x, gamma, beta, y, mean, rstd, eps);
  layerNormBackward(engine, x, gamma, mean, rstd, dy, dx, { dgamma, dbeta });
  const out = {
    y: await engine.readF32(y),
    mean: await engine.readF32(mean),
    rstd: await engine.readF32(rstd),
    dx: await engine.readF32(dx),
    dgamma: await engine.readF32(dgamma),
    dbeta: await engine.readF32(dbeta),
  };
  engine.release(x, dy, y, mean, rstd, dx, dgamma, dbeta);
  for (const v of [gamma, beta]) {
    if ('blocks' in v) releaseStored(engine, v);
    else engine.release(v);
  }
  return out;
}

/**
 * Compare the GPU results with the float64 ones. Rounding error in xhat grows with the row's rstd
 * (rows of nearly equal values are ill-conditioned, in f32 and float64 alike), so y and dx are
 * compared divided by rstd. Largest errors seen: y/rstd and mean 1.2e-6, dx/rstd 9e-6 (70001 rows of
 * width 3, rstd up to 211), rstd 5e-8 relative, dgamma/dbeta 7e-6 at 1000 rows.
 */
function expectMatchesReference(got: Awaited<ReturnType<typeof runLayerNorm>>, data: ReturnType<typeof inputs>, rows: number, width: number, eps: number) {
  const ref = layerNormForwardRef(data.x, data.gamma, data.beta, width, eps);
  const back = layerNormBackwardRef(data.x, data.gamma, ref.mean, ref.rstd, data.dy, width);
  const perRstd = (v: ArrayLike<number>) => Float64Array.from(v, (value, i) => value / ref.rstd[Math.floor(i / width)]);
  expectClose(perRstd(got.y), perRstd(ref.y), { atol: 5e-6, rtol: 1e-6 }, 'y/rstd');
  expectClose(got.mean, ref.mean, { atol: 1e-6, rtol: 1e-6 }, 'mean');
  expectClose(got.rstd, ref.rstd, { atol: 0, rtol: 1e-6 }, 'rstd');
  expectClose(perRstd(got.dx), perRstd(back.dx), { atol: 2e-5, rtol: 1e-6 }, 'dx/rstd');
  const sumTol = 2e-6 * Math.sqrt(rows); // dgamma/dbeta add one term per row
  expectClose(got.dgamma, back.dgamma, { atol: sumTol, rtol: 1e-6 }, 'dgamma');
  expectClose(got.dbeta, back.dbeta, { atol: sumTol, rtol: 1e-6 }, 'dbeta');
}

describe('LayerNorm', () => {
  it.each([
    [1, 1],
    [1, 7],
    [7, 72],
    [33, 200],
    [129, 33],
    [5, 1025],
    [1000, 7],
    [70_001, 3],
  ])('forward and backward match the float64 reference, rows=%i hidden=%i', async (rows, width) => {
    const data = inputs(rows, width, rows * 31 + width);
    const got = await runLayerNorm(await gpuEngine(), rows, width, data, BERT_EPS);
    expectMatchesReference(got, data, rows, width, BERT_EPS);
  });

  it('a constant row normalises to beta with eps=1e-12 and finite gradients', async () => {
    const width = 72;
    const data = inputs(2, width, 3);
    data.x.fill(2, 0, width); // sums exactly in f32, so mean is exact and the variance is 0
    const got = await runLayerNorm(await gpuEngine(), 2, width, data, BERT_EPS);
    expectClose(got.y.subarray(0, width), data.beta, { atol: 0, rtol: 0 }, 'constant row y');
    expect(got.rstd[0]).toBeCloseTo(1e6, -1);
    expect(got.dx.every(Number.isFinite)).toBe(true);
  });

  it('folds launches over a 2-D grid past the per-dimension workgroup limit (limit lowered to 5)', async () => {
    const engine = await smallGridEngine(5);
    // 11 row workgroups (of 16 rows, or 1 with subgroups): a 4x3 grid with one idle workgroup
    const rows = rowsPerWorkgroup(engine) * 10 + 1;
    const width = 200; // 4 column blocks x (3 or 1) row chunks for dgamma/dbeta, 200 columns for the final sum
    const data = inputs(rows, width, 11);
    expectMatchesReference(await runLayerNorm(engine, rows, width, data, 1e-5), data, rows, width, 1e-5);
    engine.destroy();
  });

  it.each(layerOpsFixture.layernorm)('float64 reference matches torch F.layer_norm (committed fixture), $rows x $width', (c) => {
    const ref = layerNormForwardRef(c.x, c.gamma, c.beta, c.width, c.eps);
    const back = layerNormBackwardRef(c.x, c.gamma, ref.mean, ref.rstd, c.dy, c.width);
    const tol = { atol: 1e-12, rtol: 1e-12 };
    expectClose(ref.y, c.y, tol, 'y');
    expectClose(back.dx, c.dx, tol, 'dx');
    expectClose(back.dgamma, c.dgamma, tol, 'dgamma');
    expectClose(back.dbeta, c.dbeta, tol, 'dbeta');
  });

  it('float64 backward matches central finite differences (x, gamma, beta)', () => {
    const rows = 3;
    const width = 7;
    const data = inputs(rows, width, 5);
    const eps = 1e-5;
    const loss = (x: ArrayLike<number>, gamma: ArrayLike<number>, beta: ArrayLike<number>) =>
      dot(layerNormForwardRef(x, gamma, beta, width, eps).y, data.dy);
    const ref = layerNormForwardRef(data.x, data.gamma, data.beta, width, eps);
    const back = layerNormBackwardRef(data.x, data.gamma, ref.mean, ref.rstd, data.dy, width);
    const tol = { atol: 1e-7, rtol: 1e-6 };
    expectClose(back.dx, finiteDifferenceGrad((x) => loss(x, data.gamma, data.beta), data.x), tol, 'dx');
    expectClose(back.dgamma, finiteDifferenceGrad((g) => loss(data.x, g, data.beta), data.gamma), tol, 'dgamma');
    expectClose(back.dbeta, finiteDifferenceGrad((b) => loss(data.x, data.gamma, b), data.beta), tol, 'dbeta');
  });

  it.each([
    [5, 7],
    [33, 768 + 1],
    [70, 2],
  ])('with gamma and beta stored in f16 equals the f32 kernels on the halved values bit for bit, %i x %i', async (rows, width) => {
    const engine = await gpuEngine();
    const data = inputs(rows, width, rows + width);
    const halve = (v: Float32Array) => Float32Array.from(unpackHalfRef(packHalfRef(v), v.length));
    const halved = { ...data, gamma: halve(data.gamma), beta: halve(data.beta) };
    const got = await runLayerNorm(engine, rows, width, data, BERT_EPS, true);
    const want = await runLayerNorm(engine, rows, width, halved, BERT_EPS);
    for (const key of ['y', 'mean', 'rstd', 'dx', 'dgamma', 'dbeta'] as const) expectBitIdentical(got[key], want[key], key);
  });

  it('is deterministic: two runs are bit-identical', async () => {
    const rows = 300;
    const width = 200;
    const data = inputs(rows, width, 9);
    const first = await runLayerNorm(await gpuEngine(), rows, width, data, BERT_EPS);
    const second = await runLayerNorm(await gpuEngine(), rows, width, data, BERT_EPS);
    for (const key of ['y', 'mean', 'rstd', 'dx', 'dgamma', 'dbeta'] as const) expectBitIdentical(first[key], second[key], key);
  });

  it('rejects mismatched shapes and in-place use, naming the tensor', async () => {
    const engine = await gpuEngine();
    const x = engine.alloc([4, 6]);
    const gamma = engine.alloc([6]);
    const beta = engine.alloc([6]);
    const y = engine.alloc([4, 6]);
    const mean = engine.alloc([4]);
    const rstd = engine.alloc([4]);
    const wrongGamma = engine.alloc([5]);
    const wrongRows = engine.alloc([3]);
    expect(() => layerNormForward(engine, x, wrongGamma, beta, y, mean, rstd, 1e-12)).toThrow(/layerNormForward: gamma has shape \[5\], expected \[6\]/);
    expect(() => layerNormForward(engine, x, gamma, beta, y, wrongRows, rstd, 1e-12)).toThrow(/mean has shape \[3\], expected \[4\]/);
    expect(() => layerNormForward(engine, x, gamma, beta, x, mean, rstd, 1e-12)).toThrow(/output y shares a buffer with input x/);
    expect(() => layerNormForward(engine, x, gamma, beta, y, mean, rstd, 0)).toThrow(/eps must be a positive number/);
    expect(() => layerNormForward(engine, mean, gamma, beta, y, mean, rstd, 1e-12)).toThrow(/x must be \[rows, hidden\]/);
    expect(() => layerNormBackward(engine, x, gamma, mean, rstd, y, wrongRows)).toThrow(/layerNormBackward: dx has shape \[3\], expected \[4, 6\]/);
    expect(() => layerNormBackward(engine, x, gamma, mean, rstd, y, x)).toThrow(/output dx shares a buffer with input x/);
    expect(() =>
      layerNormBackward(engine, x, gamma, mean, rstd, y, beta, { dgamma: wrongGamma, dbeta: beta }),
    ).toThrow(/dx has shape \[6\]/);
    const dx = engine.alloc([4, 6]);
    expect(() => layerNormBackward(engine, x, gamma, mean, rstd, y, dx, { dgamma: wrongGamma, dbeta: beta })).toThrow(/dgamma has shape \[5\], expected \[6\]/);
    engine.release(x, gamma, beta, y, mean, rstd, wrongGamma, wrongRows, dx);
  });
});
