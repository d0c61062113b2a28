/** Float64 reference for attention.wgsl: q, k, v, context [B, T, heads·D]; mask [B, T]; probs [B, heads, T, T]. */
import type { AttentionShape } from './attention.ts';

/** torch.finfo(torch.float32).min, Hugging Face BERT's additive mask value. */
export const MASKED_SCORE = -3.4028234663852886e38;

export interface AttentionForwardRef {
  context: Float64Array;
  probs: Float64Array;
}

export interface AttentionBackwardRef {
  dq: Float64Array;
  dk: Float64Array;
  dv: Float64Array;
}

/** Index of element d of head h of token t in a [B, T, heads·D] array. */
function at(shape: AttentionShape, b: number, t: number, h: number, d: number): number {
  return ((b * shape.seq + t) * shape.heads + h) * shape.headDim + d;
}

export function attentionForwardRef(
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  mask: ArrayLike<number>,
  shape: AttentionShape,
): AttentionForwardRef {
  const { batch, seq, heads, headDim } = shape;
  const scale = 1 / Math.sqrt(headDim);
  const context = new Float64Array(batch * seq * heads * headDim);
  const probs = new Float64Array(batch * heads * seq * seq);
  const scores = new Float64Array(seq);
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < heads; h++) {
      for (let i = 0; i < seq; i++) {
        let max = -Infinity;
        for (let j = 0; j < seq; j++) {
          let s = 0;
          for (let d = 0; d < headDim; d++) s += q[at(shape, b, i, h, d)] * k[at(shape, b, j, h, d)];
          scores[j] = s * scale + (1 - mask[b * seq + j]) * MASKED_SCORE;
          max = Math.max(max, scores[j]);
        }
        let sum = 0;
        for (let j = 0; j < seq; j++) sum += (scores[j] = Math.exp(scores[j] - max));
        const row = ((b * heads + h) * seq + i) * seq;
        for (let j = 0; j < seq; j++) {
          const p = scores[j] / sum;
          probs[row + j] = p;
          for (let d = 0; d < headDim; d++) context[at(shape, b, i, h, d)] += p * v[at(shape, b, j, h, d)];
        }
      }
    }
  }
  return { context, probs };
}

export function attentionBackwardRef(
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  probs: ArrayLike<number>,
  dContext: ArrayLike<number>,
  shape: AttentionShape,
): AttentionBackwardRef {
  const { batch, seq, heads, headDim } = shape;
  const scale = 1 / Math.sqrt(headDim);
  const n = batch * seq * heads * headDim;
  const dq = new Float64Array(n);
  const dk = new Float64Array(n);
  const dv = new Float64Array(n);
  const dp = new Float64Array(seq);
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < heads; h++) {
      for (let i = 0; i < seq; i++) {
        const row = ((b * heads + h) * seq + i) * seq;
        let weighted = 0;
        for (let j = 0; j < seq; j++) {
          let s = 0;
          for (let d = 0; d < headDim; d++) s += dContext[at(shape, b, i, h, d)] * v[at(shape, b, j, h, d)];
          dp[j] = s;
          weighted += probs[row + j] * s;
        }
        for (let j = 0; j < seq; j++) {
          const p = probs[row + j];
          const ds = p * (dp[j] - weighted);
          for (let d = 0; d < headDim; d++) {
            dq[at(shape, b, i, h, d)] += ds * k[at(shape, b, j, h, d)] * scale;
            dk[at(shape, b, j, h, d)] += ds * q[at(shape, b, i, h, d)] * scale;
            dv[at(shape, b, j, h, d)] += p * dContext[at(shape, b, i, h, d)];
          }
        }
      }
    }
  }
  return { dq, dk, dv };
}
