/**
 * Half-precision storage on the GPU (half.wgsl): pack f32 → f16 pairs in u32 words and unpack back.
 * For what is stored but not trained; arithmetic stays f32. No device feature is needed.
 */
import source from '../../../shaders/half.wgsl?raw';
import { type Engine, Params } from '../engine.ts';
import { type Tensor, numel } from '../tensor.ts';
import { expectShape } from './check.ts';
import { dispatchPerElement, expectDistinct, kernelFamily } from './launch.ts';

const kernel = kernelFamily('half', source);
const PACK = kernel('half_pack', ['read', 'read_write']);
const UNPACK = kernel('half_unpack', ['read', 'read_write']);

/** u32 words that hold n packed halves. */
export function halfWords(n: number): number {
  return Math.ceil(n / 2);
}

/**
 * packed [ceil(n/2)] u32 ← x (f32, n elements). Values outside ±65504 pack to an indeterminate
 * value (the GPU cannot raise an error), so only values known to be in range belong here.
 */
export function packHalf(engine: Engine, x: Tensor, packed: Tensor): void {
  const op = 'packHalf';
  const n = numel(x.shape);
  expectShape(op, 'x', x, x.shape);
  expectShape(op, 'packed', packed, [halfWords(n)], 'u32');
  expectDistinct(op, { packed }, { x });
  dispatchPerElement(engine, PACK, new Params().u32(n).build(), [x.buffer, packed.buffer], halfWords(n));
}

/** y (f32, n elements) ← the first n halves of packed [ceil(n/2)] u32 (exact: every f16 is an f32). */
export function unpackHalf(engine: Engine, packed: Tensor, y: Tensor): void {
  const op = 'unpackHalf';
  const n = numel(y.shape);
  expectShape(op, 'y', y, y.shape);
  expectShape(op, 'packed', packed, [halfWords(n)], 'u32');
  expectDistinct(op, { y }, { packed });
  dispatchPerElement(engine, UNPACK, new Params().u32(n).build(), [packed.buffer, y.buffer], n);
}
