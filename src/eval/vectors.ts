/** Vector helpers for embeddings (float64 accumulation). */

export function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`vectors have different lengths: ${a.length} and ${b.length}`);
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

/** cos(a, b) = a·b / (|a| |b|); 0 when either vector is zero. */
export function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const norms = Math.sqrt(dot(a, a) * dot(b, b));
  return norms > 0 ? dot(a, b) / norms : 0;
}

/** a / |a| in float64 (a zero vector stays zero). */
export function unit(a: ArrayLike<number>): Float64Array {
  const norm = Math.sqrt(dot(a, a));
  return Float64Array.from(a, (v) => (norm > 0 ? v / norm : 0));
}

export function mean(values: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < values.length; i++) s += values[i];
  return values.length ? s / values.length : NaN;
}
