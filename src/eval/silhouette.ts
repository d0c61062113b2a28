/**
 * Silhouette score with cosine distance d(u, v) = 1 − cos(u, v):
 *   s(i) = (b(i) − a(i)) / max(a(i), b(i)),
 *   a(i) = mean distance from i to the other members of its class,
 *   b(i) = min over other classes C of the mean distance from i to C;
 * s(i) = 0 for a class of one (Rousseeuw 1987, as scikit-learn). Score = mean s(i). NaN with fewer
 * than two classes.
 *
 * `vectors` must be unit length: the mean cosine from i to class C is v_i · (Σ_{j∈C} v_j) / |C|,
 * so one pass builds the class sums and the score costs O(n·classes·dim). In a bootstrap resample
 * each draw is a member, but a point's own copies are left out of its a(i): at distance 0 they
 * would make every resampled class look tighter than the data.
 */
import { dot } from './vectors.ts';

export function silhouette(vectors: readonly ArrayLike<number>[], labels: ArrayLike<number>, indices: ArrayLike<number>): number {
  const dim = vectors.length ? vectors[0].length : 0;
  const sums = new Map<number, { sum: Float64Array; count: number }>();
  const copies = new Int32Array(vectors.length);
  for (let k = 0; k < indices.length; k++) {
    const i = indices[k];
    copies[i]++;
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
    const others = own.count - copies[i];
    if (others === 0) continue;
    // The class sum includes i's copies (cos = 1 each), which a(i) leaves out.
    const a = 1 - (dot(vectors[i], own.sum) - copies[i]) / others;
    let b = Infinity;
    for (const [label, other] of sums) if (label !== labels[i]) b = Math.min(b, 1 - dot(vectors[i], other.sum) / other.count);
    const denominator = Math.max(a, b);
    total += denominator > 0 ? (b - a) / denominator : 0;
  }
  return total / indices.length;
}
