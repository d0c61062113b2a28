/**
 * The counter-based random bits the GPU uses (dropout masks, seeds of each step), mirrored bit for
 * bit by shaders/random.wgsl. The sequential CPU stream built on them is data/rng.ts.
 */

/** A 32-bit integer hash (lowbias32); the same function is in shaders that need random bits. */
export function hash32(x: number): number {
  x >>>= 0;
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d) >>> 0;
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b) >>> 0;
  x ^= x >>> 16;
  return x >>> 0;
}

/** Uniform [0,1) for element `index` of the stream `seed` (what the GPU computes per element). */
export function counterUniform(seed: number, index: number): number {
  return hash32((hash32(seed) ^ index) >>> 0) / 4294967296;
}

/** `n` values uniform in [-scale, scale) from the stream `seed`: operands for the engine's own kernel checks. */
export function counterValues(seed: number, n: number, scale = 1): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => (2 * counterUniform(seed, i) - 1) * scale);
}
