/** GELU (BERT's erf form), forward and backward. */
import source from '../../../shaders/activation.wgsl?raw';
import { type Engine, type KernelSpec, Params, ceilDiv, grid1d } from '../engine.ts';
import type { Tensor } from '../tensor.ts';
import { numel } from '../tensor.ts';
import { expectSameShape, expectShape } from './check.ts';
import { halfWords } from './half.ts';

const WG = 256;
const FORWARD: KernelSpec = { module: 'activation', source, entryPoint: 'gelu_forward', storage: ['read', 'read_write'] };
const BACKWARD: KernelSpec = { module: 'activation', source, entryPoint: 'gelu_backward', storage: ['read', 'read', 'read_write'] };
const BACKWARD_PACKED: KernelSpec = { module: 'activation', source, entryPoint: 'gelu_backward_packed', storage: ['read', 'read', 'read_write'] };

function elementwise(engine: Engine, spec: KernelSpec, n: number, buffers: GPUBuffer[]): void {
  const [x, y] = grid1d(ceilDiv(n, WG), engine.limits.maxComputeWorkgroupsPerDimension);
  engine.dispatch(spec, new Params().u32(n, x * WG).build(), buffers, [x, y]);
}

/** y = gelu(x), any shape. */
export function geluForward(engine: Engine, x: Tensor, y: Tensor): void {
  expectSameShape('geluForward', ['x', 'y'], x, y);
  elementwise(engine, FORWARD, numel(x.shape), [x.buffer, y.buffer]);
}

/** dx = dy · gelu'(x). */
export function geluBackward(engine: Engine, x: Tensor, dy: Tensor, dx: Tensor): void {
  expectSameShape('geluBackward', ['x', 'dy'], x, dy);
  expectSameShape('geluBackward', ['x', 'dx'], x, dx);
  elementwise(engine, BACKWARD, numel(x.shape), [x.buffer, dy.buffer, dx.buffer]);
}

/** dx = dy · gelu'(x), x kept as f16 halves packed two per u32 (saved-tensor.ts): no f32 copy of x. */
export function geluBackwardPacked(engine: Engine, xPacked: Tensor, dy: Tensor, dx: Tensor): void {
  expectSameShape('geluBackwardPacked', ['dy', 'dx'], dy, dx);
  expectShape('geluBackwardPacked', 'xPacked', xPacked, [halfWords(numel(dy.shape))], 'u32');
  elementwise(engine, BACKWARD_PACKED, numel(dy.shape), [xPacked.buffer, dy.buffer, dx.buffer]);
}
