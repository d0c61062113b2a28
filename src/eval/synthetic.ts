/** Seeded Gaussian clusters with known labels: ground truth for t-SNE tests and benchmarks. */
import { Rng } from '../data/rng.ts';

export interface LabelledVectors {
  vectors: Float32Array[];
  labels: number[];
}

/**
 * `n` points in `d` dimensions spread round-robin over `clusters` centres drawn from N(0, separation²),
 * each point its centre plus N(0, 1) noise per coordinate.
 */
export function gaussianClusters(seed: number, n: number, d: number, clusters: number, separation = 8): LabelledVectors {
  const rng = new Rng(seed);
  const centres = Array.from({ length: clusters }, () => Float64Array.from({ length: d }, () => separation * rng.normal()));
  const labels = Array.from({ length: n }, (_, i) => i % clusters);
  const vectors = labels.map((c) => Float32Array.from(centres[c], (m) => m + rng.normal()));
  return { vectors, labels };
}
