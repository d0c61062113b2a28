/** Float64 reference for rope.wgsl: x [rows, heads·D], one position per row, angles from invFreq [D/2]. */

/** RoPE(x), or its inverse (the backward: dx = ropeRef(dy, …, true)). */
export function ropeRef(
  x: ArrayLike<number>,
  positions: ArrayLike<number>,
  invFreq: ArrayLike<number>,
  heads: number,
  inverse = false,
): Float64Array {
  const half = invFreq.length;
  const width = heads * 2 * half;
  const y = new Float64Array(x.length);
  for (let row = 0; row < positions.length; row++) {
    for (let i = 0; i < half; i++) {
      const angle = positions[row] * invFreq[i];
      const c = Math.cos(angle);
      const s = inverse ? -Math.sin(angle) : Math.sin(angle);
      for (let h = 0; h < heads; h++) {
        const lo = row * width + h * 2 * half + i;
        const hi = lo + half;
        y[lo] = x[lo] * c - x[hi] * s;
        y[hi] = x[hi] * c + x[lo] * s;
      }
    }
  }
  return y;
}
