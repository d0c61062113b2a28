/**
 * Half-precision storage on the GPU (half.wgsl): pack f32 → f16 pairs in u32 words and unpack back.
 * For what is stored but not trained; arithmetic stays f32. No device feature is needed.
 */
import source from '../../../shaders/half.wgsl?raw';
import { type Engine, Params } from '../engine.ts';
import { ShapeError } from '../errors.ts';
import { type Tensor, numel, shapeString } from '../tensor.ts';
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

/**
 * y (f32, n elements) ← halves first .. first + n - 1 of packed u32 [words] (exact: every f16 is
 * an f32), e.g. a chunk of a stored block's rows.
 */
export function unpackHalf(engine: Engine, packed: Tensor, y: Tensor, first = 0): void {
  const op = 'unpackHalf';
  const n = numel(y.shape);
  expectShape(op, 'y', y, y.shape);
  if (!(Number.isInteger(first) && first >= 0 && packed.dtype === 'u32' && packed.shape.length === 1 && halfWords(first + n) <= packed.shape[0])) {
    throw new ShapeError(`${op}: halves ${first}..${first + n - 1} are not in packed (${packed.dtype} ${shapeString(packed.shape)})`);
  }
  expectDistinct(op, { y }, { packed });
  dispatchPerElement(engine, UNPACK, new Params().u32(n, first).build(), [packed.buffer, y.buffer], n);
}
