/** Float64 reference for rmsnorm.wgsl: rows of length `width`. */

export interface RmsNormForwardRef {
  y: Float64Array;
  rstd: Float64Array;
}

export interface RmsNormBackwardRef {
  dx: Float64Array;
  dweight: Float64Array;
}

export function rmsNormForwardRef(x: ArrayLike<number>, weight: ArrayLike<number>, width: number, eps: number): RmsNormForwardRef {
  const rows = x.length / width;
  const y = new Float64Array(x.length);
  const rstd = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    const base = r * width;
    let ss = 0;
    for (let j = 0; j < width; j++) ss += x[base + j] ** 2;
    const rs = 1 / Math.sqrt(ss / width + eps);
    for (let j = 0; j < width; j++) y[base + j] = x[base + j] * rs * weight[j];
    rstd[r] = rs;
  }
  return { y, rstd };
}

export function rmsNormBackwardRef(
  x: ArrayLike<number>,
  weight: ArrayLike<number>,
  rstd: ArrayLike<number>,
  dy: ArrayLike<number>,
  width: number,
): RmsNormBackwardRef {
  const rows = x.length / width;
  const dx = new Float64Array(x.length);
  const dweight = new Float64Array(width);
  for (let r = 0; r < rows; r++) {
    const base = r * width;
    let sgx = 0;
    for (let j = 0; j < width; j++) {
      const xhat = x[base + j] * rstd[r];
      sgx += weight[j] * dy[base + j] * xhat;
      dweight[j] += dy[base + j] * xhat;
    }
    for (let j = 0; j < width; j++) {
      dx[base + j] = rstd[r] * (weight[j] * dy[base + j] - (x[base + j] * rstd[r] * sgx) / width);
    }
  }
  return { dx, dweight };
}
