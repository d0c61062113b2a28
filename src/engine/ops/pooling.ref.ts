/**
 * Float64 reference for pooling.wgsl, re-stating sentence-transformers' Pooling module:
 * hidden [B, T, H], mask [B, T] (1 = a token that counts), pooled [B, H].
 */
import type { PoolingMode } from './pooling.ts';

/** The value max pooling sees at a masked token. */
const MASKED_VALUE = -1e9;

/** Token weights [B, T] of a weighted-sum mode: out[b] = Σ_t w[b, t]·hidden[b, t]. */
export function poolWeightsRef(mode: Exclude<PoolingMode, 'max'>, mask: ArrayLike<number>, batch: number, seq: number): Float64Array {
  const weights = new Float64Array(batch * seq);
  for (let b = 0; b < batch; b++) {
    const m = (t: number) => mask[b * seq + t];
    let count = 0;
    let positions = 0;
    let last = -1;
    for (let t = 0; t < seq; t++) {
      count += m(t);
      positions += m(t) * (t + 1);
      if (m(t) !== 0) last = t;
    }
    for (let t = 0; t < seq; t++) {
      let w: number;
      if (mode === 'cls') w = t === 0 ? 1 : 0;
      else if (mode === 'mean') w = m(t) / Math.max(count, 1e-9);
      else if (mode === 'mean-sqrt-len') w = m(t) / Math.sqrt(Math.max(count, 1e-9));
      else if (mode === 'weighted-mean') w = (m(t) * (t + 1)) / Math.max(positions, 1e-9);
      else w = t === last ? m(t) : 0;
      weights[b * seq + t] = w;
    }
  }
  return weights;
}

/** Per output element, the token max pooling takes (the first reaching the maximum), or -1 when that token is masked. */
function maxTokens(hidden: ArrayLike<number>, mask: ArrayLike<number>, batch: number, seq: number, width: number): { out: Float64Array; token: Int32Array } {
  const out = new Float64Array(batch * width);
  const token = new Int32Array(batch * width);
  for (let b = 0; b < batch; b++) {
    for (let d = 0; d < width; d++) {
      let best = 0;
      let arg = 0;
      for (let t = 0; t < seq; t++) {
        const masked = mask[b * seq + t] === 0;
        const v = masked ? MASKED_VALUE : hidden[(b * seq + t) * width + d];
        if (t === 0 || v > best) {
          best = v;
          arg = masked ? -1 : t;
        }
      }
      out[b * width + d] = best;
      token[b * width + d] = arg;
    }
  }
  return { out, token };
}

export function poolForwardRef(mode: PoolingMode, hidden: ArrayLike<number>, mask: ArrayLike<number>, batch: number, seq: number, width: number): Float64Array {
  if (mode === 'max') return maxTokens(hidden, mask, batch, seq, width).out;
  const weights = poolWeightsRef(mode, mask, batch, seq);
  const out = new Float64Array(batch * width);
  for (let b = 0; b < batch; b++) {
    for (let d = 0; d < width; d++) {
      let sum = 0;
      for (let t = 0; t < seq; t++) sum += weights[b * seq + t] * hidden[(b * seq + t) * width + d];
      out[b * width + d] = sum;
    }
  }
  return out;
}

/** dHidden [B, T, H] from dOut [B, H]; `hidden` is read by max pooling only. */
export function poolBackwardRef(
  mode: PoolingMode,
  hidden: ArrayLike<number>,
  mask: ArrayLike<number>,
  dOut: ArrayLike<number>,
  batch: number,
  seq: number,
  width: number,
): Float64Array {
  const dHidden = new Float64Array(batch * seq * width);
  if (mode === 'max') {
    const { token } = maxTokens(hidden, mask, batch, seq, width);
    token.forEach((t, o) => {
      if (t >= 0) dHidden[(Math.floor(o / width) * seq + t) * width + (o % width)] = dOut[o];
    });
    return dHidden;
  }
  const weights = poolWeightsRef(mode, mask, batch, seq);
  for (let b = 0; b < batch; b++) {
    for (let t = 0; t < seq; t++) {
      for (let d = 0; d < width; d++) dHidden[(b * seq + t) * width + d] = weights[b * seq + t] * dOut[b * width + d];
    }
  }
  return dHidden;
}
