/**
 * Sentence pooling of hidden states [B, T, H] into [B, H], the modes of sentence-transformers'
 * Pooling module, forward and backward. The forward returns what its backward needs: the token
 * weights [B, T] of the weighted-sum modes, or the token each max-pooled element came from [B, H].
 */
import source from '../../../shaders/pooling.wgsl?raw';
import { ShapeError } from '../errors.ts';
import { type Engine, Params } from '../engine.ts';
import { type Tensor, shapeString } from '../tensor.ts';
import { expectDims, expectShape } from './check.ts';
import { dispatchPerElement, expectDistinct, kernelFamily } from './launch.ts';
import { POOLING_MODES, type PoolingMode } from './pooling-modes.ts';

export { POOLING_MODES, type PoolingMode };

/** pool_weights' mode numbers (max pooling has kernels of its own). */
const WEIGHT_MODE: Record<Exclude<PoolingMode, 'max'>, number> = { cls: 0, mean: 1, 'mean-sqrt-len': 2, 'weighted-mean': 3, 'last-token': 4 };

const kernel = kernelFamily('pooling', source);
const WEIGHTS = kernel('pool_weights', ['read', 'read_write']);
const WEIGHTED_FORWARD = kernel('weighted_pool_forward', ['read', 'read', 'read_write']);
const WEIGHTED_BACKWARD = kernel('weighted_pool_backward', ['read', 'read', 'read_write']);
const MAX_FORWARD = kernel('max_pool_forward', ['read', 'read', 'read_write', 'read_write']);
const MAX_BACKWARD = kernel('max_pool_backward', ['read', 'read', 'read_write']);

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

function params({ batch, seq, hidden }: PoolDims, mode = 0): ArrayBuffer {
  return new Params().u32(batch, seq, hidden, mode).build();
}

function checkMode(op: string, mode: string): asserts mode is PoolingMode {
  if (!(POOLING_MODES as readonly string[]).includes(mode)) throw new ShapeError(`${op}: pooling must be one of ${POOLING_MODES.join(', ')}, got ${mode}`);
}

/**
 * out[b] = the pooled hidden[b] under `mask` [B, T] (1 = a token that counts; CLS pooling ignores it).
 * Returns a new tensor the backward needs (the caller releases it): token weights [B, T], or for
 * max pooling the token index of each output element [B, H] (u32).
 */
export function poolForward(engine: Engine, mode: PoolingMode, hidden: Tensor, mask: Tensor, out: Tensor): Tensor {
  const op = 'poolForward';
  checkMode(op, mode);
  const dims = tokenDims(op, 'hidden', hidden);
  expectShape(op, 'mask', mask, [dims.batch, dims.seq]);
  expectShape(op, 'out', out, [dims.batch, dims.hidden]);
  expectDistinct(op, { out }, { hidden, mask });
  const pooled = dims.batch * dims.hidden;
  if (mode === 'max') {
    const argmax = engine.alloc([dims.batch, dims.hidden], 'u32');
    dispatchPerElement(engine, MAX_FORWARD, params(dims), [hidden.buffer, mask.buffer, out.buffer, argmax.buffer], pooled);
    return argmax;
  }
  const weights = engine.alloc([dims.batch, dims.seq]);
  dispatchPerElement(engine, WEIGHTS, params(dims, WEIGHT_MODE[mode]), [mask.buffer, weights.buffer], dims.batch);
  dispatchPerElement(engine, WEIGHTED_FORWARD, params(dims), [hidden.buffer, weights.buffer, out.buffer], pooled);
  return weights;
}

/** dHidden [B, T, H] (overwritten) from dOut [B, H] and what poolForward returned for the same `mode`. */
export function poolBackward(engine: Engine, mode: PoolingMode, saved: Tensor, dOut: Tensor, dHidden: Tensor): void {
  const op = 'poolBackward';
  checkMode(op, mode);
  const dims = tokenDims(op, 'dHidden', dHidden);
  expectShape(op, 'dOut', dOut, [dims.batch, dims.hidden]);
  expectDistinct(op, { dHidden }, { saved, dOut });
  const tokens = dims.batch * dims.seq * dims.hidden;
  if (mode === 'max') {
    expectShape(op, 'argmax', saved, [dims.batch, dims.hidden], 'u32');
    dispatchPerElement(engine, MAX_BACKWARD, params(dims), [saved.buffer, dOut.buffer, dHidden.buffer], tokens);
    return;
  }
  expectShape(op, 'weights', saved, [dims.batch, dims.seq]);
  dispatchPerElement(engine, WEIGHTED_BACKWARD, params(dims), [saved.buffer, dOut.buffer, dHidden.buffer], tokens);
}
