/** Float64 reference for pooling.wgsl: hidden [B, T, H], mask [B, T], pooled [B, H]. */

function denominator(mask: ArrayLike<number>, b: number, seq: number): number {
  let count = 0;
  for (let t = 0; t < seq; t++) count += mask[b * seq + t];
  return Math.max(count, 1e-9);
}

export function meanPoolForwardRef(hidden: ArrayLike<number>, mask: ArrayLike<number>, batch: number, seq: number, width: number): Float64Array {
  const out = new Float64Array(batch * width);
  for (let b = 0; b < batch; b++) {
    const denom = denominator(mask, b, seq);
    for (let d = 0; d < width; d++) {
      let sum = 0;
      for (let t = 0; t < seq; t++) sum += mask[b * seq + t] * hidden[(b * seq + t) * width + d];
      out[b * width + d] = sum / denom;
    }
  }
  return out;
}

export function meanPoolBackwardRef(mask: ArrayLike<number>, dOut: ArrayLike<number>, batch: number, seq: number, width: number): Float64Array {
  const dHidden = new Float64Array(batch * seq * width);
  for (let b = 0; b < batch; b++) {
    const denom = denominator(mask, b, seq);
    for (let t = 0; t < seq; t++) {
      for (let d = 0; d < width; d++) dHidden[(b * seq + t) * width + d] = (mask[b * seq + t] * dOut[b * width + d]) / denom;
    }
  }
  return dHidden;
}

export function clsPoolForwardRef(hidden: ArrayLike<number>, batch: number, seq: number, width: number): Float64Array {
  const out = new Float64Array(batch * width);
  for (let b = 0; b < batch; b++) for (let d = 0; d < width; d++) out[b * width + d] = hidden[b * seq * width + d];
  return out;
}

export function clsPoolBackwardRef(dOut: ArrayLike<number>, batch: number, seq: number, width: number): Float64Array {
  const dHidden = new Float64Array(batch * seq * width);
  for (let b = 0; b < batch; b++) for (let d = 0; d < width; d++) dHidden[b * seq * width + d] = dOut[b * width + d];
  return dHidden;
}
