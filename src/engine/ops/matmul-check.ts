/**
 * One product run on the GPU with a given matmul variant, against the float64 reference
 * (matmul.ref.ts on the dequantised weight for NF4): the autotuner's check of each candidate and
 * the variant tests.
 *
 * Tolerance: |got − want| ≤ rtol · bound, bound = Σ|terms| + |bias| + |out_old| (the reference on
 * absolute values), what rounding errors scale with. f32: 2e-6, as the fixed kernels' tests (an f32
 * dot product of length K is off by ~√K·2⁻²⁴ of the bound). f16: each operand and each product is
 * rounded to f16 (three relative errors of at most 2⁻¹¹, 1.5e-3 in all; GELU's slope ≤ 1.13 keeps
 * it under 1.7e-3), summed in f32: 2e-3.
 */
import type { Engine } from '../engine.ts';
import { counterValues } from '../rng.ts';
import type { Tensor } from '../tensor.ts';
import { type MatmulVariant, type Product, chosenVariant, shapeClass, variantName } from './matmul-variants.ts';
import { matmulRef } from './matmul.ref.ts';
import { matmul } from './matmul.ts';
import { nf4DequantizeRef, nf4QuantizeRef } from './nf4.ref.ts';
import { nf4Matmul, nf4MatmulInputGrad, releaseNf4, uploadNf4 } from './nf4.ts';

export const F32_BOUND_RTOL = 2e-6;
export const F16_BOUND_RTOL = 2e-3;

/** A product and its epilogue (bias and GELU: f32 matmul and NF4 forward only). */
export interface CheckCase extends Product {
  bias?: boolean;
  gelu?: boolean;
  accumulate?: boolean;
  alpha?: number;
  /** f32 matmul: b is one 2-D matrix shared by the batches. */
  sharedB?: boolean;
  doubleQuant?: boolean;
}

export interface CheckResult {
  /** max over outputs of |got − want| / (rtol · bound): the check passes when ≤ 1. */
  worstRatio: number;
  index: number;
  got: number;
  want: number;
  allowed: number;
}

/** Successive operand arrays of one check, each from its own counter stream. */
function operandStream(seed: number): (n: number, scale?: number) => Float32Array {
  let stream = Math.imul(seed, 16);
  return (n, scale = 1) => counterValues(stream++, n, scale);
}

const absolute = (x: ArrayLike<number>) => Float64Array.from(x, Math.abs);

/** Upload, run, read back, release. */
async function runOnGpu(engine: Engine, uploads: Array<[Float32Array, number[]]>, launch: (t: Tensor[]) => void, outIndex: number): Promise<Float32Array> {
  const tensors = uploads.map(([data, shape]) => engine.upload(data, shape));
  launch(tensors);
  const got = await engine.readF32(tensors[outIndex]);
  engine.release(...tensors);
  return got;
}

/** Run the case with `variant` forced (throws if it does not apply) and compare with the reference. */
export async function checkProduct(engine: Engine, variant: MatmulVariant, c: CheckCase, seed: number): Promise<CheckResult> {
  const name = variantName(variant);
  const key = shapeClass(c);
  const previous = engine.kernelChoices.get(key);
  engine.kernelChoices.set(key, name);
  try {
    if (variantName(chosenVariant(engine, c)) !== name) throw new Error(`checkProduct: variant ${name} does not apply to ${key} on this device`);
    const { got, want, bound } = await (c.op === 'matmul' ? runMatmul(engine, c, seed) : runNf4(engine, c, seed));
    const rtol = variant.kind === 'regtile' && variant.f16 ? F16_BOUND_RTOL : F32_BOUND_RTOL;
    const result: CheckResult = { worstRatio: 0, index: -1, got: 0, want: 0, allowed: 0 };
    for (let i = 0; i < want.length; i++) {
      const allowed = rtol * bound[i];
      const ratio = Math.abs(got[i] - want[i]) / (allowed + Number.MIN_VALUE);
      if (!(ratio <= result.worstRatio)) Object.assign(result, { worstRatio: ratio, index: i, got: got[i], want: want[i], allowed });
    }
    return result;
  } finally {
    if (previous === undefined) engine.kernelChoices.delete(key);
    else engine.kernelChoices.set(key, previous);
  }
}

interface Outcome {
  got: Float32Array;
  want: Float64Array;
  bound: Float64Array;
}

async function runMatmul(engine: Engine, c: CheckCase, seed: number): Promise<Outcome> {
  const randomValues = operandStream(seed);
  const { batch, M, N, K, transA, transB } = c;
  const batchDims = batch === 1 ? [] : [batch];
  const a = randomValues(batch * M * K);
  const b = randomValues((c.sharedB ? 1 : batch) * K * N, 1 / Math.sqrt(K));
  const bias = c.bias ? randomValues(N) : undefined;
  const out0 = randomValues(batch * M * N);
  const uploads: Array<[Float32Array, number[]]> = [
    [a, [...batchDims, ...(transA ? [K, M] : [M, K])]],
    [b, [...(c.sharedB ? [] : batchDims), ...(transB ? [N, K] : [K, N])]],
    [out0, [...batchDims, M, N]],
    ...(bias ? [[bias, [N]] as [Float32Array, number[]]] : []),
  ];
  const activation = c.gelu ? ('gelu' as const) : ('none' as const);
  const got = await runOnGpu(
    engine,
    uploads,
    ([ta, tb, out, tbias]) => matmul(engine, ta, tb, out, { transA, transB, bias: tbias, activation, accumulate: c.accumulate, alpha: c.alpha }),
    2,
  );
  const options = { transA, transB, sharedB: c.sharedB, alpha: c.alpha };
  const want = matmulRef(a, b, c, { ...options, bias, activation, accumulate: c.accumulate ? out0 : undefined });
  const bound = matmulRef(absolute(a), absolute(b), c, {
    ...options,
    alpha: Math.abs(c.alpha ?? 1),
    bias: bias && absolute(bias),
    accumulate: c.accumulate ? absolute(out0) : undefined,
  });
  return { got, want, bound };
}

async function runNf4(engine: Engine, c: CheckCase, seed: number): Promise<Outcome> {
  const randomValues = operandStream(seed);
  const forward = c.op === 'nf4Matmul';
  const { M, N, K } = c;
  // W is [out, in]: [N, K] for Y = X·Wᵀ, [K, N] for dX = dY·W.
  const wShape: [number, number] = forward ? [N, K] : [K, N];
  const host = nf4QuantizeRef(randomValues(N * K, 1 / Math.sqrt(K)), { doubleQuant: c.doubleQuant });
  const w = nf4DequantizeRef(host);
  const x = randomValues(M * K);
  const bias = c.bias ? randomValues(N) : undefined;
  const out0 = randomValues(M * N);
  const q = uploadNf4(engine, wShape, host);
  const activation = c.gelu ? ('gelu' as const) : ('none' as const);
  const uploads: Array<[Float32Array, number[]]> = [[x, [M, K]], [out0, [M, N]], ...(bias ? [[bias, [N]] as [Float32Array, number[]]] : [])];
  const got = await runOnGpu(
    engine,
    uploads,
    ([tx, out, tbias]) =>
      forward ? nf4Matmul(engine, tx, q, out, { bias: tbias, activation, accumulate: c.accumulate }) : nf4MatmulInputGrad(engine, tx, q, out, { accumulate: c.accumulate }),
    1,
  );
  releaseNf4(engine, q);
  const dims = { batch: 1, M, N, K };
  const want = matmulRef(x, w, dims, { transB: forward, bias, activation, accumulate: c.accumulate ? out0 : undefined });
  const bound = matmulRef(absolute(x), absolute(w), dims, { transB: forward, bias: bias && absolute(bias), accumulate: c.accumulate ? absolute(out0) : undefined });
  return { got, want, bound };
}
