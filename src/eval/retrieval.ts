/**
 * Retrieval of corpus items by cosine similarity to a query.
 * rank(r) of a relevant item r = 1 + #{items scoring higher than r} + #{non-relevant items tying r}
 * (ties are broken against the query).
 *   recall@k = mean over queries of |{relevant r : rank(r) ≤ k}| / |relevant|
 *   MRR      = mean over queries of 1 / min_r rank(r)
 */
import { dot } from './vectors.ts';

/** Ranks of each query's relevant items (vectors unit length, so dot = cosine). */
export function relevantRanks(queries: readonly ArrayLike<number>[], corpus: readonly ArrayLike<number>[], relevant: readonly (readonly number[])[]): number[][] {
  if (relevant.length !== queries.length) throw new Error(`relevantRanks: ${relevant.length} relevance lists for ${queries.length} queries`);
  const scores = new Float64Array(corpus.length);
  return queries.map((q, qi) => {
    const wanted = new Set(relevant[qi]);
    if (wanted.size === 0) throw new Error(`retrieval query ${qi} has no relevant item`);
    for (const r of wanted) if (!(r >= 0 && r < corpus.length)) throw new Error(`retrieval query ${qi}: relevant item ${r} is not in the corpus`);
    for (let j = 0; j < corpus.length; j++) scores[j] = dot(q, corpus[j]);
    return [...wanted].map((r) => {
      let rank = 1;
      for (let j = 0; j < corpus.length; j++) {
        if (j === r) continue;
        if (scores[j] > scores[r] || (scores[j] === scores[r] && !wanted.has(j))) rank++;
      }
      return rank;
    });
  });
}

export function recallAtK(ranks: readonly (readonly number[])[], k: number, indices: ArrayLike<number>): number {
  if (indices.length === 0) return NaN;
  let total = 0;
  for (let q = 0; q < indices.length; q++) {
    const r = ranks[indices[q]];
    total += r.filter((rank) => rank <= k).length / r.length;
  }
  return total / indices.length;
}

export function meanReciprocalRank(ranks: readonly (readonly number[])[], indices: ArrayLike<number>): number {
  if (indices.length === 0) return NaN;
  let total = 0;
  for (let q = 0; q < indices.length; q++) total += 1 / Math.min(...ranks[indices[q]]);
  return total / indices.length;
}
