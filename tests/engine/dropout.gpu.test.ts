import { describe, expect, it } from 'vitest';
import { dropoutBackward, dropoutForward } from '../../src/engine/ops/dropout.ts';
import { dropoutBackwardRef, dropoutForwardRef, dropoutMaskRef } from '../../src/engine/ops/dropout.ref.ts';
import { gpuEngine } from '../helpers/gpu.ts';
import { smallGridEngine } from '../helpers/small-grid.ts';
import { dot, expectBitIdentical, expectClose, finiteDifferenceGrad, randomArray } from '../helpers/numeric.ts';

// f32 result of x·(1/(1-p)): one rounding of the scale and one of the product.
const F32_TOL = { atol: 0, rtol: 2.5e-7 };

async function gpuMask(n: number, p: number, seed: number, indexOffset = 0): Promise<Uint8Array> {
  const engine = await gpuEngine();
  const x = engine.upload(new Float32Array(n).fill(1), [n]);
  const y = engine.alloc([n]);
  dropoutForward(engine, x, y, p, seed, indexOffset);
  const got = await engine.readF32(y);
  engine.release(x, y);
  return Uint8Array.from(got, (v) => (v !== 0 ? 1 : 0));
}

describe('dropout (counter-based mask)', () => {
  it.each([0.1, 0.37, 0.5, 0.9])('GPU mask equals the CPU mirror exactly, p=%f, 100003 elements', async (p) => {
    const n = 100_003;
    for (const seed of [0, 12345, 0xffffffff]) {
      const got = await gpuMask(n, p, seed);
      const want = dropoutMaskRef(n, p, seed);
      const firstDiff = got.findIndex((v, i) => v !== want[i]);
      expect(firstDiff, `seed ${seed}: first differing element`).toBe(-1);
    }
  });

  it('an index offset draws the slice of the larger mask at that place, wrapping at 2^32', async () => {
    const whole = await gpuMask(5000, 0.3, 99);
    expectBitIdentical(Float32Array.from(await gpuMask(1200, 0.3, 99, 3000)), Float32Array.from(whole.subarray(3000, 4200)), 'slice at 3000');
    const wrapped = dropoutMaskRef(1000, 0.3, 99, 2 ** 32 - 500);
    expectBitIdentical(Float32Array.from(await gpuMask(1000, 0.3, 99, 2 ** 32 - 500)), Float32Array.from(wrapped), 'offset past 2^32');
    expectBitIdentical(Float32Array.from(wrapped.subarray(500)), Float32Array.from(whole.subarray(0, 500)), 'wraps to index 0');
  });

  it('keeps about 1-p of the elements', async () => {
    const kept = (await gpuMask(200_000, 0.1, 7)).reduce((s, v) => s + v, 0) / 200_000;
    // binomial sd = sqrt(0.09/200000) ≈ 6.7e-4; 5 sd
    expect(Math.abs(kept - 0.9)).toBeLessThan(3.4e-3);
  });

  it.each([1, 7, 33, 129, 70_001])('forward and backward match the reference, n=%i', async (n) => {
    const engine = await gpuEngine();
    const xs = randomArray(n, n);
    const dys = randomArray(n + 1, n);
    const x = engine.upload(xs, [n]);
    const dy = engine.upload(dys, [n]);
    const y = engine.alloc([n]);
    const dx = engine.alloc([n]);
    dropoutForward(engine, x, y, 0.1, 99);
    dropoutBackward(engine, dy, dx, 0.1, 99);
    expectClose(await engine.readF32(y), dropoutForwardRef(xs, 0.1, 99), F32_TOL, 'y');
    expectClose(await engine.readF32(dx), dropoutBackwardRef(dys, 0.1, 99), F32_TOL, 'dx');
    engine.release(x, dy, y, dx);
  });

  it('reference backward matches central finite differences', () => {
    const xs = randomArray(3, 129);
    const dys = randomArray(4, 129);
    const fd = finiteDifferenceGrad((v) => dot(dropoutForwardRef(v, 0.3, 5), dys), xs);
    expectClose(dropoutBackwardRef(dys, 0.3, 5), fd, { atol: 1e-8, rtol: 1e-7 }, 'd dropout');
  });

  it('p = 0 is an exact copy; same seed gives the same output, another seed another mask', async () => {
    const engine = await gpuEngine();
    const n = 4099;
    const xs = randomArray(11, n);
    const x = engine.upload(xs, [n]);
    const y = engine.alloc([n]);
    dropoutForward(engine, x, y, 0, 1);
    expectBitIdentical(await engine.readF32(y), xs, 'p=0');
    dropoutForward(engine, x, y, 0.1, 1);
    const first = await engine.readF32(y);
    dropoutForward(engine, x, y, 0.1, 1);
    expectBitIdentical(first, await engine.readF32(y), 'same seed');
    dropoutForward(engine, x, y, 0.1, 2);
    const other = await engine.readF32(y);
    const differing = first.reduce((s, v, i) => s + ((v === 0) !== (other[i] === 0) ? 1 : 0), 0);
    // two independent masks with p = 0.1 differ on 2·0.1·0.9 = 18% of elements
    expect(differing).toBeGreaterThan(0.1 * n);
    engine.release(x, y);
  });

  it('folds its launch over a 2-D grid past the per-dimension workgroup limit, mask unchanged', async () => {
    const engine = await smallGridEngine(4); // 3001 elements: 12 workgroups on a 4-wide grid
    const n = 3001;
    const xs = randomArray(21, n);
    const x = engine.upload(xs, [n]);
    const y = engine.alloc([n]);
    dropoutForward(engine, x, y, 0.1, 31);
    expectClose(await engine.readF32(y), dropoutForwardRef(xs, 0.1, 31), F32_TOL, 'folded y');
    engine.destroy();
  });

  it('rejects bad shapes, p, seeds and in-place use, naming the problem', async () => {
    const engine = await gpuEngine();
    const x = engine.alloc([4, 6]);
    const y = engine.alloc([6, 4]);
    const ok = engine.alloc([4, 6]);
    expect(() => dropoutForward(engine, x, y, 0.1, 1)).toThrow(/dropoutForward: y has shape \[6, 4\], expected \[4, 6\]/);
    expect(() => dropoutBackward(engine, x, y, 0.1, 1)).toThrow(/dropoutBackward: dx has shape \[6, 4\], expected \[4, 6\]/);
    expect(() => dropoutForward(engine, x, ok, 1, 1)).toThrow(/p must be in \[0, 1\), got 1/);
    expect(() => dropoutForward(engine, x, ok, -0.1, 1)).toThrow(/p must be in \[0, 1\)/);
    expect(() => dropoutForward(engine, x, ok, 0.1, 1.5)).toThrow(/seed must be an integer in \[0, 2\^32\), got 1.5/);
    expect(() => dropoutForward(engine, x, ok, 0.1, -1)).toThrow(/seed/);
    expect(() => dropoutForward(engine, x, x, 0.1, 1)).toThrow(/dropoutForward: output y shares a buffer with input x/);
    engine.release(x, y, ok);
  });
});
