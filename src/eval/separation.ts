/**
 * Separation scores over cosine similarities. Each statistic takes the indices of the units it is
 * computed over (the whole sample, or a bootstrap resample with repeats).
 */
import { dot } from './vectors.ts';

/**
 * Separation = mean cos over positive pairs − mean cos over negative pairs
 *            = (1/|S|) Σ_{p∈S} cos(p) − (1/|D|) Σ_{p∈D} cos(p).
 * Cardiology: S = similar pairs, D = different pairs. Gene–disease (KG): S = true associations,
 * D = false ones, cos(p) = cos(gene text, disease text). NaN when either group is empty.
 */
export function separation(cosines: ArrayLike<number>, positive: ArrayLike<boolean>, indices: ArrayLike<number>): number {
  let sp = 0;
  let np = 0;
  let sn = 0;
  let nn = 0;
  for (let k = 0; k < indices.length; k++) {
    const i = indices[k];
    if (positive[i]) {
      sp += cosines[i];
      np++;
    } else {
      sn += cosines[i];
      nn++;
    }
  }
  return np && nn ? sp / np - sn / nn : NaN;
}

/** Mean of the selected values (mean cosine of a group of pairs). NaN when none. */
export function meanOf(values: ArrayLike<number>, indices: ArrayLike<number>, select: (i: number) => boolean = () => true): number {
  let s = 0;
  let m = 0;
  for (let k = 0; k < indices.length; k++) {
    const i = indices[k];
    if (!select(i)) continue;
    s += values[i];
    m++;
  }
  return m ? s / m : NaN;
}

export interface SentenceSeparation {
  /** Mean cos over pairs of distinct true-association sentences. */
  withinTrue: number;
  /** Mean cos over pairs of distinct false-association sentences. */
  withinFalse: number;
  /** Mean cos over (true, false) sentence pairs. */
  between: number;
  /** (withinTrue + withinFalse) / 2 − between. */
  score: number;
}

/**
 * Sentence-level KG separation. The CTD paper compares "the mean cosine among true-association
 * sentences with that among false ones", which leaves open what a higher number means. We report
 * both within-group means as written, and as the score the mean within-group cosine minus the mean
 * between-group cosine: positive when true and false sentences form separate groups, which a
 * difference of the two within-group means cannot show.
 *
 * `vectors` must be unit length: with c_i copies of sentence i in group G (1 each on the sample, more
 * in a bootstrap resample), the sum over pairs of draws of different sentences is
 * |Σ_i c_i v_i|² − Σ_i c_i² over m² − Σ_i c_i² pairs, so each mean costs O(|G|·dim) instead of
 * O(|G|²·dim), and copies of one sentence never pair with each other at cosine 1.
 */
export function sentenceSeparation(vectors: readonly ArrayLike<number>[], associated: ArrayLike<boolean>, indices: ArrayLike<number>): SentenceSeparation {
  const dim = vectors.length ? vectors[0].length : 0;
  const sumTrue = new Float64Array(dim);
  const sumFalse = new Float64Array(dim);
  const copies = new Int32Array(vectors.length);
  let mTrue = 0;
  let mFalse = 0;
  for (let k = 0; k < indices.length; k++) {
    const i = indices[k];
    copies[i]++;
    const target = associated[i] ? sumTrue : sumFalse;
    const v = vectors[i];
    for (let c = 0; c < dim; c++) target[c] += v[c];
    if (associated[i]) mTrue++;
    else mFalse++;
  }
  let squaresTrue = 0;
  let squaresFalse = 0;
  copies.forEach((c, i) => {
    if (associated[i]) squaresTrue += c * c;
    else squaresFalse += c * c;
  });
  const within = (sum: Float64Array, m: number, squares: number) => (m * m > squares ? (dot(sum, sum) - squares) / (m * m - squares) : NaN);
  const withinTrue = within(sumTrue, mTrue, squaresTrue);
  const withinFalse = within(sumFalse, mFalse, squaresFalse);
  const between = mTrue && mFalse ? dot(sumTrue, sumFalse) / (mTrue * mFalse) : NaN;
  return { withinTrue, withinFalse, between, score: (withinTrue + withinFalse) / 2 - between };
}
