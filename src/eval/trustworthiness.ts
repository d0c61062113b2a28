/**
 * Trustworthiness of a low-dimensional map (Venna & Kaski 2001), Euclidean distances:
 *   T(k) = 1 − 2 / (n k (2n − 3k − 1)) · Σ_i Σ_{j ∈ U_k(i)} (r(i, j) − k),
 * U_k(i): the k nearest neighbours of i in the map that are not among its k nearest in the input;
 * r(i, j): the rank of j among i's neighbours in the input (1 = nearest). 1 = no false neighbours.
 * Needs k < n/2. Exact, O(n² log n).
 */
function squaredDistances(points: Float64Array | Float32Array, dim: number, i: number, n: number): Float64Array {
  const out = new Float64Array(n);
  for (let j = 0; j < n; j++) {
    let s = 0;
    for (let c = 0; c < dim; c++) {
      const t = points[i * dim + c] - points[j * dim + c];
      s += t * t;
    }
    out[j] = s;
  }
  return out;
}

/** Indices of the other points by increasing distance (ties: lower index first). */
function neighbourOrder(distances: Float64Array, self: number): number[] {
  const order: number[] = [];
  for (let j = 0; j < distances.length; j++) if (j !== self) order.push(j);
  return order.sort((a, b) => distances[a] - distances[b] || a - b);
}

/** `input` is [n, inputDim] and `map` is [n, mapDim], both row-major. */
export function trustworthiness(input: Float64Array | Float32Array, inputDim: number, map: Float64Array | Float32Array, mapDim: number, k: number): number {
  const n = input.length / inputDim;
  if (!Number.isInteger(n) || map.length !== n * mapDim) throw new Error(`trustworthiness: input has ${input.length / inputDim} points, map has ${map.length / mapDim}`);
  if (!Number.isInteger(k) || k < 1 || k >= n / 2) throw new Error(`trustworthiness: k must be an integer in 1..${Math.ceil(n / 2) - 1}, got ${k}`);
  const inputRank = new Int32Array(n);
  let penalty = 0;
  for (let i = 0; i < n; i++) {
    neighbourOrder(squaredDistances(input, inputDim, i, n), i).forEach((j, r) => (inputRank[j] = r + 1));
    for (const j of neighbourOrder(squaredDistances(map, mapDim, i, n), i).slice(0, k)) penalty += Math.max(0, inputRank[j] - k);
  }
  return 1 - (2 / (n * k * (2 * n - 3 * k - 1))) * penalty;
}
