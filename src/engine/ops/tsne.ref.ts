/** Float64 reference for tsne.wgsl: forces, cost, gradient and the optimiser step. */
import type { TsneAffinities, TsneStep } from './tsne.ts';

export interface TsneForcesRef {
  /** A_i = Σ_j p_ij w_ij (y_i − y_j), [n, dim]. */
  attr: Float64Array;
  /** R_i = Σ_j w_ij² (y_i − y_j), [n, dim]. */
  rep: Float64Array;
  /** z_i = Σ_{j≠i} w_ij, [n]. */
  zRow: Float64Array;
  /** Z = Σ_i z_i. */
  z: number;
}

export function tsneForcesRef(y: ArrayLike<number>, n: number, dim: number, p: TsneAffinities): TsneForcesRef {
  const attr = new Float64Array(n * dim);
  const rep = new Float64Array(n * dim);
  const zRow = new Float64Array(n);
  const diff = new Float64Array(dim);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      if (j === i) continue;
      let d2 = 0;
      for (let d = 0; d < dim; d++) {
        diff[d] = y[i * dim + d] - y[j * dim + d];
        d2 += diff[d] * diff[d];
      }
      const w = 1 / (1 + d2);
      zRow[i] += w;
      for (let d = 0; d < dim; d++) rep[i * dim + d] += w * w * diff[d];
    }
    for (let e = p.rowPtr[i]; e < p.rowPtr[i + 1]; e++) {
      const j = p.cols[e];
      let d2 = 0;
      for (let d = 0; d < dim; d++) {
        diff[d] = y[i * dim + d] - y[j * dim + d];
        d2 += diff[d] * diff[d];
      }
      const pw = p.values[e] / (1 + d2);
      for (let d = 0; d < dim; d++) attr[i * dim + d] += pw * diff[d];
    }
  }
  let z = 0;
  for (let i = 0; i < n; i++) z += zRow[i];
  return { attr, rep, zRow, z };
}

/** dC/dy = 4 (α A − R / Z), the gradient of KL(αP ‖ Q) when P sums to one. */
export function tsneGradientRef(y: ArrayLike<number>, n: number, dim: number, p: TsneAffinities, exaggeration = 1): Float64Array {
  const { attr, rep, z } = tsneForcesRef(y, n, dim, p);
  const invZ = z > 0 ? 1 / z : 0;
  return Float64Array.from(attr, (a, c) => 4 * (exaggeration * a - rep[c] * invZ));
}

/** KL(P ‖ Q) = Σ_ij p_ij log(p_ij / q_ij) over the stored (non-zero) p_ij. */
export function tsneKlRef(y: ArrayLike<number>, n: number, dim: number, p: TsneAffinities): number {
  let z = 0;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      if (j === i) continue;
      let d2 = 0;
      for (let d = 0; d < dim; d++) d2 += (y[i * dim + d] - y[j * dim + d]) ** 2;
      z += 1 / (1 + d2);
    }
  }
  let kl = 0;
  for (let i = 0; i < n; i++) {
    for (let e = p.rowPtr[i]; e < p.rowPtr[i + 1]; e++) {
      const j = p.cols[e];
      const pij = p.values[e];
      if (pij <= 0) continue;
      let d2 = 0;
      for (let d = 0; d < dim; d++) d2 += (y[i * dim + d] - y[j * dim + d]) ** 2;
      kl += pij * Math.log((pij * z) * (1 + d2));
    }
  }
  return kl;
}

/** Optimiser state, updated in place by tsneStepRef. */
export interface TsneStateRef {
  y: Float64Array;
  velocity: Float64Array;
  gains: Float64Array;
}

/**
 * The step tsne_update takes: recentre by the pre-step mean, gains +0.2 where the gradient's sign
 * differs from the previous step's and ×0.8 where it agrees (floored at minGain), then
 * velocity = momentum·velocity − learningRate·gain·grad and y += velocity.
 */
export function tsneStepRef(state: TsneStateRef, n: number, dim: number, p: TsneAffinities, step: TsneStep): void {
  const grad = tsneGradientRef(state.y, n, dim, p, step.exaggeration);
  const mean = new Float64Array(dim);
  for (let c = 0; c < n * dim; c++) mean[c % dim] += state.y[c] / n;
  for (let c = 0; c < n * dim; c++) {
    const previous = state.velocity[c];
    let gain = (grad[c] > 0) === (previous > 0) ? state.gains[c] * 0.8 : state.gains[c] + 0.2;
    gain = Math.max(gain, step.minGain);
    const velocity = step.momentum * previous - step.learningRate * gain * grad[c];
    state.gains[c] = gain;
    state.velocity[c] = velocity;
    state.y[c] = state.y[c] - mean[c % dim] + velocity;
  }
}
