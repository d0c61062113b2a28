import { describe, expect, it } from 'vitest';
import { halfBits, halfValue, packHalfRef, unpackHalfRef } from '../../src/engine/ops/half.ref.ts';
import { halfWords, packHalf, unpackHalf } from '../../src/engine/ops/half.ts';
import { gpuEngine } from '../helpers/gpu.ts';
import { expectBitIdentical, randomArray } from '../helpers/numeric.ts';
import { smallGridEngine } from '../helpers/small-grid.ts';

/** Values spanning f16's range: normal ones of several scales, subnormals, ±0, the extremes. */
function values(n: number, seed: number): Float32Array {
  const x = randomArray(seed, n, 3);
  const specials = [0, -0, 65504, -65504, 6.1e-5, 3e-6, -2.4e-7, 1, 1 + 2 ** -11, 1 + 3 * 2 ** -11, 2047.5];
  specials.forEach((v, i) => i * 3 < n && (x[i * 3] = v));
  for (let i = 1; i < n; i += 7) x[i] *= 1000;
  return x;
}

/** The spacing of f16 values at |x| (subnormal spacing 2^-24 near zero). */
function halfUlp(x: number): number {
  return 2 ** (Math.max(Math.floor(Math.log2(Math.abs(x) || 1e-30)), -14) - 10);
}

describe('half precision storage', () => {
  it('the host reference rounds to nearest, ties to even, and keeps subnormals and the range ends', () => {
    expect(halfBits(1)).toBe(0x3c00);
    expect(halfBits(-2)).toBe(0xc000);
    expect(halfBits(65504)).toBe(0x7bff);
    expect(halfBits(65520)).toBe(0x7c00); // the tie above the largest finite rounds to infinity
    expect(halfBits(1 + 2 ** -11)).toBe(0x3c00); // tie to even (down)
    expect(halfBits(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie to even (up)
    expect(halfBits(2 ** -24)).toBe(0x0001);
    expect(halfBits(2 ** -25)).toBe(0x0000); // tie to even: zero
    expect(halfBits(1.5 * 2 ** -25)).toBe(0x0001);
    expect(halfBits(2 ** -14 - 2 ** -25)).toBe(0x0400); // the largest subnormal rounds up into the normals
    expect(halfValue(0x3555)).toBeCloseTo(1 / 3, 3);
    expect(Object.is(halfValue(halfBits(-0)), -0)).toBe(true);
    expect([...unpackHalfRef(packHalfRef([1, 2, 3]), 3)]).toEqual([1, 2, 3]);
  });

  it.each([1, 2, 7, 257, 1031])('packs on the GPU to the nearest f16 or its neighbour across x, and unpacks exactly, n = %i', async (n) => {
    const engine = await gpuEngine();
    const x = values(n, n);
    const input = engine.upload(x, [n]);
    const packed = engine.alloc([halfWords(n)], 'u32');
    packHalf(engine, input, packed);
    const gpuPacked = (await engine.read(packed)) as Uint32Array;
    // WGSL lets the f32 → f16 conversion round either way, so the GPU's half must bracket x with the nearest.
    const gpuValues = unpackHalfRef(gpuPacked, n);
    for (let i = 0; i < n; i++) {
      expect(Math.abs(gpuValues[i] - x[i]), `element ${i} (${x[i]} → ${gpuValues[i]})`).toBeLessThan(halfUlp(x[i]));
    }
    if (n % 2 === 1) expect(gpuPacked[halfWords(n) - 1] >>> 16, 'the odd last word\'s high half').toBe(0);

    const hostPacked = packHalfRef(x);
    const back = engine.alloc([n]);
    unpackHalf(engine, engine.upload(hostPacked, [halfWords(n)]), back);
    expectBitIdentical(await engine.readF32(back), Float32Array.from(unpackHalfRef(hostPacked, n)), 'unpacked');
    engine.release(input, packed, back);
  });

  it('folds launches past the per-dimension workgroup limit (limit lowered to 3)', async () => {
    const engine = await smallGridEngine(3);
    const n = 2000; // 8 unpack workgroups (a 3x3 grid), 4 pack workgroups (2x2)
    const x = values(n, 3);
    const input = engine.upload(x, [n]);
    const packed = engine.alloc([halfWords(n)], 'u32');
    const back = engine.alloc([n]);
    packHalf(engine, input, packed);
    unpackHalf(engine, packed, back);
    const roundTrip = await engine.readF32(back);
    for (let i = 0; i < n; i++) expect(Math.abs(roundTrip[i] - x[i]), `element ${i}`).toBeLessThan(halfUlp(x[i]));
    engine.destroy();
  });

  it('rejects mismatched shapes, naming the tensor', async () => {
    const engine = await gpuEngine();
    const x = engine.alloc([5]);
    const short = engine.alloc([2], 'u32');
    const floats = engine.alloc([3]);
    expect(() => packHalf(engine, x, short)).toThrow(/packHalf: packed has shape \[2\], expected \[3\]/);
    expect(() => packHalf(engine, x, floats)).toThrow(/packHalf: packed must be u32, got f32/);
    expect(() => unpackHalf(engine, short, x)).toThrow(/unpackHalf: halves 0..4 are not in packed \(u32 \[2\]\)/);
    engine.release(x, short, floats);
  });
});
