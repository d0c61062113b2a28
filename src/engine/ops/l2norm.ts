/** Row-wise L2 normalisation (torch.nn.functional.normalize, eps 1e-12), forward and backward. */
import l2normSource from '../../../shaders/l2norm.wgsl?raw';
import { ShapeError } from '../errors.ts';
import { type Engine, Params, ceilDiv } from '../engine.ts';
import { type Tensor, shapeString } from '../tensor.ts';
import { expectDims, expectShape } from './check.ts';
import { dispatchFolded, expectDistinct } from './launch.ts';
import { rowKernelFamily, rowsPerWorkgroup } from './reductions.ts';

const kernel = rowKernelFamily('l2norm', l2normSource);
const FORWARD = kernel('l2norm_forward', ['read', 'read_write', 'read_write']);
const BACKWARD = kernel('l2norm_backward', ['read', 'read', 'read', 'read_write']);

function rowsAndWidth(op: string, name: string, t: Tensor): [number, number] {
  if (t.shape.length !== 2) throw new ShapeError(`${op}: ${name} must be [rows, width], got shape ${shapeString(t.shape)}`);
  const [rows, width] = t.shape;
  expectDims(op, { rows, width });
  expectShape(op, name, t, t.shape);
  return [rows, width];
}

/** y = x / max(||x||, 1e-12) per row of x [R, H]; saves the raw norms [R] for the backward. */
export function l2NormalizeForward(engine: Engine, x: Tensor, y: Tensor, norms: Tensor): void {
  const op = 'l2NormalizeForward';
  const [rows, width] = rowsAndWidth(op, 'x', x);
  expectShape(op, 'y', y, [rows, width]);
  expectShape(op, 'norms', norms, [rows]);
  expectDistinct(op, { y, norms }, { x });
  const params = new Params().u32(rows, width).build();
  dispatchFolded(engine, FORWARD(engine), params, [x.buffer, y.buffer, norms.buffer], ceilDiv(rows, rowsPerWorkgroup(engine)));
}

/** dx (overwritten) from the forward's y and norms: (dy − y·(y·dy))/||x||, or dy/1e-12 where the norm was clamped. */
export function l2NormalizeBackward(engine: Engine, y: Tensor, norms: Tensor, dy: Tensor, dx: Tensor): void {
  const op = 'l2NormalizeBackward';
  const [rows, width] = rowsAndWidth(op, 'y', y);
  expectShape(op, 'norms', norms, [rows]);
  expectShape(op, 'dy', dy, [rows, width]);
  expectShape(op, 'dx', dx, [rows, width]);
  expectDistinct(op, { dx }, { y, norms, dy });
  const params = new Params().u32(rows, width).build();
  dispatchFolded(engine, BACKWARD(engine), params, [y.buffer, norms.buffer, dy.buffer, dx.buffer], ceilDiv(rows, rowsPerWorkgroup(engine)));
}
