/** Float64 reference for layernorm.wgsl: rows of length `width`. */

export interface LayerNormForwardRef {
  y: Float64Array;
  mean: Float64Array;
  rstd: Float64Array;
}

export function layerNormForwardRef(
  x: ArrayLike<number>,
  gamma: ArrayLike<number>,
  beta: ArrayLike<number>,
  width: number,
  eps: number,
): LayerNormForwardRef {
  const rows = x.length / width;
  const y = new Float64Array(x.length);
  const mean = new Float64Array(rows);
  const rstd = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    const base = r * width;
    let s = 0;
    for (let j = 0; j < width; j++) s += x[base + j];
    const m = s / width;
    let ss = 0;
    for (let j = 0; j < width; j++) ss += (x[base + j] - m) ** 2;
    const rs = 1 / Math.sqrt(ss / width + eps);
    for (let j = 0; j < width; j++) y[base + j] = (x[base + j] - m) * rs * gamma[j] + beta[j];
    mean[r] = m;
    rstd[r] = rs;
  }
  return { y, mean, rstd };
}

export interface LayerNormBackwardRef {
  dx: Float64Array;
  dgamma: Float64Array;
  dbeta: Float64Array;
}

export function layerNormBackwardRef(
  x: ArrayLike<number>,
  gamma: ArrayLike<number>,
  mean: ArrayLike<number>,
  rstd: ArrayLike<number>,
  dy: ArrayLike<number>,
  width: number,
): LayerNormBackwardRef {
  const rows = x.length / width;
  const dx = new Float64Array(x.length);
  const dgamma = new Float64Array(width);
  const dbeta = new Float64Array(width);
  const xhat = new Float64Array(width);
  for (let r = 0; r < rows; r++) {
    const base = r * width;
    let sg = 0;
    let sgx = 0;
    for (let j = 0; j < width; j++) {
      xhat[j] = (x[base + j] - mean[r]) * rstd[r];
      const g = gamma[j] * dy[base + j];
      sg += g;
      sgx += g * xhat[j];
      dgamma[j] += dy[base + j] * xhat[j];
      dbeta[j] += dy[base + j];
    }
    for (let j = 0; j < width; j++) {
      dx[base + j] = rstd[r] * (gamma[j] * dy[base + j] - sg / width - (xhat[j] * sgx) / width);
    }
  }
  return { dx, dgamma, dbeta };
}
