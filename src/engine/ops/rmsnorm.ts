/**
 * RMSNorm over the last dimension, forward and backward (Llama family: eps from the config's
 * rms_norm_eps, e.g. 1e-5 or 1e-6). Qwen3's q/k norm is the same op on the projections viewed as
 * [tokens·heads, headDim] (the same buffer with that shape).
 */
import rmsnormSource from '../../../shaders/rmsnorm.wgsl?raw';
import rowReduceSource from '../../../shaders/row-reduce.wgsl?raw';
import { ShapeError } from '../errors.ts';
import { type Engine, Params, ceilDiv } from '../engine.ts';
import type { Tensor } from '../tensor.ts';
import { expectMatrix, expectShape } from './check.ts';
import { dispatchFolded, expectDistinct, kernelFamily } from './launch.ts';

const kernel = kernelFamily('rmsnorm', rowReduceSource + rmsnormSource);
const FORWARD = kernel('rmsnorm_forward', ['read', 'read', 'read_write', 'read_write']);
const BACKWARD = kernel('rmsnorm_backward', ['read', 'read', 'read', 'read', 'read_write']);
const WEIGHT_GRAD = kernel('rmsnorm_weight_grad', ['read', 'read', 'read', 'read_write']);

/** Rows per workgroup of the row kernels (ROWS_PER_WG in row-reduce.wgsl). */
const ROWS_PER_WG = 16;
/** Columns per workgroup of rmsnorm_weight_grad. */
const WEIGHT_GRAD_COLS = 64;

/** y = x·rstd·weight per row of x [R, H], rstd = 1/√(mean(x²) + eps); saves rstd [R] for the backward. */
export function rmsNormForward(engine: Engine, x: Tensor, weight: Tensor, y: Tensor, rstd: Tensor, eps: number): void {
  const op = 'rmsNormForward';
  const [rows, width] = expectMatrix(op, 'x', x);
  expectShape(op, 'weight', weight, [width]);
  expectShape(op, 'y', y, [rows, width]);
  expectShape(op, 'rstd', rstd, [rows]);
  if (!(eps > 0) || !Number.isFinite(eps)) throw new ShapeError(`${op}: eps must be a positive number, got ${eps}`);
  expectDistinct(op, { y, rstd }, { x, weight });
  const params = new Params().u32(rows, width).f32(eps).build();
  dispatchFolded(engine, FORWARD, params, [x.buffer, weight.buffer, y.buffer, rstd.buffer], ceilDiv(rows, ROWS_PER_WG));
}

/**
 * dx (overwritten) from dy and the forward's saved rstd; with `dweight` [H], also the weight's
 * gradient (overwritten), summed over rows in order (no atomics).
 */
export function rmsNormBackward(engine: Engine, x: Tensor, weight: Tensor, rstd: Tensor, dy: Tensor, dx: Tensor, dweight?: Tensor): void {
  const op = 'rmsNormBackward';
  const [rows, width] = expectMatrix(op, 'x', x);
  expectShape(op, 'weight', weight, [width]);
  expectShape(op, 'rstd', rstd, [rows]);
  expectShape(op, 'dy', dy, [rows, width]);
  expectShape(op, 'dx', dx, [rows, width]);
  if (dweight) expectShape(op, 'dweight', dweight, [width]);
  expectDistinct(op, dweight ? { dx, dweight } : { dx }, { x, weight, rstd, dy });
  const params = new Params().u32(rows, width).build();
  dispatchFolded(engine, BACKWARD, params, [x.buffer, weight.buffer, rstd.buffer, dy.buffer, dx.buffer], ceilDiv(rows, ROWS_PER_WG));
  if (dweight) dispatchFolded(engine, WEIGHT_GRAD, params, [x.buffer, rstd.buffer, dy.buffer, dweight.buffer], ceilDiv(width, WEIGHT_GRAD_COLS));
}
