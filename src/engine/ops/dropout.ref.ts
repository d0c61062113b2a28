/** Float64 reference for dropout.wgsl: the CPU mirror of the GPU mask. */
import { counterUniform } from '../rng.ts';

/** 1 where element i is kept (counterUniform(seed, i + indexOffset) ≥ p), else 0. */
export function dropoutMaskRef(n: number, p: number, seed: number, indexOffset = 0): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (counterUniform(seed, (i + indexOffset) % 2 ** 32) >= p ? 1 : 0));
}

/** x·mask/(1-p). */
export function dropoutForwardRef(x: ArrayLike<number>, p: number, seed: number, indexOffset = 0): Float64Array {
  const mask = dropoutMaskRef(x.length, p, seed, indexOffset);
  return Float64Array.from(x, (v, i) => (mask[i] ? v / (1 - p) : 0));
}

/** dy·mask/(1-p): the same linear map as the forward. */
export function dropoutBackwardRef(dy: ArrayLike<number>, p: number, seed: number): Float64Array {
  return dropoutForwardRef(dy, p, seed);
}
