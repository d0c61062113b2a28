/**
 * Grouped-query causal self-attention (Llama, Qwen, Mistral, Phi-3), forward and backward, and the
 * KV cache for generation: appending new K/V rows and attending new queries to the cache with the
 * same forward kernel. See shaders/causal-attention.wgsl for the formulas and the kernel layout.
 *
 * Memory: no [T, T] tensor; the forward saves lse [B, heads, T] and the backward recomputes the
 * probabilities. Limits: headDim ≤ MAX_HEAD_DIM (256), heads a multiple of kvHeads.
 */
import source from '../../../shaders/causal-attention.wgsl?raw';
import { ShapeError } from '../errors.ts';
import { type Engine, Params, ceilDiv } from '../engine.ts';
import type { Tensor } from '../tensor.ts';
import { expectHeadDimFits } from './attention.ts';
import { expectDims, expectShape, expectTokens } from './check.ts';
import { dispatchFolded, dispatchPerElement, expectDistinct, kernelFamily } from './launch.ts';

const kernel = kernelFamily('causal-attention', source);
const FORWARD = kernel('causal_attention_forward', ['read', 'read', 'read', 'read', 'read_write', 'read_write']);
const BACKWARD_DELTA = kernel('causal_attention_backward_delta', ['read', 'read', 'read', 'read_write']);
const BACKWARD_QUERY = kernel('causal_attention_backward_query', ['read', 'read', 'read', 'read', 'read', 'read', 'read_write']);
const BACKWARD_KEY = kernel('causal_attention_backward_key', ['read', 'read', 'read', 'read', 'read', 'read', 'read_write', 'read_write']);
const CACHE_APPEND = kernel('kv_cache_append', ['read', 'read', 'read_write', 'read_write']);

/** Invocations per workgroup of the attention kernels (ATTN_WG); one invocation per (batch, head, row). */
const WG = 64;

export interface CausalAttentionShape {
  batch: number;
  seq: number;
  /** Query heads (num_attention_heads). */
  heads: number;
  /** K/V heads (num_key_value_heads); query head h uses K/V head h / (heads / kvHeads). */
  kvHeads: number;
  headDim: number;
}

/** Where the queries sit against the keys: query row i is at position qOffset + i of kvLen keys. */
interface Span {
  qLen: number;
  kvLen: number;
  qOffset: number;
}

function checkHeads(op: string, shape: Omit<CausalAttentionShape, 'seq'>): void {
  const { batch, heads, kvHeads, headDim } = shape;
  expectDims(op, { batch, heads, kvHeads, headDim });
  expectHeadDimFits(op, headDim);
  if (heads % kvHeads !== 0) throw new ShapeError(`${op}: heads (${heads}) must be a multiple of kvHeads (${kvHeads})`);
}

/**
 * The checks of a call over whole sequences: `queryWidth` tensors [B, T, heads·D], `kvWidth` ones
 * [B, T, kvHeads·D] (each also viewed as [B·T, width]), mask [B, T] and lse [B, heads, T].
 */
function checkSequences(
  op: string,
  shape: CausalAttentionShape,
  tensors: { queryWidth: Record<string, Tensor>; kvWidth: Record<string, Tensor>; mask: Tensor; lse: Tensor },
): void {
  checkHeads(op, shape);
  const { batch, seq, heads, kvHeads, headDim } = shape;
  expectDims(op, { seq });
  for (const [name, t] of Object.entries(tensors.queryWidth)) expectTokens(op, name, t, batch, seq, heads * headDim);
  for (const [name, t] of Object.entries(tensors.kvWidth)) expectTokens(op, name, t, batch, seq, kvHeads * headDim, 'kvHeads·headDim');
  expectShape(op, 'mask', tensors.mask, [batch, seq]);
  expectShape(op, 'lse', tensors.lse, [batch, heads, seq]);
}

function params(shape: Omit<CausalAttentionShape, 'seq'>, span: Span): ArrayBuffer {
  const { batch, heads, kvHeads, headDim } = shape;
  return new Params().u32(batch, span.qLen, span.kvLen, heads, kvHeads, headDim, span.qOffset).f32(1 / Math.sqrt(headDim)).build();
}

function attend(engine: Engine, q: Tensor, k: Tensor, v: Tensor, mask: Tensor, context: Tensor, lse: Tensor, shape: Omit<CausalAttentionShape, 'seq'>, span: Span): void {
  const buffers = [q.buffer, k.buffer, v.buffer, mask.buffer, context.buffer, lse.buffer];
  dispatchFolded(engine, FORWARD, params(shape, span), buffers, ceilDiv(shape.batch * shape.heads * span.qLen, WG));
}

/**
 * context [B, T, heads·D] = softmax(q·kᵀ/√D) v per query head over the keys at or before the query
 * that are real tokens (mask [B, T]: 1 real, 0 padding); saves lse [B, heads, T] for the backward.
 * k, v are [B, T, kvHeads·D]. A query with no such key (left padding) gets context 0.
 */
export function causalAttentionForward(
  engine: Engine,
  q: Tensor,
  k: Tensor,
  v: Tensor,
  mask: Tensor,
  context: Tensor,
  lse: Tensor,
  shape: CausalAttentionShape,
): void {
  const op = 'causalAttentionForward';
  checkSequences(op, shape, { queryWidth: { q, context }, kvWidth: { k, v }, mask, lse });
  expectDistinct(op, { context, lse }, { q, k, v, mask });
  attend(engine, q, k, v, mask, context, lse, shape, { qLen: shape.seq, kvLen: shape.seq, qOffset: 0 });
}

/** dq, dk, dv (overwritten) from dContext, the forward's context and lse; dk/dv sum over each K/V head's query group. */
export function causalAttentionBackward(
  engine: Engine,
  q: Tensor,
  k: Tensor,
  v: Tensor,
  mask: Tensor,
  context: Tensor,
  lse: Tensor,
  dContext: Tensor,
  dq: Tensor,
  dk: Tensor,
  dv: Tensor,
  shape: CausalAttentionShape,
): void {
  const op = 'causalAttentionBackward';
  checkSequences(op, shape, { queryWidth: { q, context, dContext, dq }, kvWidth: { k, v, dk, dv }, mask, lse });
  const { batch, seq, heads, kvHeads } = shape;
  expectDistinct(op, { dq, dk, dv }, { q, k, v, mask, context, lse, dContext });
  const p = params(shape, { qLen: seq, kvLen: seq, qOffset: 0 });
  const queryRows = batch * heads * seq;
  const stats = engine.alloc([2, queryRows]);
  dispatchFolded(engine, BACKWARD_DELTA, p, [lse.buffer, context.buffer, dContext.buffer, stats.buffer], ceilDiv(queryRows, WG));
  dispatchFolded(engine, BACKWARD_QUERY, p, [q.buffer, k.buffer, v.buffer, mask.buffer, stats.buffer, dContext.buffer, dq.buffer], ceilDiv(queryRows, WG));
  const keyBuffers = [q.buffer, k.buffer, v.buffer, mask.buffer, stats.buffer, dContext.buffer, dk.buffer, dv.buffer];
  dispatchFolded(engine, BACKWARD_KEY, p, keyBuffers, ceilDiv(batch * kvHeads * seq, WG));
  engine.release(stats); // reuse of the buffer is ordered after these dispatches
}

/** One layer's keys and values for generation: k, v [batch, capacity, kvHeads·headDim]. */
export interface KvCache {
  readonly k: Tensor;
  readonly v: Tensor;
  readonly batch: number;
  readonly capacity: number;
  readonly kvHeads: number;
  readonly headDim: number;
}

export function createKvCache(engine: Engine, dims: Omit<KvCache, 'k' | 'v'>): KvCache {
  const { batch, capacity, kvHeads, headDim } = dims;
  expectDims('createKvCache', { batch, capacity, kvHeads, headDim });
  const shape = [batch, capacity, kvHeads * headDim];
  return { k: engine.alloc(shape, 'f32', true), v: engine.alloc(shape, 'f32', true), batch, capacity, kvHeads, headDim };
}

/**
 * The count of new rows per sequence in `tokens` [batch, count, width] (or [batch·count, width]),
 * checked to fit the cache at rows start..start+count-1.
 */
function expectCacheRows(op: string, cache: KvCache, start: number, tokens: Record<string, Tensor>, width: number, widthName?: string): number {
  const first = Object.values(tokens)[0];
  const count = first.shape.length === 3 ? first.shape[1] : first.shape[0] / cache.batch;
  expectDims(op, { count });
  for (const [name, t] of Object.entries(tokens)) expectTokens(op, name, t, cache.batch, count, width, widthName);
  if (!Number.isInteger(start) || start < 0 || start + count > cache.capacity) {
    throw new ShapeError(`${op}: rows ${start}..${start + count - 1} do not fit the KV cache's capacity of ${cache.capacity}`);
  }
  return count;
}

/** Write k, v [batch, count, kvHeads·headDim] into the cache at rows start..start+count-1 of each sequence. */
export function appendKvCache(engine: Engine, cache: KvCache, k: Tensor, v: Tensor, start: number): void {
  const op = 'appendKvCache';
  const width = cache.kvHeads * cache.headDim;
  const count = expectCacheRows(op, cache, start, { k, v }, width, 'kvHeads·headDim');
  const span = { qLen: count, kvLen: cache.capacity, qOffset: start };
  const p = params({ batch: cache.batch, heads: cache.kvHeads, kvHeads: cache.kvHeads, headDim: cache.headDim }, span);
  dispatchPerElement(engine, CACHE_APPEND, p, [k.buffer, v.buffer, cache.k.buffer, cache.v.buffer], cache.batch * count * width);
}

/**
 * Attention of new queries q [batch, count, heads·headDim] at positions start..start+count-1 over the
 * cache's rows up to each query's position (append this step's K/V first); mask [batch, capacity]
 * marks the cache rows that are real tokens. context as q.
 */
export function decodeAttentionForward(engine: Engine, q: Tensor, cache: KvCache, mask: Tensor, context: Tensor, heads: number, start: number): void {
  const op = 'decodeAttentionForward';
  const shape = { batch: cache.batch, heads, kvHeads: cache.kvHeads, headDim: cache.headDim };
  checkHeads(op, shape);
  const count = expectCacheRows(op, cache, start, { q, context }, heads * cache.headDim);
  expectShape(op, 'mask', mask, [cache.batch, cache.capacity]);
  expectDistinct(op, { context }, { q, k: cache.k, v: cache.v, mask });
  const lse = engine.alloc([cache.batch, heads, count]);
  attend(engine, q, cache.k, cache.v, mask, context, lse, shape, { qLen: count, kvLen: cache.capacity, qOffset: start });
  engine.release(lse);
}
