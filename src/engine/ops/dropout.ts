/**
 * Inverted dropout with a counter-based RNG: the mask is a pure function of (seed, element index).
 * An index offset lets a slice of a larger tensor draw the mask of its place in the whole.
 */
import randomSource from '../../../shaders/random.wgsl?raw';
import dropoutSource from '../../../shaders/dropout.wgsl?raw';
import { type Engine, type KernelSpec, Params } from '../engine.ts';
import { ShapeError } from '../errors.ts';
import { type Tensor, numel } from '../tensor.ts';
import { expectSameShape } from './check.ts';
import { dispatchPerElement, expectDistinct } from './launch.ts';

const APPLY: KernelSpec = {
  module: 'dropout',
  source: randomSource + dropoutSource,
  entryPoint: 'dropout_apply',
  storage: ['read', 'read_write'],
};

/** What a kernel needs to reproduce a dropout mask: see dropout_keep in shaders/random.wgsl. */
export interface DropoutConstants {
  seed: number;
  /** ceil(p·2^32): element i is kept iff its 32 random bits are ≥ this. */
  keepThreshold: number;
  /** 1/(1-p), the inverted-dropout scale of kept elements. */
  keepScale: number;
  /** Added (mod 2^32) to every element index before hashing. */
  indexOffset: number;
}

/** Validate p ∈ [0, 1), a u32 seed and a non-negative integer index offset; derive the kernel constants. */
export function dropoutConstants(op: string, p: number, seed: number, indexOffset = 0): DropoutConstants {
  if (!(p >= 0 && p < 1)) throw new ShapeError(`${op}: dropout p must be in [0, 1), got ${p}`);
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
    throw new ShapeError(`${op}: dropout seed must be an integer in [0, 2^32), got ${seed}`);
  }
  if (!Number.isSafeInteger(indexOffset) || indexOffset < 0) throw new ShapeError(`${op}: dropout index offset must be a non-negative integer, got ${indexOffset}`);
  const keepThreshold = Math.ceil(p * 2 ** 32); // exact: p·2^32 only shifts the exponent
  if (keepThreshold > 0xffffffff) throw new ShapeError(`${op}: dropout p = ${p} is too close to 1 to keep any element`);
  return { seed, keepThreshold, keepScale: 1 / (1 - p), indexOffset: indexOffset % 2 ** 32 };
}

function applyMask(op: string, engine: Engine, input: Tensor, output: Tensor, names: [string, string], p: number, seed: number, indexOffset: number): void {
  expectSameShape(op, names, input, output);
  expectDistinct(op, { [names[1]]: output }, { [names[0]]: input });
  const { keepThreshold, keepScale, indexOffset: offset } = dropoutConstants(op, p, seed, indexOffset);
  if (p === 0) {
    engine.copy(input, output);
    return;
  }
  const n = numel(input.shape);
  const params = new Params().u32(n, seed, keepThreshold).f32(keepScale).u32(offset).build();
  dispatchPerElement(engine, APPLY, params, [input.buffer, output.buffer], n);
}

/** y = x·mask/(1-p), element i kept iff counterUniform(seed, i + indexOffset) ≥ p. p = 0 copies x. Any shape. */
export function dropoutForward(engine: Engine, x: Tensor, y: Tensor, p: number, seed: number, indexOffset = 0): void {
  applyMask('dropoutForward', engine, x, y, ['x', 'y'], p, seed, indexOffset);
}

/** dx = dy·mask/(1-p) with the mask of the forward call with the same p, seed and index offset. */
export function dropoutBackward(engine: Engine, dy: Tensor, dx: Tensor, p: number, seed: number, indexOffset = 0): void {
  applyMask('dropoutBackward', engine, dy, dx, ['dy', 'dx'], p, seed, indexOffset);
}
