/** Principal components (ml-pca, covariance method) of row vectors, as a flat float64 matrix. */
import { PCA } from 'ml-pca';

/**
 * Project `rows` (n vectors of equal length d) onto their first `components` principal axes,
 * centred. Returns [n, min(components, d)] row-major. Deterministic for a given input.
 */
export function pcaProject(rows: readonly ArrayLike<number>[], components: number): { data: Float64Array; dims: number } {
  const n = rows.length;
  if (n === 0) throw new Error('pcaProject: no vectors');
  const d = rows[0].length;
  if (d < 1) throw new Error('pcaProject: vectors are empty');
  rows.forEach((r, i) => {
    if (r.length !== d) throw new Error(`pcaProject: vector ${i} has ${r.length} values, vector 0 has ${d}`);
  });
  if (!Number.isInteger(components) || components < 1) throw new Error(`pcaProject: components must be a positive integer, got ${components}`);
  const dims = Math.min(components, d);
  const matrix = rows.map((r) => Array.from(r));
  // The covariance method costs n·d² + d³ and, unlike SVD of the n × d data, stays cheap for large n.
  const projected = new PCA(matrix, { method: 'covarianceMatrix', center: true }).predict(matrix, { nComponents: dims });
  const data = new Float64Array(n * dims);
  for (let i = 0; i < n; i++) for (let c = 0; c < dims; c++) data[i * dims + c] = projected.get(i, c);
  return { data, dims };
}
