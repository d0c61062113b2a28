/** Float64 reference for lm-head-loss.wgsl: the whole [rows, V] logits at once. */

export interface LmHeadLossRef {
  loss: number;
  tokenLoss: Float64Array;
  lse: Float64Array;
  dHidden: Float64Array;
}

/** logits [rows, V] = hidden [rows, H] · head [V, H]ᵀ (what lmHeadLogits computes chunk by chunk). */
export function lmHeadLogitsRef(hidden: ArrayLike<number>, head: ArrayLike<number>, width: number): Float64Array {
  const rows = hidden.length / width;
  const vocab = head.length / width;
  const logits = new Float64Array(rows * vocab);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < vocab; j++) {
      let z = 0;
      for (let d = 0; d < width; d++) z += hidden[r * width + d] * head[j * width + d];
      logits[r * vocab + j] = z;
    }
  }
  return logits;
}

/** hidden [rows, H], head [V, H] (f16 blocks: the values they hold), targets [rows] (ignoreIndex for rows not predicted). */
export function lmHeadLossRef(
  hidden: ArrayLike<number>,
  head: ArrayLike<number>,
  targets: ArrayLike<number>,
  width: number,
  ignoreIndex: number,
): LmHeadLossRef {
  const rows = targets.length;
  const vocab = head.length / width;
  const count = Array.from(targets).filter((t) => t !== ignoreIndex).length;
  const tokenLoss = new Float64Array(rows);
  const lse = new Float64Array(rows);
  const dHidden = new Float64Array(rows * width);
  const all = lmHeadLogitsRef(hidden, head, width);
  let sum = 0;
  for (let r = 0; r < rows; r++) {
    const logits = all.subarray(r * vocab, (r + 1) * vocab);
    const max = Math.max(...logits);
    lse[r] = max + Math.log(logits.reduce((acc, z) => acc + Math.exp(z - max), 0));
    const t = targets[r];
    if (t === ignoreIndex) continue;
    tokenLoss[r] = lse[r] - logits[t];
    sum += tokenLoss[r];
    for (let j = 0; j < vocab; j++) {
      const g = (Math.exp(logits[j] - lse[r]) - (j === t ? 1 : 0)) / count;
      for (let d = 0; d < width; d++) dHidden[r * width + d] += g * head[j * width + d];
    }
  }
  return { loss: count > 0 ? sum / count : 0, tokenLoss, lse, dHidden };
}
