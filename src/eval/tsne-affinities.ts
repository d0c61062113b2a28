/**
 * t-SNE input affinities P, stored sparsely.
 *
 * Dense P is N² floats (400 MB at N = 10,000, over most devices' maxStorageBufferBindingSize), so,
 * as Barnes-Hut-SNE and openTSNE do for the attractive term, each point keeps only its
 * k = min(N − 1, ⌊3·perplexity⌋) nearest neighbours: p_{j|i} is calibrated over them by binary search
 * on the Gaussian precision so that its perplexity matches, then P = (p_{j|i} + p_{i|j}) / 2N on the
 * union of the neighbour graphs (CSR, rows sorted by column). The repulsive term stays exact.
 */
import type { TsneAffinities } from '../engine/ops/tsne.ts';

export interface Neighbours {
  k: number;
  /** [n, k] neighbour indices, nearest first (ties: lower index first). */
  indices: Int32Array;
  /** [n, k] squared Euclidean distances. */
  distances: Float64Array;
}

/** Exact k nearest neighbours (squared Euclidean) of each row of a flat [n, d] matrix, brute force. */
export function nearestNeighbours(data: Float64Array, n: number, d: number, k: number): Neighbours {
  if (k < 1 || k > n - 1) throw new Error(`nearestNeighbours: k must be in 1..${n - 1}, got ${k}`);
  const indices = new Int32Array(n * k);
  const distances = new Float64Array(n * k);
  const bestD = new Float64Array(k);
  const bestI = new Int32Array(k);
  for (let i = 0; i < n; i++) {
    let filled = 0;
    const xi = i * d;
    for (let j = 0; j < n; j++) {
      if (j === i) continue;
      let s = 0;
      const xj = j * d;
      for (let c = 0; c < d; c++) {
        const t = data[xi + c] - data[xj + c];
        s += t * t;
      }
      if (filled === k && s >= bestD[k - 1]) continue;
      // Insert into the sorted list of the k best so far.
      let pos = filled < k ? filled++ : k - 1;
      while (pos > 0 && bestD[pos - 1] > s) {
        bestD[pos] = bestD[pos - 1];
        bestI[pos] = bestI[pos - 1];
        pos--;
      }
      bestD[pos] = s;
      bestI[pos] = j;
    }
    indices.set(bestI, i * k);
    distances.set(bestD, i * k);
  }
  return { k, indices, distances };
}

/**
 * Conditional probabilities p_{j|i} ∝ exp(−β d_j) over one row of squared distances, with β found by
 * bisection so that the entropy equals log(perplexity) to within `tolerance` nats.
 */
export function calibrateRow(distances: ArrayLike<number>, perplexity: number, tolerance = 1e-5, maxSteps = 200): Float64Array {
  const k = distances.length;
  const target = Math.log(perplexity);
  const p = new Float64Array(k);
  let dMin = Infinity;
  for (let j = 0; j < k; j++) dMin = Math.min(dMin, distances[j]);
  let beta = 1;
  let lo = 0;
  let hi = Infinity;
  for (let step = 0; step < maxSteps; step++) {
    // Shifting by the nearest distance keeps exp() from underflowing; it cancels in the normalisation.
    let sum = 0;
    let weighted = 0;
    for (let j = 0; j < k; j++) {
      const shifted = distances[j] - dMin;
      p[j] = Math.exp(-beta * shifted);
      sum += p[j];
      weighted += shifted * p[j];
    }
    const entropy = Math.log(sum) + (beta * weighted) / sum;
    for (let j = 0; j < k; j++) p[j] /= sum;
    const gap = entropy - target;
    if (Math.abs(gap) < tolerance) break;
    if (gap > 0) {
      lo = beta; // too flat: sharpen
      beta = hi === Infinity ? beta * 2 : (beta + hi) / 2;
    } else {
      hi = beta;
      beta = (beta + lo) / 2;
    }
  }
  return p;
}

/** Symmetric sparse P (sums to one) for points given as a flat [n, d] matrix. */
export function tsneAffinities(data: Float64Array, n: number, d: number, perplexity: number): TsneAffinities {
  if (n < 2) throw new Error(`t-SNE needs at least 2 points, got ${n}`);
  if (!(perplexity > 0) || perplexity >= n - 1) {
    throw new Error(`t-SNE perplexity must be in (0, n − 1) = (0, ${n - 1}) for ${n} points, got ${perplexity}`);
  }
  const k = Math.min(n - 1, Math.floor(3 * perplexity));
  const nn = nearestNeighbours(data, n, d, k);
  const conditional = new Float64Array(n * k);
  for (let i = 0; i < n; i++) conditional.set(calibrateRow(nn.distances.subarray(i * k, (i + 1) * k), perplexity), i * k);

  // Each edge i→j contributes p_{j|i}/2n to both P_ij and P_ji.
  const counts = new Uint32Array(n + 1);
  for (let e = 0; e < n * k; e++) {
    counts[Math.floor(e / k) + 1]++;
    counts[nn.indices[e] + 1]++;
  }
  for (let i = 0; i < n; i++) counts[i + 1] += counts[i];
  const fill = counts.slice(0, n);
  const tripCols = new Int32Array(2 * n * k);
  const tripVals = new Float64Array(2 * n * k);
  for (let e = 0; e < n * k; e++) {
    const i = Math.floor(e / k);
    const j = nn.indices[e];
    const v = conditional[e] / (2 * n);
    tripCols[fill[i]] = j;
    tripVals[fill[i]++] = v;
    tripCols[fill[j]] = i;
    tripVals[fill[j]++] = v;
  }
  const rowPtr = new Uint32Array(n + 1);
  const cols: number[] = [];
  const values: number[] = [];
  const order: number[] = [];
  for (let i = 0; i < n; i++) {
    order.length = 0;
    for (let e = counts[i]; e < counts[i + 1]; e++) order.push(e);
    order.sort((a, b) => tripCols[a] - tripCols[b]);
    for (const e of order) {
      if (cols.length > rowPtr[i] && cols[cols.length - 1] === tripCols[e]) values[values.length - 1] += tripVals[e];
      else {
        cols.push(tripCols[e]);
        values.push(tripVals[e]);
      }
    }
    rowPtr[i + 1] = cols.length;
  }
  return { n, rowPtr, cols: Uint32Array.from(cols), values: Float32Array.from(values) };
}
