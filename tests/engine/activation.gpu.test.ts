import { describe, expect, it } from 'vitest';
import { geluBackward, geluBackwardPacked, geluForward } from '../../src/engine/ops/activation.ts';
import { halfWords, packHalf, unpackHalf } from '../../src/engine/ops/half.ts';
import { erf, geluBackwardRef, geluForwardRef } from '../../src/engine/ops/activation.ref.ts';
import { gpuEngine } from '../helpers/gpu.ts';
import { dot, expectBitIdentical, expectClose, finiteDifferenceGrad, randomArray } from '../helpers/numeric.ts';

describe('GELU (erf form)', () => {
  it('reference erf matches known values to 1e-14', () => {
    // erf(0.5), erf(1), erf(2), erf(3.5) from tables
    expect(Math.abs(erf(0.5) - 0.5204998778130465)).toBeLessThan(1e-14);
    expect(Math.abs(erf(1) - 0.8427007929497149)).toBeLessThan(1e-14);
    expect(Math.abs(erf(-2) + 0.9953222650189527)).toBeLessThan(1e-14);
    expect(Math.abs(erf(3.5) - 0.9999992569016276)).toBeLessThan(1e-14);
  });

  it('GPU gelu stays within 1e-6 of exact gelu on [-8, 8] (dense grid, 40001 points)', async () => {
    const engine = await gpuEngine();
    const n = 40001;
    const xs = Float32Array.from({ length: n }, (_, i) => -8 + (16 * i) / (n - 1));
    const x = engine.upload(xs, [n]);
    const y = engine.alloc([n]);
    geluForward(engine, x, y);
    const got = await engine.readF32(y);
    // tolerance: approximation error 1.5e-7·|x|/2 plus f32 rounding of a value up to 8
    expectClose(got, geluForwardRef(xs), { atol: 1e-6, rtol: 2e-7 }, 'gelu');
    engine.release(x, y);
  });

  it.each([1, 7, 33, 129, 70_001])('forward and backward match the reference, n=%i', async (n) => {
    const engine = await gpuEngine();
    const xs = randomArray(n, n, 3);
    const dys = randomArray(n + 1, n);
    const x = engine.upload(xs, [n]);
    const dy = engine.upload(dys, [n]);
    const y = engine.alloc([n]);
    const dx = engine.alloc([n]);
    geluForward(engine, x, y);
    geluBackward(engine, x, dy, dx);
    expectClose(await engine.readF32(y), geluForwardRef(xs), { atol: 1e-6, rtol: 1e-6 }, 'y');
    expectClose(await engine.readF32(dx), geluBackwardRef(xs, dys), { atol: 1e-6, rtol: 1e-5 }, 'dx');
    engine.release(x, dy, y, dx);
  });

  it.each([1, 129, 70_001])('backward from packed f16 x equals the backward on the unpacked x bit for bit, n=%i', async (n) => {
    const engine = await gpuEngine();
    const x = engine.upload(randomArray(n + 2, n, 3), [n]);
    const dy = engine.upload(randomArray(n + 3, n), [n]);
    const packed = engine.alloc([halfWords(n)], 'u32');
    packHalf(engine, x, packed);
    const unpacked = engine.alloc([n]);
    unpackHalf(engine, packed, unpacked);
    const want = engine.alloc([n]);
    const got = engine.alloc([n]);
    geluBackward(engine, unpacked, dy, want);
    geluBackwardPacked(engine, packed, dy, got);
    expectBitIdentical(await engine.readF32(got), await engine.readF32(want), 'dx');
    expect(() => geluBackwardPacked(engine, x, dy, got)).toThrow(/xPacked must be u32/);
    engine.release(x, dy, packed, unpacked, want, got);
  });

  it('reference backward matches central finite differences', () => {
    const xs = randomArray(5, 33, 3);
    const dys = randomArray(6, 33);
    const fd = finiteDifferenceGrad((v) => dot(geluForwardRef(v), dys), xs);
    expectClose(geluBackwardRef(xs, dys), fd, { atol: 1e-7, rtol: 1e-6 }, 'dgelu');
  });

  it('is deterministic and validates shapes', async () => {
    const engine = await gpuEngine();
    const xs = randomArray(9, 1000);
    const x = engine.upload(xs, [10, 100]);
    const y = engine.alloc([10, 100]);
    geluForward(engine, x, y);
    const first = await engine.readF32(y);
    geluForward(engine, x, y);
    expectBitIdentical(first, await engine.readF32(y), 'gelu');
    const wrong = engine.alloc([100, 10]);
    expect(() => geluForward(engine, x, wrong)).toThrow(/y has shape \[100, 10\], expected \[10, 100\]/);
    engine.release(x, y, wrong);
  });
});
