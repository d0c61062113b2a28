/** LayerNorm over the last dimension, forward and backward (BERT: eps from the config, e.g. 1e-12). */
import layernormSource from '../../../shaders/layernorm.wgsl?raw';
import { ShapeError } from '../errors.ts';
import { type Engine, type KernelSpec, Params, ceilDiv } from '../engine.ts';
import { type StoredMatrix, singleBlock, storedView } from '../stored.ts';
import { type Tensor, shapeString } from '../tensor.ts';
import { expectDims, expectShape } from './check.ts';
import { halfWords } from './half.ts';
import { dispatchFolded, expectDistinct } from './launch.ts';
import { rowKernelFamily, rowsPerWorkgroup } from './reductions.ts';

const rowKernel = rowKernelFamily('layernorm', layernormSource);
const FORWARD = rowKernel('layernorm_forward', ['read', 'read', 'read', 'read_write', 'read_write', 'read_write']);
const BACKWARD = rowKernel('layernorm_backward', ['read', 'read', 'read', 'read', 'read', 'read_write']);
const PARAM_GRAD_PARTIAL = rowKernel('layernorm_param_grad_partial', ['read', 'read', 'read', 'read', 'read_write']);
const PARAM_GRAD_FINAL = rowKernel('layernorm_param_grad_final', ['read', 'read_write', 'read_write']);

/** Columns per workgroup of the dgamma/dbeta kernels (PG_COLS in layernorm.wgsl). */
const PARAM_GRAD_COLS = 64;
/** dgamma/dbeta are summed over at most this many row chunks, each at least MIN_CHUNK_ROWS long. */
const MAX_CHUNKS = 256;
const MIN_CHUNK_ROWS = 64;

/** gamma or beta (an f32 tensor [H], or a stored one-row matrix, f32 or f16) as the buffer to bind. */
function paramVector(op: string, name: string, v: Tensor | StoredMatrix, width: number): { data: Tensor; half: boolean } {
  if (!('blocks' in v)) {
    expectShape(op, name, v, [width]);
    return { data: v, half: false };
  }
  if (v.rows !== 1 || v.cols !== width) throw new ShapeError(`${op}: ${name} (${v.name}) is [${v.rows}, ${v.cols}], expected one row of ${width}`);
  const data = singleBlock(op, v);
  const half = v.precision === 'f16';
  expectShape(op, name, data, half ? [halfWords(width)] : data.shape.length === 1 ? [width] : [1, width], half ? 'u32' : 'f32');
  return { data, half };
}

/** The kernel, specialised to how gamma (and beta) are stored. */
function specFor(spec: KernelSpec, half: boolean): KernelSpec {
  return half ? { ...spec, constants: { PARAMS_HALF: 1 } } : spec;
}

function rowsAndWidth(op: string, x: Tensor): [number, number] {
  if (x.shape.length !== 2) throw new ShapeError(`${op}: x must be [rows, hidden], got shape ${shapeString(x.shape)}`);
  const [rows, width] = x.shape;
  expectDims(op, { rows, hidden: width });
  return [rows, width];
}

/**
 * y = (x - mean)/sqrt(var + eps)·gamma + beta per row of x [R, H]; saves mean [R] and rstd [R] for
 * the backward. gamma and beta are f32 [H] tensors or stored one-row matrices of one precision.
 */
export function layerNormForward(
  engine: Engine,
  x: Tensor,
  gammaIn: Tensor | StoredMatrix,
  betaIn: Tensor | StoredMatrix,
  y: Tensor,
  mean: Tensor,
  rstd: Tensor,
  eps: number,
): void {
  const op = 'layerNormForward';
  const [rows, width] = rowsAndWidth(op, x);
  expectShape(op, 'x', x, [rows, width]);
  const gamma = paramVector(op, 'gamma', gammaIn, width);
  const beta = paramVector(op, 'beta', betaIn, width);
  if (gamma.half !== beta.half) throw new ShapeError(`${op}: gamma and beta must share one precision`);
  expectShape(op, 'y', y, [rows, width]);
  expectShape(op, 'mean', mean, [rows]);
  expectShape(op, 'rstd', rstd, [rows]);
  if (!(eps > 0) || !Number.isFinite(eps)) throw new ShapeError(`${op}: eps must be a positive number, got ${eps}`);
  expectDistinct(op, { y, mean, rstd }, { x, gamma: gamma.data, beta: beta.data });
  const params = new Params().u32(rows, width).f32(eps).build();
  const buffers = [x.buffer, gamma.data.buffer, beta.data.buffer, y.buffer, mean.buffer, rstd.buffer];
  dispatchFolded(engine, specFor(FORWARD(engine), gamma.half), params, buffers, ceilDiv(rows, rowsPerWorkgroup(engine)));
}

/**
 * dx (overwritten) from dy and the forward's saved mean/rstd; with `grads`, also dgamma and dbeta
 * [H] (overwritten), summed over rows in a fixed order (no atomics), so runs are bit-identical.
 */
export function layerNormBackward(
  engine: Engine,
  x: Tensor,
  gammaIn: Tensor | StoredMatrix,
  mean: Tensor,
  rstd: Tensor,
  dy: Tensor,
  dx: Tensor,
  grads?: { dgamma: Tensor; dbeta: Tensor },
): void {
  const op = 'layerNormBackward';
  const [rows, width] = rowsAndWidth(op, x);
  expectShape(op, 'x', x, [rows, width]);
  const gamma = paramVector(op, 'gamma', gammaIn, width);
  expectShape(op, 'mean', mean, [rows]);
  expectShape(op, 'rstd', rstd, [rows]);
  expectShape(op, 'dy', dy, [rows, width]);
  expectShape(op, 'dx', dx, [rows, width]);
  const inputs = { x, gamma: gamma.data, mean, rstd, dy };
  if (grads) {
    expectShape(op, 'dgamma', grads.dgamma, [width]);
    expectShape(op, 'dbeta', grads.dbeta, [width]);
    expectDistinct(op, { dx, dgamma: grads.dgamma, dbeta: grads.dbeta }, inputs);
  } else {
    expectDistinct(op, { dx }, inputs);
  }
  const params = new Params().u32(rows, width).build();
  const buffers = [x.buffer, gamma.data.buffer, mean.buffer, rstd.buffer, dy.buffer, dx.buffer];
  dispatchFolded(engine, specFor(BACKWARD(engine), gamma.half), params, buffers, ceilDiv(rows, rowsPerWorkgroup(engine)));
  if (grads) paramGrads(engine, x, mean, rstd, dy, grads.dgamma, grads.dbeta, rows, width);
}

function paramGrads(engine: Engine, x: Tensor, mean: Tensor, rstd: Tensor, dy: Tensor, dgamma: Tensor, dbeta: Tensor, rows: number, width: number): void {
  // The chunking depends only on the row count, so the summation order is fixed.
  const chunks = Math.min(ceilDiv(rows, MIN_CHUNK_ROWS), MAX_CHUNKS);
  const rowsPerChunk = ceilDiv(rows, chunks);
  const partials = engine.alloc([2, chunks, width]);
  const columnBlocks = ceilDiv(width, PARAM_GRAD_COLS);
  const params = new Params().u32(rows, width, rowsPerChunk, chunks, columnBlocks).build();
  const buffers = [x.buffer, mean.buffer, rstd.buffer, dy.buffer, partials.buffer];
  dispatchFolded(engine, PARAM_GRAD_PARTIAL(engine), params, buffers, columnBlocks * chunks);
  dispatchFolded(engine, PARAM_GRAD_FINAL(engine), params, [partials.buffer, dgamma.buffer, dbeta.buffer], ceilDiv(width, PARAM_GRAD_COLS));
  engine.release(partials); // reuse of the buffer is ordered after these dispatches
}
