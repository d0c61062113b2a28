/** Float64 reference for lora.wgsl (row-major arrays, PEFT shapes A [r, in], B [out, r]). */
import { dropoutMaskRef } from './dropout.ref.ts';
import type { LoraDropout } from './lora.ts';

export interface LoraDims {
  m: number;
  inF: number;
  outF: number;
  r: number;
}

/** drop(x): x·mask/(1-p), or x itself without dropout. */
function droppedInput(x: ArrayLike<number>, dropout: LoraDropout | null): Float64Array {
  if (!dropout) return Float64Array.from(x);
  const mask = dropoutMaskRef(x.length, dropout.p, dropout.seed);
  return Float64Array.from(x, (v, i) => (mask[i] ? v / (1 - dropout.p) : 0));
}

/** out[i, j] = scale · Σ_k lhs(i, k)·rhs(k, j) for a rows × cols result (float64). */
export function contractRef(
  rows: number,
  cols: number,
  depth: number,
  lhs: (i: number, k: number) => number,
  rhs: (k: number, j: number) => number,
  scale = 1,
): Float64Array {
  const out = new Float64Array(rows * cols);
  for (let i = 0; i < rows; i++)
    for (let j = 0; j < cols; j++) {
      let s = 0;
      for (let k = 0; k < depth; k++) s += lhs(i, k) * rhs(k, j);
      out[i * cols + j] = scale * s;
    }
  return out;
}

/** xa = drop(x)·Aᵀ [m, r] and the forward's contribution delta = scale·xa·Bᵀ [m, out] (y += delta). */
export function loraForwardRef(
  x: ArrayLike<number>,
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  { m, inF, outF, r }: LoraDims,
  scale: number,
  dropout: LoraDropout | null,
): { xa: Float64Array; delta: Float64Array } {
  const xd = droppedInput(x, dropout);
  const xa = contractRef(m, r, inF, (i, k) => xd[i * inF + k], (k, c) => a[c * inF + k]);
  const delta = contractRef(m, outF, r, (i, c) => xa[i * r + c], (c, o) => b[o * r + c], scale);
  return { xa, delta };
}

/** Gradient contributions of loss = Σ dy ⊙ delta: da [r, in], db [out, r], dx [m, in], and scratch = dy·B. */
export function loraBackwardRef(
  x: ArrayLike<number>,
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  dy: ArrayLike<number>,
  dims: LoraDims,
  scale: number,
  dropout: LoraDropout | null,
): { da: Float64Array; db: Float64Array; dx: Float64Array; scratch: Float64Array } {
  const { m, inF, outF, r } = dims;
  const xd = droppedInput(x, dropout);
  const { xa } = loraForwardRef(x, a, b, dims, 1, dropout);
  const scratch = contractRef(m, r, outF, (i, o) => dy[i * outF + o], (o, c) => b[o * r + c]);
  const db = contractRef(outF, r, m, (o, i) => dy[i * outF + o], (i, c) => xa[i * r + c], scale);
  const da = contractRef(r, inF, m, (c, i) => scratch[i * r + c], (i, k) => xd[i * inF + k], scale);
  // d drop(x) = scale·scratch·A, then back through the (linear) dropout map.
  const dxd = contractRef(m, inF, r, (i, c) => scratch[i * r + c], (c, k) => a[c * inF + k], scale);
  return { da, db, dx: droppedInput(dxd, dropout), scratch };
}
