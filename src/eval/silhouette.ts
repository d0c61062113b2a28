/**
 * Silhouette score with cosine distance d(u, v) = 1 − cos(u, v):
 *   s(i) = (b(i) − a(i)) / max(a(i), b(i)),
 *   a(i) = mean distance from i to the other members of its class,
 *   b(i) = min over other classes C of the mean distance from i to C;
 * s(i) = 0 for a class of one (Rousseeuw 1987, as scikit-learn). Score = mean s(i). NaN with fewer
 * than two classes.
 *
 * `vectors` must be unit length: the mean cosine from i to class C is v_i · (Σ_{j∈C} v_j) / |C|,
 * so one pass builds the class sums and the score costs O(n·classes·dim). Repeated indices
 * (bootstrap) count as distinct members, at distance 0 from each other.
 */
import { dot } from './vectors.ts';

export function silhouette(vectors: readonly ArrayLike<number>[], labels: ArrayLike<number>, indices: ArrayLike<number>): number {
  const dim = vectors.length ? vectors[0].length : 0;
  const sums = new Map<number, { sum: Float64Array; count: number }>();
  for (let k = 0; k < indices.length; k++) {
    const i = indices[k];
    let c = sums.get(labels[i]);
    if (!c) sums.set(labels[i], (c = { sum: new Float64Array(dim), count: 0 }));
    const v = vectors[i];
    for (let d = 0; d < dim; d++) c.sum[d] += v[d];
    c.count++;
  }
  if (sums.size < 2) return NaN;
  let total = 0;
  for (let k = 0; k < indices.length; k++) {
    const i = indices[k];
    const own = sums.get(labels[i])!;
    if (own.count === 1) continue;
    // Σ over own class includes i itself (cos = 1), which the mean excludes.
    const a = 1 - (dot(vectors[i], own.sum) - 1) / (own.count - 1);
    let b = Infinity;
    for (const [label, other] of sums) if (label !== labels[i]) b = Math.min(b, 1 - dot(vectors[i], other.sum) / other.count);
    const denominator = Math.max(a, b);
    total += denominator > 0 ? (b - a) / denominator : 0;
  }
  return total / indices.length;
}
