/** Float64 reference for lora.wgsl (row-major arrays, PEFT shapes A [r, in], B [out, r]). */
import { dropoutForwardRef } from './dropout.ref.ts';
import type { LoraDropout } from './lora.ts';
import { matmulRef } from './matmul.ref.ts';

export interface LoraDims {
  m: number;
  inF: number;
  outF: number;
  r: number;
}

/** drop(x): x·mask/(1-p), or x itself without dropout. */
function droppedInput(x: ArrayLike<number>, dropout: LoraDropout | null): Float64Array {
  return dropout ? dropoutForwardRef(x, dropout.p, dropout.seed, dropout.indexOffset) : Float64Array.from(x);
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
  const xa = matmulRef(xd, a, { batch: 1, M: m, N: r, K: inF }, { transB: true });
  const delta = matmulRef(xa, b, { batch: 1, M: m, N: outF, K: r }, { transB: true, alpha: scale });
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
  const scratch = matmulRef(dy, b, { batch: 1, M: m, N: r, K: outF });
  const db = matmulRef(dy, xa, { batch: 1, M: outF, N: r, K: m }, { transA: true, alpha: scale });
  const da = matmulRef(scratch, xd, { batch: 1, M: r, N: inF, K: m }, { transA: true, alpha: scale });
  // d drop(x) = scale·scratch·A, then back through the (linear) dropout map.
  const dxd = matmulRef(scratch, a, { batch: 1, M: m, N: inF, K: r }, { alpha: scale });
  return { da, db, dx: droppedInput(dxd, dropout), scratch };
}
