import { describe, expect, it } from 'vitest';
import type { Engine } from '../../src/engine/engine.ts';
import { DeviceLimitError, ShapeError } from '../../src/engine/errors.ts';
import { type MatmulOptions, matmul, matmulNaive } from '../../src/engine/ops/matmul.ts';
import { type MatmulRefOptions, matmulRef } from '../../src/engine/ops/matmul.ref.ts';
import { gpuEngine } from '../helpers/gpu.ts';
import { dot, expectBitIdentical, expectClose, expectWithinBound, finiteDifferenceGrad, randomArray } from '../helpers/numeric.ts';
import { smallGridEngine } from '../helpers/small-grid.ts';

// Tolerance: an f32 dot product of length K is off by at most ~K·2⁻²⁴ of Σ|terms| (worst case), and
// typically ~√K·2⁻²⁴. Each output is checked as |got − want| ≤ BOUND_RTOL · bound, where bound is the
// reference on |a|, |b| (Σ|terms|) plus |bias| and |out_old|. GELU has slope ≤ 1.13 and its erf
// approximation adds ≤ 0.75e-7·|x| ≤ 0.75e-7·bound, so the same bound covers it.
// 2e-6 is ~34 ulps of the bound at K ≤ 200; the worst observed is below 3e-7.
const BOUND_RTOL = 2e-6;

interface Case {
  batch: number;
  M: number;
  N: number;
  K: number;
  transA?: boolean;
  transB?: boolean;
  sharedB?: boolean;
  bias?: boolean;
  activation?: 'none' | 'gelu';
  accumulate?: boolean;
  alpha?: number;
}

function label(c: Case): string {
  const flags = [
    c.transA && 'transA',
    c.transB && 'transB',
    c.sharedB && 'shared b',
    c.bias && 'bias',
    c.activation === 'gelu' && 'gelu',
    c.accumulate && 'accumulate',
    c.alpha !== undefined && `alpha ${c.alpha}`,
  ].filter(Boolean);
  return `batch ${c.batch}, M ${c.M}, N ${c.N}, K ${c.K}${flags.length ? `, ${flags.join(', ')}` : ''}`;
}

const abs = (x: ArrayLike<number>) => Float64Array.from(x, Math.abs);

interface Inputs {
  a: Float32Array;
  b: Float32Array;
  bias?: Float32Array;
  out0: Float32Array;
  aShape: number[];
  bShape: number[];
  outShape: number[];
}

function makeInputs(c: Case, seed: number): Inputs {
  const batchDims = c.batch === 1 ? [] : [c.batch];
  const aShape = [...batchDims, ...(c.transA ? [c.K, c.M] : [c.M, c.K])];
  const bShape = [...(c.sharedB ? [] : batchDims), ...(c.transB ? [c.N, c.K] : [c.K, c.N])];
  const bCount = (c.sharedB ? 1 : c.batch) * c.K * c.N;
  return {
    a: randomArray(seed, c.batch * c.M * c.K),
    b: randomArray(seed + 1, bCount, 1 / Math.sqrt(c.K)),
    bias: c.bias ? randomArray(seed + 2, c.N) : undefined,
    out0: randomArray(seed + 3, c.batch * c.M * c.N),
    aShape,
    bShape,
    outShape: [...batchDims, c.M, c.N],
  };
}

function refOptions(c: Case, bias: ArrayLike<number> | undefined, out0: ArrayLike<number>): MatmulRefOptions {
  return {
    transA: c.transA,
    transB: c.transB,
    sharedB: c.sharedB,
    bias,
    activation: c.activation,
    accumulate: c.accumulate ? out0 : undefined,
    alpha: c.alpha,
  };
}

async function runGpu(engine: Engine, c: Case, x: Inputs): Promise<Float32Array> {
  const a = engine.upload(x.a, x.aShape);
  const b = engine.upload(x.b, x.bShape);
  const out = engine.upload(x.out0, x.outShape);
  const bias = x.bias ? engine.upload(x.bias, [c.N]) : undefined;
  const options: MatmulOptions = { transA: c.transA, transB: c.transB, bias, activation: c.activation, accumulate: c.accumulate, alpha: c.alpha };
  matmul(engine, a, b, out, options);
  const got = await engine.readF32(out);
  engine.release(a, b, out, bias);
  return got;
}

/** GPU result vs the float64 reference for one case; returns the GPU output. */
async function checkCase(c: Case, seed: number): Promise<Float32Array> {
  const engine = await gpuEngine();
  const x = makeInputs(c, seed);
  const dims = { batch: c.batch, M: c.M, N: c.N, K: c.K };
  const want = matmulRef(x.a, x.b, dims, refOptions(c, x.bias, x.out0));
  // Σ|terms| + |bias| + |out_old|: what the f32 rounding error scales with.
  const bound = matmulRef(abs(x.a), abs(x.b), dims, {
    ...refOptions(c, x.bias && abs(x.bias), abs(x.out0)),
    activation: 'none',
    alpha: Math.abs(c.alpha ?? 1),
  });
  const got = await runGpu(engine, c, x);
  expectWithinBound(got, want, bound, BOUND_RTOL, label(c));
  return got;
}

// M 33 / N 7, M 129 / N 65 and M 200 / N 129 run as outᵀ = op(b)ᵀ·op(a)ᵀ (matmul swaps the operands
// when that fills the 16 × 256 tiles better); the others run directly.
const SHAPES: Array<Pick<Case, 'batch' | 'M' | 'N' | 'K' | 'sharedB'>> = [
  { batch: 1, M: 1, N: 1, K: 1 },
  { batch: 1, M: 7, N: 33, K: 129 },
  { batch: 3, M: 33, N: 7, K: 200 },
  { batch: 3, M: 129, N: 65, K: 33, sharedB: true },
  { batch: 1, M: 200, N: 129, K: 7 },
];
const TRANSPOSES = [
  { transA: false, transB: false },
  { transA: false, transB: true },
  { transA: true, transB: false },
  { transA: true, transB: true },
];

describe('f32 matmul (tiled)', () => {
  describe.each(TRANSPOSES)('transA $transA, transB $transB', (t) => {
    it.each(SHAPES)('matches the float64 reference: batch $batch, M $M, N $N, K $K', async (shape) => {
      await checkCase({ ...shape, ...t }, shape.M * 1000 + shape.K);
    });

    it('bias, gelu, accumulate and alpha together (out = out_old + gelu(alpha·AB + bias))', async () => {
      await checkCase({ batch: 3, M: 33, N: 70, K: 129, ...t, bias: true, activation: 'gelu', accumulate: true, alpha: 0.37 }, 5);
    });
  });

  it.each([
    { bias: true },
    { activation: 'gelu' as const },
    { accumulate: true },
    { alpha: -2.5 },
    { bias: true, activation: 'gelu' as const, sharedB: true },
  ])('epilogue options one at a time: %o', async (options) => {
    await checkCase({ batch: 3, M: 65, N: 33, K: 71, transB: true, ...options }, 11);
  });

  it('matmulNaive matches the reference (the benchmark baseline)', async () => {
    const engine = await gpuEngine();
    const c: Case = { batch: 3, M: 33, N: 17, K: 70 };
    const x = makeInputs(c, 21);
    const a = engine.upload(x.a, x.aShape);
    const b = engine.upload(x.b, x.bShape);
    const out = engine.alloc(x.outShape);
    matmulNaive(engine, a, b, out);
    const dims = { batch: c.batch, M: c.M, N: c.N, K: c.K };
    expectWithinBound(await engine.readF32(out), matmulRef(x.a, x.b, dims), matmulRef(abs(x.a), abs(x.b), dims), BOUND_RTOL, 'naive');
    engine.release(a, b, out);
  });
});

describe('f32 matmul: backward identities', () => {
  // Y = X·Wᵀ (Linear, W [out, in]). For L = Σ G ⊙ Y: dL/dX = G·W and dL/dW = Gᵀ·X, the products the
  // backward pass launches; both are checked against central differences of the float64 forward.
  const rows = 7;
  const inF = 33;
  const outF = 17;
  const xs = randomArray(31, rows * inF);
  const ws = randomArray(32, outF * inF, 0.2);
  const gs = randomArray(33, rows * outF);
  const forward = (x: ArrayLike<number>, w: ArrayLike<number>) => matmulRef(x, w, { batch: 1, M: rows, N: outF, K: inF }, { transB: true });

  it('dX = G·W and dW = Gᵀ·X match finite differences of Σ G ⊙ (X·Wᵀ)', async () => {
    const engine = await gpuEngine();
    const x = engine.upload(xs, [rows, inF]);
    const w = engine.upload(ws, [outF, inF]);
    const g = engine.upload(gs, [rows, outF]);
    const dx = engine.alloc([rows, inF]);
    const dw = engine.alloc([outF, inF]);
    matmul(engine, g, w, dx);
    matmul(engine, g, x, dw, { transA: true });
    const fdX = finiteDifferenceGrad((v) => dot(forward(v, ws), gs), xs);
    const fdW = finiteDifferenceGrad((v) => dot(forward(xs, v), gs), ws);
    // finite differences of a float64 bilinear form: error ~1e-9
    expectClose(await engine.readF32(dx), fdX, { atol: 1e-5, rtol: 1e-5 }, 'dX');
    expectClose(await engine.readF32(dw), fdW, { atol: 1e-5, rtol: 1e-5 }, 'dW');
    engine.release(x, w, g, dx, dw);
  });

  it('(A·B)ᵀ = Bᵀ·Aᵀ through the transpose flags, bit for bit', async () => {
    // Both orders sum the same products in the same k order, so the results must be identical.
    const engine = await gpuEngine();
    const a = engine.upload(randomArray(41, 33 * 70), [33, 70]);
    const b = engine.upload(randomArray(42, 70 * 65), [70, 65]);
    const ab = engine.alloc([33, 65]);
    const btat = engine.alloc([65, 33]);
    matmul(engine, a, b, ab);
    matmul(engine, b, a, btat, { transA: true, transB: true });
    const p = await engine.readF32(ab);
    const q = await engine.readF32(btat);
    const qT = Float32Array.from(p, (_, i) => q[(i % 65) * 33 + Math.floor(i / 65)]);
    expectBitIdentical(p, qT, '(AB)ᵀ vs BᵀAᵀ');
    engine.release(a, b, ab, btat);
  });
});

describe('f32 matmul: determinism, grid folding and errors', () => {
  it('two runs are bit-identical', async () => {
    const engine = await gpuEngine();
    const c: Case = { batch: 3, M: 129, N: 70, K: 200, transB: true, bias: true, activation: 'gelu' };
    const x = makeInputs(c, 51);
    expectBitIdentical(await runGpu(engine, c, x), await runGpu(engine, c, x), 'matmul');
  });

  it('folds over a lowered workgroup limit and reports a count beyond it', async () => {
    const engine = await smallGridEngine(8);
    // 5 row tiles × 1 column tile × 5 batches = 25 workgroups → a 7×4 grid with three idle workgroups.
    const c: Case = { batch: 5, M: 70, N: 65, K: 9, transA: true, bias: true };
    const x = makeInputs(c, 71);
    const got = await runGpu(engine, c, x);
    const dims = { batch: c.batch, M: c.M, N: c.N, K: c.K };
    const bound = matmulRef(abs(x.a), abs(x.b), dims, { transA: true, bias: abs(x.bias!) });
    expectWithinBound(got, matmulRef(x.a, x.b, dims, { transA: true, bias: x.bias }), bound, BOUND_RTOL, 'folded');
    // 36 row tiles × 3 column tiles = 108 workgroups cannot fold into 8 × 8.
    const a = engine.alloc([576, 4]);
    const b = engine.alloc([4, 576]);
    const out = engine.alloc([576, 576]);
    expect(() => matmul(engine, a, b, out)).toThrow(DeviceLimitError);
    expect(() => matmul(engine, a, b, out)).toThrow(/maxComputeWorkgroupsPerDimension of 8/);
    engine.release(a, b, out);
  });

  it('names the tensor and the shapes on bad input', async () => {
    const engine = await gpuEngine();
    const a = engine.alloc([2, 3, 4]);
    const b = engine.alloc([4, 5]);
    const out = engine.alloc([2, 3, 5]);
    const wrongK = engine.alloc([6, 5]);
    const wrongOut = engine.alloc([2, 5, 3]);
    const wrongBatch = engine.alloc([3, 4, 5]);
    const bias = engine.alloc([4]);
    const vector = engine.alloc([4]);
    expect(() => matmul(engine, a, wrongK, out)).toThrow(ShapeError);
    expect(() => matmul(engine, a, wrongK, out)).toThrow('matmul: inner dimensions differ: a [2, 3, 4] has K = 4, b [6, 5] has K = 6');
    expect(() => matmul(engine, a, b, out, { transA: true })).toThrow('a [2, 3, 4] (transposed) has K = 3');
    expect(() => matmul(engine, a, b, wrongOut)).toThrow('matmul: out has shape [2, 5, 3], expected [2, 3, 5]');
    expect(() => matmul(engine, a, wrongBatch, out)).toThrow("b has shape [3, 4, 5]: its batch dimensions must be a's [2], or b must be 2-D");
    expect(() => matmul(engine, a, b, out, { bias })).toThrow('matmul: bias has shape [4], expected [5]');
    expect(() => matmul(engine, vector, b, out)).toThrow('matmul: a must have at least 2 dimensions, got shape [4]');
    expect(() => matmul(engine, a, b, out, { alpha: Number.NaN })).toThrow('alpha must be a finite number');
    expect(() => matmul(engine, a, b, b)).toThrow(ShapeError);
    expect(() => matmulNaive(engine, a, wrongK, out)).toThrow('matmulNaive: inner dimensions differ');
    engine.release(a, b, out, wrongK, wrongOut, wrongBatch, bias, vector);
  });
});
