// The matmul autotuner (src/engine/autotune.ts): it never picks a candidate that fails its check,
// it picks the faster of two candidates, and its choices survive a round trip through the file
// cache. Only the register-tiled variant with scalar loads is used: it runs on every driver, and on
// lavapipe every new pipeline costs seconds to compile.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type TuneCandidate, adapterKey, autotuneMatmuls, pickFastest } from '../../src/engine/autotune.ts';
import { fileTuneCache } from '../../src/engine/autotune-file-cache.ts';
import type { Engine } from '../../src/engine/engine.ts';
import { type Product, shapeClass, variantByName } from '../../src/engine/ops/matmul-variants.ts';
import { matmul } from '../../src/engine/ops/matmul.ts';
import { gpuEngine } from '../helpers/gpu.ts';
import { randomArray } from '../helpers/numeric.ts';
import { tempDir } from '../helpers/temp-dir.ts';

const VARIANT = variantByName('rt8x8-4x4-k16')!;
const PRODUCT: Product = { op: 'matmul', batch: 1, M: 96, N: 96, K: 96, transA: false, transB: true };

/** A launch of PRODUCT with the variant under test. */
function productLauncher(engine: Engine): { launch: () => void; release: () => void } {
  const a = engine.upload(randomArray(1, 96 * 96), [96, 96]);
  const b = engine.upload(randomArray(2, 96 * 96), [96, 96]);
  const out = engine.alloc([96, 96]);
  engine.kernelChoices.set(shapeClass(PRODUCT), 'rt8x8-4x4-k16');
  return {
    launch: () => matmul(engine, a, b, out, { transB: true }),
    release: () => {
      engine.kernelChoices.clear();
      engine.release(a, b, out);
    },
  };
}

const passes = async () => true;

describe('autotune', () => {
  it('times dispatches (GPU timestamps where the device has them) as a positive duration', async () => {
    const engine = await gpuEngine();
    const p = productLauncher(engine);
    p.launch();
    expect(await engine.timeDispatches(p.launch)).toBeGreaterThan(0);
    p.release();
  });

  it('never picks a candidate that fails or throws in its check, however fast', async () => {
    const engine = await gpuEngine();
    const p = productLauncher(engine);
    const candidates: TuneCandidate[] = [
      { name: 'wrong and instant', check: async () => false, launch: () => {} },
      { name: 'broken', check: () => Promise.reject(new Error('no pipeline')), launch: () => {} },
      { name: 'right', check: passes, launch: p.launch },
    ];
    const choice = await pickFastest(engine, candidates, { runs: 1, targetMs: 5 });
    expect(choice.variant).toBe('right');
    expect(Object.keys(choice.ms)).toEqual(['right']);
    await expect(pickFastest(engine, candidates.slice(0, 2), { runs: 1 })).rejects.toThrow(/no candidate passed its check \(wrong and instant, broken\)/);
    p.release();
  });

  it('picks the faster of a deliberately slow candidate (the same launch 6 times) and a fast one', async () => {
    const engine = await gpuEngine();
    const p = productLauncher(engine);
    const slow = () => {
      for (let i = 0; i < 6; i++) p.launch();
    };
    const choice = await pickFastest(engine, [{ name: 'slow', check: passes, launch: slow }, { name: 'fast', check: passes, launch: p.launch }], { runs: 3, targetMs: 20 });
    expect(choice.variant).toBe('fast');
    expect(choice.ms.slow).toBeGreaterThan(choice.ms.fast);
    p.release();
  });

  it('checks candidates against the reference, caches the choice per adapter, and reads it back without tuning', async () => {
    const engine = await gpuEngine();
    const path = join(tempDir('autotune-'), 'autotune.json');
    const cache = fileTuneCache(path);
    const tuned = await autotuneMatmuls(engine, [PRODUCT], { cache, variants: [VARIANT], runs: 1, targetMs: 5 });
    const cls = shapeClass(PRODUCT);
    expect(tuned[cls].variant).toBe('rt8x8-4x4-k16');
    const file = JSON.parse(readFileSync(path, 'utf8'));
    expect(file.adapters[adapterKey(engine.adapter, cache.runtime)][cls].variant).toBe('rt8x8-4x4-k16');

    engine.kernelChoices.clear();
    // No candidates: tuning would throw, so the choice must come from the file.
    const read = await autotuneMatmuls(engine, [PRODUCT], { cache: fileTuneCache(path), variants: [] });
    expect(read).toEqual(tuned);
    expect(engine.kernelChoices.get(cls)).toBe('rt8x8-4x4-k16');
    engine.kernelChoices.clear();

    writeFileSync(path, '{"version": 1, "adapters": ');
    await expect(fileTuneCache(path).load('any')).rejects.toThrow(`autotune cache ${path} is not valid JSON`);
  });
});
