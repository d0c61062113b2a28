/**
 * Float64 reference for causal-attention.wgsl: q, context [B, Tq, heads·D]; k, v [B, Tk, kvHeads·D];
 * mask [B, Tk]; query row i at position offset + i sees key j ≤ offset + i with mask 1.
 * probs [B, heads, Tq, Tk] (0 for keys not seen), lse [B, heads, Tq] (0 for a row that sees no key).
 */
import type { CausalAttentionShape } from './causal-attention.ts';

export interface CausalAttentionForwardRef {
  context: Float64Array;
  lse: Float64Array;
  probs: Float64Array;
}

export interface CausalAttentionBackwardRef {
  dq: Float64Array;
  dk: Float64Array;
  dv: Float64Array;
}

/** The keys the queries attend: training has Tk = Tq and offset 0; decoding, the cache and its length. */
export interface KeySpan {
  length: number;
  offset: number;
}

function indexers(shape: CausalAttentionShape, keys: KeySpan) {
  const { seq, heads, kvHeads, headDim } = shape;
  const group = heads / kvHeads;
  return {
    qAt: (b: number, i: number, h: number, d: number) => ((b * seq + i) * heads + h) * headDim + d,
    kvAt: (b: number, j: number, h: number, d: number) => ((b * keys.length + j) * kvHeads + Math.floor(h / group)) * headDim + d,
    row: (b: number, h: number, i: number) => (b * heads + h) * seq + i,
  };
}

export function causalAttentionForwardRef(
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  mask: ArrayLike<number>,
  shape: CausalAttentionShape,
  keys: KeySpan = { length: shape.seq, offset: 0 },
): CausalAttentionForwardRef {
  const { batch, seq, heads, headDim } = shape;
  const { qAt, kvAt, row } = indexers(shape, keys);
  const scale = 1 / Math.sqrt(headDim);
  const context = new Float64Array(batch * seq * heads * headDim);
  const lse = new Float64Array(batch * heads * seq);
  const probs = new Float64Array(batch * heads * seq * keys.length);
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < heads; h++) {
      for (let i = 0; i < seq; i++) {
        const seen: number[] = [];
        for (let j = 0; j <= keys.offset + i; j++) if (mask[b * keys.length + j] !== 0) seen.push(j);
        if (seen.length === 0) continue;
        const scores = seen.map((j) => {
          let s = 0;
          for (let d = 0; d < headDim; d++) s += q[qAt(b, i, h, d)] * k[kvAt(b, j, h, d)];
          return s * scale;
        });
        const max = Math.max(...scores);
        const sum = scores.reduce((acc, s) => acc + Math.exp(s - max), 0);
        lse[row(b, h, i)] = max + Math.log(sum);
        seen.forEach((j, n) => {
          const p = Math.exp(scores[n] - max) / sum;
          probs[row(b, h, i) * keys.length + j] = p;
          for (let d = 0; d < headDim; d++) context[qAt(b, i, h, d)] += p * v[kvAt(b, j, h, d)];
        });
      }
    }
  }
  return { context, lse, probs };
}

/** Gradients of training attention (Tk = Tq, offset 0) from the forward's probs. */
export function causalAttentionBackwardRef(
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  probs: ArrayLike<number>,
  dContext: ArrayLike<number>,
  shape: CausalAttentionShape,
): CausalAttentionBackwardRef {
  const { batch, seq, heads, kvHeads, headDim } = shape;
  const { qAt, kvAt, row } = indexers(shape, { length: seq, offset: 0 });
  const scale = 1 / Math.sqrt(headDim);
  const dq = new Float64Array(batch * seq * heads * headDim);
  const dk = new Float64Array(batch * seq * kvHeads * headDim);
  const dv = new Float64Array(dk.length);
  const dp = new Float64Array(seq);
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < heads; h++) {
      for (let i = 0; i < seq; i++) {
        const p = (j: number) => probs[row(b, h, i) * seq + j];
        let weighted = 0;
        for (let j = 0; j < seq; j++) {
          let s = 0;
          for (let d = 0; d < headDim; d++) s += dContext[qAt(b, i, h, d)] * v[kvAt(b, j, h, d)];
          dp[j] = s;
          weighted += p(j) * s;
        }
        for (let j = 0; j < seq; j++) {
          const ds = p(j) * (dp[j] - weighted);
          for (let d = 0; d < headDim; d++) {
            dq[qAt(b, i, h, d)] += ds * k[kvAt(b, j, h, d)] * scale;
            dk[kvAt(b, j, h, d)] += ds * q[qAt(b, i, h, d)] * scale;
            dv[kvAt(b, j, h, d)] += p(j) * dContext[qAt(b, i, h, d)];
          }
        }
      }
    }
  }
  return { dq, dk, dv };
}
