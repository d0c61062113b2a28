// The reduction kernels (LayerNorm, L2 normalisation, the losses, AdamW's global gradient norm) run
// their subgroup variant where the device has `subgroups` (lavapipe and this Dawn's SwiftShader both
// offer it) and the shared-memory trees elsewhere. Their own test files check them against the
// float64 references on odd shapes with the variant the driver picks; this file checks which variant
// ran, on odd shapes of its own, and runs the shared-memory fallback too, on an engine created
// without the feature.
import { describe, expect, it } from 'vitest';
import { AdamW } from '../../src/engine/ops/adamw.ts';
import { l2NormalizeForward } from '../../src/engine/ops/l2norm.ts';
import { l2NormalizeForwardRef } from '../../src/engine/ops/l2norm.ref.ts';
import { layerNormBackward, layerNormForward } from '../../src/engine/ops/layernorm.ts';
import { layerNormBackwardRef, layerNormForwardRef } from '../../src/engine/ops/layernorm.ref.ts';
import { cosinePairLossForward, infoNceForward } from '../../src/engine/ops/losses.ts';
import { cosinePairLossRef, infoNceForwardRef } from '../../src/engine/ops/losses.ref.ts';
import { type ReductionVariant, variantModule } from '../../src/engine/ops/reductions.ts';
import type { Engine } from '../../src/engine/engine.ts';
import { createNodeEngine } from '../../src/engine/node-gpu.ts';
import { gpuEngine } from '../helpers/gpu.ts';
import { expectClose, randomArray } from '../helpers/numeric.ts';

describe('reduction variants', () => {
  it('the device has subgroups exactly where the adapter offers them', async () => {
    const engine = await gpuEngine();
    expect(engine.device.features.has('subgroups')).toBe(engine.adapter.features.includes('subgroups'));
  });

  it('LayerNorm, L2 norm, the losses and AdamW run the subgroup variant where the device has it, and match the references', async () => {
    const engine = await gpuEngine();
    await checkReductions(engine, engine.adapter.features.includes('subgroups') ? 'subgroup' : 'shared');
  });

  it('without the feature they run the shared-memory variant, and match the references', async () => {
    const engine = await createNodeEngine({ withoutFeatures: ['subgroups'] });
    expect(engine.device.features.has('subgroups')).toBe(false);
    await checkReductions(engine, 'shared');
    engine.destroy();
  });
});

async function checkReductions(engine: Engine, expected: ReductionVariant): Promise<void> {
  const other: ReductionVariant = expected === 'subgroup' ? 'shared' : 'subgroup';

  // LayerNorm, 3 rows of 70 (more than the 64 lanes of a subgroup row).
  const [rows, width] = [3, 70];
  const x = randomArray(1, rows * width, 2).map((v) => v + 1);
  const gamma = randomArray(2, width, 0.1).map((v) => v + 1);
  const beta = randomArray(3, width, 0.1);
  const dy = randomArray(4, rows * width);
  const t = {
    x: engine.upload(x, [rows, width]),
    gamma: engine.upload(gamma, [width]),
    beta: engine.upload(beta, [width]),
    dy: engine.upload(dy, [rows, width]),
    y: engine.alloc([rows, width]),
    mean: engine.alloc([rows]),
    rstd: engine.alloc([rows]),
    dx: engine.alloc([rows, width]),
  };
  layerNormForward(engine, t.x, t.gamma, t.beta, t.y, t.mean, t.rstd, 1e-5);
  layerNormBackward(engine, t.x, t.gamma, t.mean, t.rstd, t.dy, t.dx);
  const ref = layerNormForwardRef(x, gamma, beta, width, 1e-5);
  expectClose(await engine.readF32(t.y), ref.y, { atol: 1e-5, rtol: 1e-5 }, 'layernorm y');
  expectClose(await engine.readF32(t.dx), layerNormBackwardRef(x, gamma, ref.mean, ref.rstd, dy, width).dx, { atol: 1e-5, rtol: 1e-5 }, 'layernorm dx');

  // L2 normalisation of the same rows.
  const norms = engine.alloc([rows]);
  l2NormalizeForward(engine, t.x, t.y, norms);
  expectClose(await engine.readF32(norms), l2NormalizeForwardRef(x, width).norms, { atol: 0, rtol: 1e-6 }, 'l2 norms');

  // InfoNCE (3 anchors, 5 candidates) and the cosine pair loss on the normalised rows.
  const units = await engine.readF32(t.y);
  const anchors = engine.upload(units, [rows, width]);
  const candidates = engine.upload(Float32Array.from({ length: 5 * width }, (_, i) => units[i % units.length]), [5, width]);
  const loss = engine.alloc([1]);
  const probs = engine.alloc([rows, 5]);
  infoNceForward(engine, anchors, candidates, loss, probs, null, { scale: 20, symmetric: false });
  const infoNce = infoNceForwardRef(units, await engine.readF32(candidates), { b: rows, c: 5, h: width }, { scale: 20, symmetric: false });
  expectClose(await engine.readF32(loss), [infoNce.loss], { atol: 1e-5, rtol: 1e-5 }, 'InfoNCE loss');
  const labels = [0.5, -0.25, 1];
  const labelTensor = engine.upload(labels, [rows]);
  cosinePairLossForward(engine, anchors, t.x, labelTensor, loss);
  expectClose(await engine.readF32(loss), [cosinePairLossRef(units, x, labels, rows, width)], { atol: 1e-5, rtol: 1e-5 }, 'cosine pair loss');

  // AdamW's global gradient norm over 1025 elements (more than one 1024-element chunk).
  const gradValues = randomArray(6, 1025);
  const param = engine.upload(randomArray(5, 1025), [1025]);
  const grad = engine.upload(gradValues, [1025]);
  const optimiser = new AdamW(engine, [param]);
  optimiser.step([grad], { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, maxGradNorm: 1, step: 1 });
  const gradNorm = Math.sqrt(gradValues.reduce((s, g) => s + g * g, 0));
  expectClose(await engine.readF32(optimiser.gradNorm), [gradNorm], { atol: 0, rtol: 1e-6 }, 'AdamW gradient norm');

  const ran = engine.compiledKernels;
  for (const [module, entry] of [
    ['layernorm', 'layernorm_forward'],
    ['layernorm', 'layernorm_backward'],
    ['l2norm', 'l2norm_forward'],
    ['losses', 'softmax_lines'],
    ['losses', 'cosine_pair_terms'],
    ['adamw', 'grad_sq_partials'],
  ]) {
    expect(ran, `${module}.${entry}`).toContain(`${variantModule(module, expected)}.${entry}`);
    expect(ran, `${module}.${entry}`).not.toContain(`${variantModule(module, other)}.${entry}`);
  }
  engine.release(...Object.values(t), norms, anchors, candidates, loss, probs, labelTensor, param, grad);
}
