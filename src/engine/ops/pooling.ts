/** Sentence pooling of hidden states [B, T, H]: masked mean (sentence-transformers) and CLS, forward and backward. */
import source from '../../../shaders/pooling.wgsl?raw';
import { ShapeError } from '../errors.ts';
import { type Engine, Params } from '../engine.ts';
import { type Tensor, shapeString } from '../tensor.ts';
import { expectDims, expectShape } from './check.ts';
import { dispatchPerElement, expectDistinct, kernelFamily } from './launch.ts';

const kernel = kernelFamily('pooling', source);
const DENOMINATORS = kernel('pool_denominators', ['read', 'read_write']);
const MEAN_FORWARD = kernel('mean_pool_forward', ['read', 'read', 'read', 'read_write']);
const MEAN_BACKWARD = kernel('mean_pool_backward', ['read', 'read', 'read', 'read_write']);
const CLS_FORWARD = kernel('cls_pool_forward', ['read', 'read_write']);
const CLS_BACKWARD = kernel('cls_pool_backward', ['read', 'read_write']);

interface PoolDims {
  batch: number;
  seq: number;
  hidden: number;
}

/** [B, T, H] from a rank-3 tensor, validated. */
function tokenDims(op: string, name: string, t: Tensor): PoolDims {
  if (t.shape.length !== 3) throw new ShapeError(`${op}: ${name} must be [batch, seq, hidden], got shape ${shapeString(t.shape)}`);
  const [batch, seq, hidden] = t.shape;
  expectDims(op, { batch, seq, hidden });
  expectShape(op, name, t, t.shape);
  return { batch, seq, hidden };
}

function params({ batch, seq, hidden }: PoolDims): ArrayBuffer {
  return new Params().u32(batch, seq, hidden).build();
}

/** Record max(sum(mask[b]), 1e-9) per sequence into a new [B] tensor (the caller releases it). */
function denominators(engine: Engine, mask: Tensor, dims: PoolDims): Tensor {
  const result = engine.alloc([dims.batch]);
  dispatchPerElement(engine, DENOMINATORS, params(dims), [mask.buffer, result.buffer], dims.batch);
  return result;
}

/** out[b] = sum_t mask[b, t]·hidden[b, t] / max(sum_t mask[b, t], 1e-9); a sequence with no real token pools to 0. */
export function meanPoolForward(engine: Engine, hidden: Tensor, mask: Tensor, out: Tensor): void {
  const op = 'meanPoolForward';
  const dims = tokenDims(op, 'hidden', hidden);
  expectShape(op, 'mask', mask, [dims.batch, dims.seq]);
  expectShape(op, 'out', out, [dims.batch, dims.hidden]);
  expectDistinct(op, { out }, { hidden, mask });
  const denom = denominators(engine, mask, dims);
  dispatchPerElement(engine, MEAN_FORWARD, params(dims), [hidden.buffer, mask.buffer, denom.buffer, out.buffer], dims.batch * dims.hidden);
  engine.release(denom); // reuse of the buffer is ordered after these dispatches
}

/** dHidden[b, t] = mask[b, t]·dOut[b] / max(sum_t mask[b, t], 1e-9) (overwritten). */
export function meanPoolBackward(engine: Engine, mask: Tensor, dOut: Tensor, dHidden: Tensor): void {
  const op = 'meanPoolBackward';
  const dims = tokenDims(op, 'dHidden', dHidden);
  expectShape(op, 'mask', mask, [dims.batch, dims.seq]);
  expectShape(op, 'dOut', dOut, [dims.batch, dims.hidden]);
  expectDistinct(op, { dHidden }, { mask, dOut });
  const denom = denominators(engine, mask, dims);
  const buffers = [mask.buffer, dOut.buffer, denom.buffer, dHidden.buffer];
  dispatchPerElement(engine, MEAN_BACKWARD, params(dims), buffers, dims.batch * dims.seq * dims.hidden);
  engine.release(denom);
}

/** out[b] = hidden[b, 0] (the [CLS] token). */
export function clsPoolForward(engine: Engine, hidden: Tensor, out: Tensor): void {
  const op = 'clsPoolForward';
  const dims = tokenDims(op, 'hidden', hidden);
  expectShape(op, 'out', out, [dims.batch, dims.hidden]);
  expectDistinct(op, { out }, { hidden });
  dispatchPerElement(engine, CLS_FORWARD, params(dims), [hidden.buffer, out.buffer], dims.batch * dims.hidden);
}

/** dHidden[b, 0] = dOut[b], every other token 0 (overwritten). */
export function clsPoolBackward(engine: Engine, dOut: Tensor, dHidden: Tensor): void {
  const op = 'clsPoolBackward';
  const dims = tokenDims(op, 'dHidden', dHidden);
  expectShape(op, 'dOut', dOut, [dims.batch, dims.hidden]);
  expectDistinct(op, { dHidden }, { dOut });
  dispatchPerElement(engine, CLS_BACKWARD, params(dims), [dOut.buffer, dHidden.buffer], dims.batch * dims.seq * dims.hidden);
}
