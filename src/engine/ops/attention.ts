/**
 * Multi-head scaled dot-product attention with BERT's additive padding mask, forward and backward.
 * See shaders/attention.wgsl for the formulas and the kernel layout.
 *
 * Limits: headDim ≤ MAX_HEAD_DIM (256; the kernels keep head vectors in private arrays). Sequence
 * length has no kernel limit; probs [B, heads, T, T] must fit one storage buffer.
 */
import tiledSource from '../../../shaders/attention-tiled.wgsl?raw';
import source from '../../../shaders/attention.wgsl?raw';
import { ShapeError } from '../errors.ts';
import { type Engine, Params, ceilDiv } from '../engine.ts';
import type { Tensor } from '../tensor.ts';
import { expectDims, expectShape, expectTokens } from './check.ts';
import { dispatchFolded, expectDistinct, kernelFamily } from './launch.ts';

const kernel = kernelFamily('attention', source);
const tiledKernel = kernelFamily('attention-tiled', source + tiledSource);
export interface AttentionShape {
  batch: number;
  seq: number;
  heads: number;
  headDim: number;
}

/** Largest head dimension the kernels accept (MAX_HEAD_DIM in attention.wgsl). */
export const MAX_HEAD_DIM = 256;
/** Invocations per workgroup (ATTN_WG in attention.wgsl); one invocation per (batch, head, row). */
const WG = 64;

const FORWARD = kernel('attention_forward', ['read', 'read', 'read', 'read', 'read_write', 'read_write']);
const BACKWARD_QUERY = kernel('attention_backward_query', ['read', 'read', 'read', 'read', 'read_write', 'read_write']);
const BACKWARD_KEY = kernel('attention_backward_key', ['read', 'read', 'read', 'read', 'read_write', 'read_write']);
const FORWARD_TILED = tiledKernel('attention_forward_tiled', ['read', 'read', 'read', 'read', 'read_write', 'read_write']);
const PROBS = tiledKernel('attention_probs', ['read', 'read', 'read', 'read', 'read_write']);

/** Largest head dimension of the K/V-tiled forward (TILED_MAX_HEAD_DIM in attention-tiled.wgsl). */
export const TILED_MAX_HEAD_DIM = 128;

/** Throw unless headDim fits the head vectors the kernels keep in private arrays (also causal-attention.ts). */
export function expectHeadDimFits(op: string, headDim: number): void {
  if (headDim > MAX_HEAD_DIM) {
    throw new ShapeError(`${op}: headDim ${headDim} exceeds the attention kernels' limit of ${MAX_HEAD_DIM} (MAX_HEAD_DIM)`);
  }
}

function checkShape(op: string, shape: AttentionShape): void {
  const { batch, seq, heads, headDim } = shape;
  expectDims(op, { batch, seq, heads, headDim });
  expectHeadDimFits(op, headDim);
}

/** q, k, v, context and their gradients: [B, T, heads·D], or the same memory viewed as [B·T, heads·D]. */
function expectHeads(op: string, name: string, t: Tensor, shape: AttentionShape): void {
  expectTokens(op, name, t, shape.batch, shape.seq, shape.heads * shape.headDim);
}

function params(shape: AttentionShape): ArrayBuffer {
  return new Params().u32(shape.batch, shape.seq, shape.heads, shape.headDim).f32(1 / Math.sqrt(shape.headDim)).build();
}

function rows(shape: AttentionShape): number {
  return shape.batch * shape.heads * shape.seq;
}

/**
 * context = softmax(q·kᵀ/√D + (1 − mask[key])·finfo(f32).min)·v per batch and head; the
 * probabilities [B, heads, T, T] are written to `probs` for the backward. Padded keys get
 * probability exactly 0; a sequence with no real key attends uniformly (as Hugging Face BERT does).
 */
export function attentionForward(
  engine: Engine,
  q: Tensor,
  k: Tensor,
  v: Tensor,
  mask: Tensor,
  context: Tensor,
  probs: Tensor,
  shape: AttentionShape,
): void {
  const op = 'attentionForward';
  checkShape(op, shape);
  const { batch, seq, heads } = shape;
  expectHeads(op, 'q', q, shape);
  expectHeads(op, 'k', k, shape);
  expectHeads(op, 'v', v, shape);
  expectHeads(op, 'context', context, shape);
  expectShape(op, 'mask', mask, [batch, seq]);
  expectShape(op, 'probs', probs, [batch, heads, seq, seq]);
  expectDistinct(op, { context, probs }, { q, k, v, mask });
  const buffers = [q.buffer, k.buffer, v.buffer, mask.buffer, context.buffer, probs.buffer];
  dispatchFolded(engine, FORWARD, params(shape), buffers, ceilDiv(rows(shape), WG));
}

/** dq, dk, dv (overwritten) from dContext and the forward's probs. */
export function attentionBackward(
  engine: Engine,
  q: Tensor,
  k: Tensor,
  v: Tensor,
  probs: Tensor,
  dContext: Tensor,
  dq: Tensor,
  dk: Tensor,
  dv: Tensor,
  shape: AttentionShape,
): void {
  const op = 'attentionBackward';
  checkShape(op, shape);
  const { batch, seq, heads } = shape;
  for (const [name, t] of Object.entries({ q, k, v, dContext, dq, dk, dv })) expectHeads(op, name, t, shape);
  expectShape(op, 'probs', probs, [batch, heads, seq, seq]);
  expectDistinct(op, { dq, dk, dv }, { q, k, v, probs, dContext });
  const dScores = engine.alloc([batch, heads, seq, seq]);
  const p = params(shape);
  const groups = ceilDiv(rows(shape), WG);
  dispatchFolded(engine, BACKWARD_QUERY, p, [k.buffer, v.buffer, probs.buffer, dContext.buffer, dq.buffer, dScores.buffer], groups);
  dispatchFolded(engine, BACKWARD_KEY, p, [q.buffer, probs.buffer, dContext.buffer, dScores.buffer, dk.buffer, dv.buffer], groups);
  engine.release(dScores); // reuse of the buffer is ordered after these dispatches
}

/**
 * The forward tiled over K/V (flash-style, shaders/attention-tiled.wgsl) for long sequences: the same
 * context as attentionForward without writing probs [B, heads, T, T]; it writes each query row's
 * softmax statistics to `stats` [B, heads, T, 2] (running max, sum of exp) instead, from which
 * attentionProbs recomputes probs when the backward needs them.
 */
export function attentionForwardTiled(
  engine: Engine,
  { q, k, v, mask }: { q: Tensor; k: Tensor; v: Tensor; mask: Tensor },
  { context, stats }: { context: Tensor; stats: Tensor },
  shape: AttentionShape,
): void {
  const op = 'attentionForwardTiled';
  checkShape(op, shape);
  const { batch, seq, heads, headDim } = shape;
  if (headDim > TILED_MAX_HEAD_DIM) {
    throw new ShapeError(`${op}: headDim ${headDim} exceeds the tiled kernel's limit of ${TILED_MAX_HEAD_DIM}; use attentionForward`);
  }
  for (const [name, t] of Object.entries({ q, k, v, context })) expectHeads(op, name, t, shape);
  expectShape(op, 'mask', mask, [batch, seq]);
  expectShape(op, 'stats', stats, [batch, heads, seq, 2]);
  expectDistinct(op, { context, stats }, { q, k, v, mask });
  const buffers = [q.buffer, k.buffer, v.buffer, mask.buffer, context.buffer, stats.buffer];
  dispatchFolded(engine, FORWARD_TILED, params(shape), buffers, batch * heads * ceilDiv(seq, WG));
}

/** probs [B, heads, T, T] (overwritten) as attentionForward writes them, from attentionForwardTiled's stats. */
export function attentionProbs(engine: Engine, q: Tensor, k: Tensor, mask: Tensor, stats: Tensor, probs: Tensor, shape: AttentionShape): void {
  const op = 'attentionProbs';
  checkShape(op, shape);
  const { batch, seq, heads } = shape;
  expectHeads(op, 'q', q, shape);
  expectHeads(op, 'k', k, shape);
  expectShape(op, 'mask', mask, [batch, seq]);
  expectShape(op, 'stats', stats, [batch, heads, seq, 2]);
  expectShape(op, 'probs', probs, [batch, heads, seq, seq]);
  expectDistinct(op, { probs }, { q, k, mask, stats });
  dispatchFolded(engine, PROBS, params(shape), [q.buffer, k.buffer, mask.buffer, stats.buffer, probs.buffer], ceilDiv(rows(shape) * seq, WG));
}
