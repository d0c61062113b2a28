/**
 * Principal components of row vectors: the covariance matrix by a tight float64 loop (n·d²/2
 * multiply-adds, a few seconds for 10,000 × 768; ml-pca's generic matrix code took minutes), its
 * eigenvectors by ml-matrix's symmetric eigendecomposition (d³).
 */
import { EigenvalueDecomposition, Matrix } from 'ml-matrix';

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

  const mean = new Float64Array(d);
  for (const r of rows) for (let c = 0; c < d; c++) mean[c] += r[c] / n;
  // Upper triangle of Σ_i (x_i − μ)(x_i − μ)ᵀ; the scale does not change the eigenvectors.
  const scatter = new Float64Array(d * d);
  const x = new Float64Array(d);
  for (const r of rows) {
    for (let c = 0; c < d; c++) x[c] = r[c] - mean[c];
    for (let a = 0; a < d; a++) {
      const xa = x[a];
      if (xa === 0) continue;
      const offset = a * d;
      for (let b = a; b < d; b++) scatter[offset + b] += xa * x[b];
    }
  }
  const matrix = new Matrix(d, d);
  for (let a = 0; a < d; a++) {
    for (let b = a; b < d; b++) {
      matrix.set(a, b, scatter[a * d + b]);
      matrix.set(b, a, scatter[a * d + b]);
    }
  }
  const evd = new EigenvalueDecomposition(matrix, { assumeSymmetric: true });
  const order = evd.realEigenvalues.map((value, index) => ({ value, index })).sort((p, q) => q.value - p.value || p.index - q.index);
  const vectors = evd.eigenvectorMatrix;
  const axes = order.slice(0, dims).map(({ index }) => Float64Array.from({ length: d }, (_, c) => vectors.get(c, index)));

  const data = new Float64Array(n * dims);
  rows.forEach((r, i) => {
    for (let c = 0; c < d; c++) x[c] = r[c] - mean[c];
    axes.forEach((axis, k) => {
      let s = 0;
      for (let c = 0; c < d; c++) s += x[c] * axis[c];
      data[i * dims + k] = s;
    });
  });
  return { data, dims };
}
