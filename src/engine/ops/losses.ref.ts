/** Float64 reference for losses.wgsl (row-major arrays). */
import type { InfoNceOptions } from './losses.ts';
import { matmulRef } from './matmul.ref.ts';

export interface InfoNceDims {
  b: number;
  c: number;
  h: number;
}

/** Softmax of `length` values read by `at`, and its logsumexp. */
function softmax(length: number, at: (e: number) => number): { p: Float64Array; lse: number } {
  let max = -Infinity;
  for (let e = 0; e < length; e++) max = Math.max(max, at(e));
  let sum = 0;
  for (let e = 0; e < length; e++) sum += Math.exp(at(e) - max);
  return { p: Float64Array.from({ length }, (_, e) => Math.exp(at(e) - max) / sum), lse: max + Math.log(sum) };
}

/** Loss, logits S [B, C], probs [B, C] (row softmax) and probsT [B, B] (probsT[j, i] = softmax_i S[i, j]). */
export function infoNceForwardRef(
  anchors: ArrayLike<number>,
  candidates: ArrayLike<number>,
  { b, c, h }: InfoNceDims,
  options: InfoNceOptions,
): { loss: number; logits: Float64Array; probs: Float64Array; probsT: Float64Array | null } {
  const logits = matmulRef(anchors, candidates, { batch: 1, M: b, N: c, K: h }, { transB: true, alpha: options.scale });
  const probs = new Float64Array(b * c);
  let rowLoss = 0;
  for (let i = 0; i < b; i++) {
    const { p, lse } = softmax(c, (j) => logits[i * c + j]);
    probs.set(p, i * c);
    rowLoss += lse - logits[i * c + i];
  }
  if (!options.symmetric) return { loss: rowLoss / b, logits, probs, probsT: null };
  const probsT = new Float64Array(b * b);
  let colLoss = 0;
  for (let j = 0; j < b; j++) {
    const { p, lse } = softmax(b, (i) => logits[i * c + j]);
    probsT.set(p, j * b);
    colLoss += lse - logits[j * c + j];
  }
  return { loss: (rowLoss / b + colLoss / b) / 2, logits, probs, probsT };
}

/** dAnchors [B, H], dCandidates [C, H] of lossScale·loss. */
export function infoNceBackwardRef(
  anchors: ArrayLike<number>,
  candidates: ArrayLike<number>,
  dims: InfoNceDims,
  options: InfoNceOptions,
  lossScale: number,
): { dAnchors: Float64Array; dCandidates: Float64Array } {
  const { b, c, h } = dims;
  const { probs, probsT } = infoNceForwardRef(anchors, candidates, dims, options);
  const rowWeight = (lossScale * (options.symmetric ? 0.5 : 1)) / b;
  const dLogits = new Float64Array(b * c);
  for (let i = 0; i < b; i++)
    for (let j = 0; j < c; j++) {
      const onehot = i === j ? 1 : 0;
      dLogits[i * c + j] = rowWeight * (probs[i * c + j] - onehot);
      if (probsT && j < b) dLogits[i * c + j] += ((lossScale * 0.5) / b) * (probsT[j * b + i] - onehot);
    }
  const s = options.scale;
  return {
    dAnchors: matmulRef(dLogits, candidates, { batch: 1, M: b, N: h, K: c }, { alpha: s }),
    dCandidates: matmulRef(dLogits, anchors, { batch: 1, M: c, N: h, K: b }, { transA: true, alpha: s }),
  };
}

function rowDots(a: ArrayLike<number>, b: ArrayLike<number>, rows: number, h: number): Float64Array {
  return Float64Array.from({ length: rows }, (_, i) => {
    let s = 0;
    for (let k = 0; k < h; k++) s += a[i * h + k] * b[i * h + k];
    return s;
  });
}

/** mean_i (a_i·b_i − label_i)². */
export function cosinePairLossRef(a: ArrayLike<number>, b: ArrayLike<number>, labels: ArrayLike<number>, rows: number, h: number): number {
  return rowDots(a, b, rows, h).reduce((s, d, i) => s + (d - labels[i]) ** 2, 0) / rows;
}

/** da, db [B, H] of lossScale·loss. */
export function cosinePairLossBackwardRef(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  labels: ArrayLike<number>,
  rows: number,
  h: number,
  lossScale: number,
): { da: Float64Array; db: Float64Array } {
  const coef = rowDots(a, b, rows, h).map((d, i) => ((2 * lossScale) / rows) * (d - labels[i]));
  return {
    da: Float64Array.from({ length: rows * h }, (_, e) => coef[Math.floor(e / h)] * b[e]),
    db: Float64Array.from({ length: rows * h }, (_, e) => coef[Math.floor(e / h)] * a[e]),
  };
}
