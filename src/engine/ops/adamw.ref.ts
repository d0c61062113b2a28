/** Float64 reference for adamw.wgsl: clip_grad_norm_ over all gradients, then torch.optim.AdamW. */
import type { AdamWHyper } from './adamw.ts';

export class AdamWRef {
  readonly params: Float64Array[];
  readonly m: Float64Array[];
  readonly v: Float64Array[];

  constructor(params: ArrayLike<number>[]) {
    this.params = params.map((p) => Float64Array.from(p));
    this.m = params.map((p) => new Float64Array(p.length));
    this.v = params.map((p) => new Float64Array(p.length));
  }

  /** One step; returns the pre-clip global gradient norm. A non-finite norm skips the update (as the GPU does). */
  step(grads: ArrayLike<number>[], h: AdamWHyper): number {
    let sumSquares = 0;
    for (const g of grads) for (let i = 0; i < g.length; i++) sumSquares += g[i] * g[i];
    const norm = Math.sqrt(sumSquares);
    if (!Number.isFinite(norm)) return norm;
    const clip = h.maxGradNorm === null ? 1 : Math.min(h.maxGradNorm / (norm + 1e-6), 1);
    const bias1 = 1 - h.beta1 ** h.step;
    const bias2 = 1 - h.beta2 ** h.step;
    grads.forEach((grad, t) => {
      const [p, m, v] = [this.params[t], this.m[t], this.v[t]];
      for (let i = 0; i < p.length; i++) {
        const g = grad[i] * clip;
        p[i] *= 1 - h.lr * h.weightDecay;
        m[i] = h.beta1 * m[i] + (1 - h.beta1) * g;
        v[i] = h.beta2 * v[i] + (1 - h.beta2) * g * g;
        p[i] -= (h.lr / bias1) * (m[i] / (Math.sqrt(v[i] / bias2) + h.eps));
      }
    });
    return norm;
  }
}
