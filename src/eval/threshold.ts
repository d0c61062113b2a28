/**
 * Zero-shot pair accuracy: predict "related" when cos ≥ t. The threshold t is the one that maximises
 * accuracy on the train split (candidates: midpoints between consecutive distinct train scores and
 * the two ends; ties → the lowest), and accuracy is reported on the test split:
 *   accuracy = (1/|test|) Σ_{p∈test} [ (cos(p) ≥ t) = related(p) ].
 */
export function fitThreshold(scores: ArrayLike<number>, positive: ArrayLike<boolean>, train: ArrayLike<number>): number {
  if (train.length === 0) throw new Error('fitThreshold: empty train split');
  const order = Array.from(train).sort((a, b) => scores[a] - scores[b]);
  let positivesAbove = 0;
  for (const i of order) if (positive[i]) positivesAbove++;
  // Threshold below everything: all predicted positive.
  let correct = positivesAbove;
  let best = correct;
  let bestThreshold = scores[order[0]] - 1;
  for (let k = 0; k < order.length; k++) {
    // Moving the threshold past order[k] flips its prediction to negative.
    correct += positive[order[k]] ? -1 : 1;
    const next = k + 1 < order.length ? scores[order[k + 1]] : undefined;
    if (next !== undefined && next === scores[order[k]]) continue; // only between distinct scores
    if (correct > best) {
      best = correct;
      bestThreshold = next === undefined ? scores[order[k]] + 1 : (scores[order[k]] + next) / 2;
    }
  }
  return bestThreshold;
}

export function accuracyAt(scores: ArrayLike<number>, positive: ArrayLike<boolean>, threshold: number, indices: ArrayLike<number>): number {
  if (indices.length === 0) return NaN;
  let correct = 0;
  for (let k = 0; k < indices.length; k++) {
    const i = indices[k];
    if (scores[i] >= threshold === Boolean(positive[i])) correct++;
  }
  return correct / indices.length;
}
