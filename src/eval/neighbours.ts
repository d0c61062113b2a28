/** Nearest-neighbour search over labelled texts: what the app's Explore box shows for a typed query. */
import { cosine } from './vectors.ts';

export interface Neighbour {
  text: string;
  label: string;
  cosine: number;
}

/** The `k` items of `corpus` most cosine-similar to `query`, nearest first. */
export function nearestNeighbours(query: ArrayLike<number>, corpus: readonly { text: string; label: string; vector: ArrayLike<number> }[], k: number): Neighbour[] {
  if (!Number.isInteger(k) || k < 1) throw new Error(`the number of neighbours must be a positive integer, got ${k}`);
  return corpus
    .map((item) => ({ text: item.text, label: item.label, cosine: cosine(query, item.vector) }))
    .sort((a, b) => b.cosine - a.cosine)
    .slice(0, k);
}
