// Every matmul variant (src/engine/ops/matmul-variants.ts) against the float64 reference on shapes
// that are no multiple of any tile, with the tolerances of src/engine/ops/matmul-check.ts (f32 2e-6,
// f16 2e-3 of Σ|terms| + |bias| + |out_old|). f16 variants run where the device has shader-f16
// (lavapipe; SwiftShader has none), and must then exist.
import { describe, expect, it } from 'vitest';
import { type CheckCase, checkProduct } from '../../src/engine/ops/matmul-check.ts';
import { type MatmulVariant, VARIANTS, variantApplies, variantName } from '../../src/engine/ops/matmul-variants.ts';
import { gpuEngine } from '../helpers/gpu.ts';

/** Round up to a multiple of 4 for vec4 variants (which need the operands' contiguous dimensions so). */
const fit = (v: MatmulVariant, d: number) => (v.kind === 'regtile' && v.vec4 ? Math.ceil(d / 4) * 4 : d);

type Case = [string, CheckCase];

/**
 * Two cases per variant, one f32 and one NF4, rotating over the kinds below so each kind runs on
 * several variants: on lavapipe every new pipeline costs ~2 s of compilation, so the suite keeps
 * their number small.
 */
function cases(v: MatmulVariant, index: number): Case[] {
  const M = 37;
  const N = fit(v, 45);
  const K = fit(v, 21);
  const f32: Case[] = [
    ['f32, batched, transA, bias, gelu, accumulate, alpha', { op: 'matmul', batch: 3, M: fit(v, M), N, K, transA: true, transB: false, bias: true, gelu: true, accumulate: true, alpha: 0.37 }],
    ['f32, transB, shared b', { op: 'matmul', batch: 2, M, N, K, transA: false, transB: true, sharedB: true }],
  ];
  const nf4: Case[] = [
    ['NF4 Y = X·Wᵀ, rows of whole words, bias, gelu', { op: 'nf4Matmul', batch: 1, M, N, K: 40, transA: false, transB: true, bias: true, gelu: true }],
    ['NF4 Y = X·Wᵀ, rows not whole words, double quant', { op: 'nf4Matmul', batch: 1, M, N, K: fit(v, 29), transA: false, transB: true, doubleQuant: true }],
    ['NF4 dX = dY·W, accumulate, double quant', { op: 'nf4MatmulInputGrad', batch: 1, M, N: 40, K: fit(v, 45), transA: false, transB: false, accumulate: true, doubleQuant: true }],
  ];
  return [f32[index % f32.length], nf4[index % nf4.length]];
}

// The fixed kernels are tested by matmul.gpu.test.ts and nf4.gpu.test.ts.
const TILED = VARIANTS.filter((v) => v.kind === 'regtile');

describe('matmul variants against the float64 reference', () => {
  it('f16 variants exist exactly where the device has shader-f16', async () => {
    const engine = await gpuEngine();
    const f16 = VARIANTS.find((v) => v.kind === 'regtile' && v.f16)!;
    const product = cases(f16, 0)[0][1];
    expect(variantApplies(engine, f16, product)).toBe(engine.device.features.has('shader-f16'));
  });

  describe.each(TILED.map((v, i) => [variantName(v), v, i] as const))('%s', (_name, variant, index) => {
    it.each(cases(variant, index))('%s', async (_label, c) => {
      const engine = await gpuEngine();
      if (!variantApplies(engine, variant, c)) {
        expect(variant.kind === 'regtile' && variant.f16 && !engine.device.features.has('shader-f16'), 'only f16 variants may be unavailable').toBe(true);
        return;
      }
      const r = await checkProduct(engine, variant, c, c.M * 31 + c.K);
      expect(r.worstRatio, `output ${r.index}: got ${r.got}, expected ${r.want}, allowed ±${r.allowed}`).toBeLessThanOrEqual(1);
    });
  });
});
