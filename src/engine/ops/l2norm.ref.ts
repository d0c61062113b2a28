/** Float64 reference for l2norm.wgsl: rows of length `width`. */

/** torch.nn.functional.normalize's default eps. */
export const NORM_EPS = 1e-12;

export interface L2NormalizeForwardRef {
  y: Float64Array;
  norms: Float64Array;
}

export function l2NormalizeForwardRef(x: ArrayLike<number>, width: number): L2NormalizeForwardRef {
  const rows = x.length / width;
  const y = new Float64Array(x.length);
  const norms = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let squares = 0;
    for (let j = 0; j < width; j++) squares += x[r * width + j] ** 2;
    const norm = Math.sqrt(squares);
    const denom = Math.max(norm, NORM_EPS);
    for (let j = 0; j < width; j++) y[r * width + j] = x[r * width + j] / denom;
    norms[r] = norm;
  }
  return { y, norms };
}

export function l2NormalizeBackwardRef(y: ArrayLike<number>, norms: ArrayLike<number>, dy: ArrayLike<number>, width: number): Float64Array {
  const dx = new Float64Array(y.length);
  for (let r = 0; r < norms.length; r++) {
    let yDotDy = 0;
    for (let j = 0; j < width; j++) yDotDy += y[r * width + j] * dy[r * width + j];
    for (let j = 0; j < width; j++) {
      const i = r * width + j;
      dx[i] = norms[r] < NORM_EPS ? dy[i] / NORM_EPS : (dy[i] - y[i] * yDotDy) / norms[r];
    }
  }
  return dx;
}
