/**
 * Seeded percentile bootstrap. A statistic is a function of a multiset of unit indices (pairs,
 * queries, texts); resampling draws units with replacement, within each stratum when strata are
 * given (so a resample of similar and different pairs keeps both groups at their sizes).
 * Interval = [q_{α/2}, q_{1−α/2}] of the resampled statistics (linear-interpolated quantiles).
 */
import { Rng } from '../data/rng.ts';

export interface Interval {
  /** The statistic on the whole sample. */
  value: number;
  low: number;
  high: number;
}

export interface BootstrapOptions {
  /** Default 1000. */
  resamples?: number;
  /** Default 0. */
  seed?: number;
  /** Default 0.95. */
  level?: number;
}

/** The units a statistic is computed over. */
export interface Sample {
  units: number;
  /** Stratum of each unit (integers); resampling keeps each stratum's size. */
  strata?: ArrayLike<number>;
}

export type Statistic = (indices: Int32Array) => number;

function groups(sample: Sample): Int32Array[] {
  if (!sample.strata) return [Int32Array.from({ length: sample.units }, (_, i) => i)];
  if (sample.strata.length !== sample.units) throw new Error(`bootstrap: ${sample.strata.length} strata for ${sample.units} units`);
  const byStratum = new Map<number, number[]>();
  for (let i = 0; i < sample.units; i++) {
    const s = sample.strata[i];
    let list = byStratum.get(s);
    if (!list) byStratum.set(s, (list = []));
    list.push(i);
  }
  return [...byStratum.keys()].sort((a, b) => a - b).map((s) => Int32Array.from(byStratum.get(s)!));
}

/** Quantile q ∈ [0, 1] of sorted values, interpolating linearly between order statistics. */
export function quantile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return NaN;
  const position = q * (sorted.length - 1);
  const lo = Math.floor(position);
  const hi = Math.min(lo + 1, sorted.length - 1);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (position - lo);
}

function interval(value: number, draws: number[], level: number): Interval {
  const valid = Float64Array.from(draws.filter((v) => Number.isFinite(v))).sort();
  // A statistic undefined on most resamples (e.g. too few units) gets no interval.
  if (valid.length < draws.length / 2) return { value, low: NaN, high: NaN };
  const alpha = 1 - level;
  return { value, low: quantile(valid, alpha / 2), high: quantile(valid, 1 - alpha / 2) };
}

function resolve(options: BootstrapOptions): Required<BootstrapOptions> {
  const resolved = { resamples: options.resamples ?? 1000, seed: options.seed ?? 0, level: options.level ?? 0.95 };
  if (!Number.isInteger(resolved.resamples) || resolved.resamples < 1) throw new Error(`bootstrap resamples must be a positive integer, got ${resolved.resamples}`);
  if (!(resolved.level > 0 && resolved.level < 1)) throw new Error(`bootstrap level must be in (0, 1), got ${resolved.level}`);
  return resolved;
}

/**
 * Paired bootstrap of several statistics over the same units: every resample is shared, so the
 * interval of a difference between two of them accounts for their correlation.
 */
export function bootstrapTogether(sample: Sample, statistics: Statistic[], options: BootstrapOptions = {}): Interval[] {
  const { resamples, seed, level } = resolve(options);
  const strata = groups(sample);
  const identity = Int32Array.from({ length: sample.units }, (_, i) => i);
  const values = statistics.map((f) => f(identity));
  const draws = statistics.map(() => [] as number[]);
  const rng = new Rng(seed);
  const indices = new Int32Array(sample.units);
  for (let r = 0; r < resamples; r++) {
    let at = 0;
    for (const members of strata) for (let k = 0; k < members.length; k++) indices[at++] = members[rng.int(members.length)];
    statistics.forEach((f, s) => draws[s].push(f(indices)));
  }
  return values.map((v, s) => interval(v, draws[s], level));
}

export function bootstrap(sample: Sample, statistic: Statistic, options: BootstrapOptions = {}): Interval {
  return bootstrapTogether(sample, [statistic], options)[0];
}
