/** Elementwise arithmetic: residual additions. */
import source from '../../../shaders/elementwise.wgsl?raw';
import { ShapeError } from '../errors.ts';
import { type Engine, Params } from '../engine.ts';
import { type Tensor, numel } from '../tensor.ts';
import { expectSameShape, expectShape } from './check.ts';
import { dispatchPerElement, kernelFamily } from './launch.ts';

const kernel = kernelFamily('elementwise', source);
const ADD = kernel('add', ['read', 'read', 'read_write']);
const ADD_IN_PLACE = kernel('add_in_place', ['read_write', 'read']);

/** out = a + b, all the same shape. `out` may be `a` or `b` (not both). */
export function add(engine: Engine, a: Tensor, b: Tensor, out: Tensor): void {
  expectShape('add', 'a', a, a.shape);
  expectSameShape('add', ['a', 'b'], a, b);
  expectSameShape('add', ['a', 'out'], a, out);
  if (out.buffer === a.buffer && out.buffer === b.buffer) {
    throw new ShapeError('add: a, b and out are all the same tensor; write 2·a with a separate output');
  }
  const n = numel(a.shape);
  const params = new Params().u32(n).build();
  if (out.buffer === a.buffer) dispatchPerElement(engine, ADD_IN_PLACE, params, [out.buffer, b.buffer], n);
  else if (out.buffer === b.buffer) dispatchPerElement(engine, ADD_IN_PLACE, params, [out.buffer, a.buffer], n);
  else dispatchPerElement(engine, ADD, params, [a.buffer, b.buffer, out.buffer], n);
}
