/**
 * Linear probe: multinomial logistic regression on frozen embeddings, k-fold cross-validated.
 *   minimise (1/n) Σ_i −log softmax(Wᵀx_i + b)_{y_i} + (λ/2)‖W‖²
 * by Nesterov's accelerated gradient with step 1/L, L = ½ max‖[x, 1]‖² + λ (a bound on the
 * curvature of the softmax loss), from W = 0: deterministic.
 * Probe accuracy = (1/n) Σ_i [ŷ_i = y_i] with ŷ_i predicted by the model trained on the folds that
 * do not hold i. (Hand-written: the npm logistic regression (ml-logistic-regression) has no
 * intercept, no regularisation and a fixed-step schedule.)
 */
import { stratifiedFolds } from './folds.ts';

export interface LogisticRegressionOptions {
  /** λ, the L2 penalty on the weights (not the intercepts). Default 1e-2. */
  l2?: number;
  /** Gradient steps. Default 300. */
  iterations?: number;
}

export interface LogisticModel {
  classes: number;
  dim: number;
  /** [dim + 1, classes] row-major; the last row holds the intercepts. */
  weights: Float64Array;
}

function logits(model: { classes: number; dim: number }, w: Float64Array, x: ArrayLike<number>, out: Float64Array): void {
  const { classes, dim } = model;
  for (let c = 0; c < classes; c++) out[c] = w[dim * classes + c];
  for (let d = 0; d < dim; d++) {
    const v = x[d];
    if (v === 0) continue;
    for (let c = 0; c < classes; c++) out[c] += v * w[d * classes + c];
  }
}

function softmaxInPlace(z: Float64Array): void {
  let max = -Infinity;
  for (const v of z) max = Math.max(max, v);
  let sum = 0;
  for (let c = 0; c < z.length; c++) sum += z[c] = Math.exp(z[c] - max);
  for (let c = 0; c < z.length; c++) z[c] /= sum;
}

export function fitLogisticRegression(
  x: readonly ArrayLike<number>[],
  y: ArrayLike<number>,
  classes: number,
  train: ArrayLike<number>,
  options: LogisticRegressionOptions = {},
): LogisticModel {
  const l2 = options.l2 ?? 1e-2;
  const iterations = options.iterations ?? 300;
  if (!(l2 > 0)) throw new Error(`logistic regression l2 must be positive, got ${l2}`);
  if (train.length === 0) throw new Error('logistic regression: no training examples');
  const dim = x[train[0]].length;
  const shape = { classes, dim };
  let maxNorm = 0;
  for (let k = 0; k < train.length; k++) {
    let s = 1;
    for (const v of Array.from(x[train[k]])) s += v * v;
    maxNorm = Math.max(maxNorm, s);
  }
  const lipschitz = 0.5 * maxNorm + l2;
  const step = 1 / lipschitz;
  const momentum = (Math.sqrt(lipschitz / l2) - 1) / (Math.sqrt(lipschitz / l2) + 1);
  const size = (dim + 1) * classes;
  let w = new Float64Array(size);
  let previous = new Float64Array(size);
  const lookahead = new Float64Array(size);
  const grad = new Float64Array(size);
  const p = new Float64Array(classes);
  for (let t = 0; t < iterations; t++) {
    for (let e = 0; e < size; e++) lookahead[e] = w[e] + momentum * (w[e] - previous[e]);
    grad.fill(0);
    for (let k = 0; k < train.length; k++) {
      const i = train[k];
      const xi = x[i];
      logits(shape, lookahead, xi, p);
      softmaxInPlace(p);
      p[y[i]] -= 1;
      for (let d = 0; d < dim; d++) {
        const v = xi[d] / train.length;
        if (v === 0) continue;
        for (let c = 0; c < classes; c++) grad[d * classes + c] += v * p[c];
      }
      for (let c = 0; c < classes; c++) grad[dim * classes + c] += p[c] / train.length;
    }
    for (let e = 0; e < dim * classes; e++) grad[e] += l2 * lookahead[e];
    [previous, w] = [w, previous];
    for (let e = 0; e < size; e++) w[e] = lookahead[e] - step * grad[e];
  }
  return { classes, dim, weights: w };
}

export function predictClass(model: LogisticModel, x: ArrayLike<number>): number {
  const z = new Float64Array(model.classes);
  logits(model, model.weights, x, z);
  let best = 0;
  for (let c = 1; c < model.classes; c++) if (z[c] > z[best]) best = c;
  return best;
}

export interface ProbeOptions extends LogisticRegressionOptions {
  /** Default 5. */
  folds?: number;
  /** Seed of the stratified fold assignment. Default 0. */
  seed?: number;
}

/** Out-of-fold class predictions for every example (labels are 0..classes−1). */
export function crossValidatedPredictions(x: readonly ArrayLike<number>[], y: ArrayLike<number>, options: ProbeOptions = {}): Int32Array {
  if (x.length !== y.length) throw new Error(`linear probe: ${x.length} vectors and ${y.length} labels`);
  const k = options.folds ?? 5;
  const classes = Math.max(...Array.from(y)) + 1;
  const fold = stratifiedFolds(y, k, options.seed ?? 0);
  const predictions = new Int32Array(x.length);
  for (let f = 0; f < k; f++) {
    const train: number[] = [];
    const test: number[] = [];
    for (let i = 0; i < x.length; i++) (fold[i] === f ? test : train).push(i);
    if (test.length === 0) continue;
    if (train.length === 0) throw new Error(`linear probe: fold ${f} leaves nothing to train on`);
    const model = fitLogisticRegression(x, y, classes, train, options);
    for (const i of test) predictions[i] = predictClass(model, x[i]);
  }
  return predictions;
}
