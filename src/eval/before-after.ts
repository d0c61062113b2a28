/**
 * Before/after: the base model and base + adapter embed the same held-out texts, every metric is
 * computed for both, and a paired bootstrap (the same resamples for both models) gives each value's
 * interval and the interval of the change.
 */
import type { TextRole } from '../model/sentence-config.ts';
import { auroc } from './auroc.ts';
import { type BootstrapOptions, type Interval, type Sample, type Statistic, bootstrapTogether } from './bootstrap.ts';
import { stratifiedSplit } from './folds.ts';
import type { MetricKey } from './help.ts';
import { type LogisticRegressionOptions, crossValidatedPredictions } from './probe.ts';
import { meanReciprocalRank, recallAtK, relevantRanks } from './retrieval.ts';
import { meanOf, type SentenceSeparation, sentenceSeparation, separation } from './separation.ts';
import { silhouette } from './silhouette.ts';
import { accuracyAt, fitThreshold } from './threshold.ts';
import type { Embedder, EvalSet, RoleText } from './types.ts';
import { dot, unit } from './vectors.ts';

const ROLES: readonly TextRole[] = ['query', 'passage'];
/** The role of single texts used as features (probe, silhouette, maps), as E5's guidance has it. */
export const FEATURE_ROLE: TextRole = 'query';

export interface BeforeAfterOptions extends BootstrapOptions {
  /** Share of pairs in the zero-shot test split. Default 0.5. */
  testFraction?: number;
  /** Folds of the linear probe. Default 5. */
  probeFolds?: number;
  probe?: LogisticRegressionOptions;
  /** Texts per embedder call. Default 64. */
  batchSize?: number;
  /** Called after each embedder call with texts embedded so far and the total (both models). */
  onProgress?: (done: number, total: number) => void;
}

/**
 * A metric with a class (or, without classes, a sample) smaller than this gets a warning. With few
 * units a percentile bootstrap can only resample the values it has, so its intervals come out too
 * narrow, and AUROC moves in steps of 1/(n₊n₋); 10 a class is a rule of thumb for intervals to mean
 * something (above it they are still approximate). With one unit a class every resample is the
 * sample itself: there is no interval at all, and none is reported.
 */
export const MIN_UNITS_PER_CLASS = 10;

export interface MetricComparison {
  key: MetricKey;
  /** Units the metric is computed over (pairs, texts, queries). */
  n: number;
  base: Interval;
  adapted: Interval;
  /** adapted − base, paired. */
  change: Interval;
  /** Too few units (see MIN_UNITS_PER_CLASS): what is small and what that means for the numbers. */
  warning?: string;
}

/** One pair's cosine under one model: the data of the separation histogram. */
export interface PairCosine {
  model: 'base' | 'adapted';
  set: 'cardiology' | 'gene–disease';
  /** similar / different / negation, or associated / not associated. */
  group: string;
  cosine: number;
}

export interface BeforeAfterResult {
  metrics: MetricComparison[];
  pairCosines: PairCosine[];
  resamples: number;
  level: number;
  seed: number;
}

/** A model's embeddings, looked up by text and role (unit-length float64). */
type Vectors = (text: string, role: TextRole) => Float64Array;

/** What a metric's units are, for its small-sample warning. */
export type Unit = 'pair' | 'text' | 'query' | 'statement';
const PLURAL: Record<Unit, string> = { pair: 'pairs', text: 'texts', query: 'queries', statement: 'statements' };

/** A metric and the units it is computed over. */
export interface MeasuredOver {
  key: MetricKey;
  unit: Unit;
  sample: Sample;
}

interface MetricSpec extends MeasuredOver {
  statistic: (vectors: Vectors) => Statistic;
}

/** Pair cosines: the first text of a pair is a query, the second a passage (the roles of training pairs). */
function cosines(vectors: Vectors, pairs: readonly { a: string; b: string }[]): Float64Array {
  return Float64Array.from(pairs, (p) => dot(vectors(p.a, 'query'), vectors(p.b, 'passage')));
}

/** A statistic over pairs from their cosines under each model. */
function overCosines(pairs: readonly { a: string; b: string }[], f: (cos: Float64Array, idx: Int32Array) => number): MetricSpec['statistic'] {
  return (vectors) => {
    const cos = cosines(vectors, pairs);
    return (idx) => f(cos, idx);
  };
}

function strataOf(flags: readonly boolean[]): Int32Array {
  return Int32Array.from(flags, (f) => (f ? 1 : 0));
}

/** Cardiology-style or KG pair metrics over positive/negative pairs of texts. */
function pairSpecs(
  prefix: 'cardio' | 'kg',
  pairs: { a: string; b: string }[],
  positive: boolean[],
  options: Required<Pick<BeforeAfterOptions, 'testFraction' | 'seed'>>,
): MetricSpec[] {
  if (!positive.some(Boolean) || positive.every(Boolean)) return [];
  const sample = { units: pairs.length, strata: strataOf(positive) };
  const split = stratifiedSplit(sample.strata, options.testFraction, options.seed);
  const testStrata = Int32Array.from(split.test, (i) => sample.strata[i]);
  const keys = prefix === 'cardio' ? (['cardio_separation', 'cardio_similar_mean', 'cardio_different_mean', 'cardio_auroc', 'cardio_pair_accuracy'] as const) : (['kg_separation', 'kg_true_mean', 'kg_false_mean', 'kg_auroc', 'kg_pair_accuracy'] as const);
  const specs: MetricSpec[] = [
    { key: keys[0], unit: 'pair', sample, statistic: overCosines(pairs, (c, idx) => separation(c, positive, idx)) },
    { key: keys[1], unit: 'pair', sample, statistic: overCosines(pairs, (c, idx) => meanOf(c, idx, (i) => positive[i])) },
    { key: keys[2], unit: 'pair', sample, statistic: overCosines(pairs, (c, idx) => meanOf(c, idx, (i) => !positive[i])) },
    { key: keys[3], unit: 'pair', sample, statistic: overCosines(pairs, (c, idx) => auroc(c, positive, idx)) },
  ];
  if (split.train.length > 0 && split.test.length > 0) {
    specs.push({
      key: keys[4],
      unit: 'pair',
      sample: { units: split.test.length, strata: testStrata },
      statistic: (vectors) => {
        const c = cosines(vectors, pairs);
        const threshold = fitThreshold(c, positive, split.train);
        return (idx) => accuracyAt(c, positive, threshold, Int32Array.from(idx, (k) => split.test[k]));
      },
    });
  }
  return specs;
}

function sentenceSpecs(sentences: string[], associated: boolean[]): MetricSpec[] {
  if (!associated.some(Boolean) || associated.every(Boolean)) return [];
  const sample = { units: sentences.length, strata: strataOf(associated) };
  const field = (key: MetricKey, name: keyof SentenceSeparation): MetricSpec => ({
    key,
    unit: 'text',
    sample,
    statistic: (v) => {
      const vectors = sentences.map((s) => v(s, FEATURE_ROLE));
      return (idx) => sentenceSeparation(vectors, associated, idx)[name];
    },
  });
  return [field('kg_sentence_separation', 'score'), field('kg_sentence_within_true', 'withinTrue'), field('kg_sentence_within_false', 'withinFalse'), field('kg_sentence_between', 'between')];
}

function labelledSpecs(set: NonNullable<EvalSet['labelled']>, options: BeforeAfterOptions): MetricSpec[] {
  const names = [...new Set(set.map((t) => t.label))].sort();
  if (names.length < 2) throw new Error(`labelled texts need at least two labels, got ${names.length} (${names.join(', ')})`);
  const y = Int32Array.from(set, (t) => names.indexOf(t.label));
  const sample = { units: set.length, strata: y };
  return [
    {
      key: 'probe_accuracy',
      unit: 'text',
      sample,
      statistic: (v) => {
        const predicted = crossValidatedPredictions(set.map((t) => v(t.text, FEATURE_ROLE)), y, { ...options.probe, folds: options.probeFolds ?? 5, seed: options.seed ?? 0 });
        const correct = Float64Array.from(predicted, (p, i) => (p === y[i] ? 1 : 0));
        return (idx) => meanOf(correct, idx);
      },
    },
    {
      key: 'silhouette',
      unit: 'text',
      sample,
      statistic: (v) => {
        const vectors = set.map((t) => v(t.text, FEATURE_ROLE));
        return (idx) => silhouette(vectors, y, idx);
      },
    },
  ];
}

function retrievalSpecs(set: NonNullable<EvalSet['retrieval']>): MetricSpec[] {
  const position = new Map<string, number>();
  set.corpus.forEach((item, i) => {
    if (position.has(item.id)) throw new Error(`retrieval corpus id "${item.id}" appears twice`);
    position.set(item.id, i);
  });
  const relevant = set.queries.map((q, qi) =>
    q.relevant.map((id) => {
      const at = position.get(id);
      if (at === undefined) throw new Error(`retrieval query ${qi} names relevant id "${id}", which is not in the corpus`);
      return at;
    }),
  );
  const sample = { units: set.queries.length };
  const overRanks = (key: MetricKey, f: (ranks: number[][], idx: Int32Array) => number): MetricSpec => ({
    key,
    unit: 'query',
    sample,
    statistic: (v) => {
      const ranks = relevantRanks(set.queries.map((q) => v(q.text, 'query')), set.corpus.map((c) => v(c.text, 'passage')), relevant);
      return (idx) => f(ranks, idx);
    },
  });
  return [
    overRanks('recall_at_1', (r, idx) => recallAtK(r, 1, idx)),
    overRanks('recall_at_5', (r, idx) => recallAtK(r, 5, idx)),
    overRanks('recall_at_10', (r, idx) => recallAtK(r, 10, idx)),
    overRanks('mrr', meanReciprocalRank),
  ];
}

function checkText(where: string, text: unknown): void {
  if (typeof text !== 'string' || text.trim() === '') throw new Error(`${where}: text must be a non-empty string, got ${JSON.stringify(text)}`);
}

/** The metrics an evaluation set supports, in report order. */
function metricSpecs(set: EvalSet, options: BeforeAfterOptions): MetricSpec[] {
  const resolved = { testFraction: options.testFraction ?? 0.5, seed: options.seed ?? 0 };
  const specs: MetricSpec[] = [];
  if (set.pairs?.length) {
    set.pairs.forEach((p, i) => {
      checkText(`pair ${i}`, p.a);
      checkText(`pair ${i}`, p.b);
      if (!['similar', 'different', 'negation'].includes(p.group)) throw new Error(`pair ${i}: group must be similar, different or negation, got ${JSON.stringify(p.group)}`);
    });
    const scored = set.pairs.filter((p) => p.group !== 'negation');
    specs.push(...pairSpecs('cardio', scored, scored.map((p) => p.group === 'similar'), resolved));
    const negation = set.pairs.filter((p) => p.group === 'negation');
    if (negation.length) {
      specs.push({ key: 'negation_mean', unit: 'pair', sample: { units: negation.length }, statistic: overCosines(negation, (c, idx) => meanOf(c, idx)) });
      const versus = set.pairs.filter((p) => p.group !== 'different');
      const isSimilar = versus.map((p) => p.group === 'similar');
      if (isSimilar.some(Boolean)) {
        // AUROC with similar pairs as positives = P(cos(negation) < cos(similar)) + ½ P(equal).
        specs.push({ key: 'negation_below_similar', unit: 'pair', sample: { units: versus.length, strata: strataOf(isSimilar) }, statistic: overCosines(versus, (c, idx) => auroc(c, isSimilar, idx)) });
      }
    }
  }
  if (set.associations?.length) {
    set.associations.forEach((a, i) => {
      checkText(`association ${i} gene`, a.gene);
      checkText(`association ${i} disease`, a.disease);
      checkText(`association ${i} sentence`, a.sentence);
    });
    const associated = set.associations.map((a) => Boolean(a.associated));
    specs.push(...pairSpecs('kg', set.associations.map((a) => ({ a: a.gene, b: a.disease })), associated, resolved));
    specs.push(...sentenceSpecs(set.associations.map((a) => a.sentence), associated));
  }
  if (set.labelled?.length) {
    set.labelled.forEach((t, i) => checkText(`labelled text ${i}`, t.text));
    specs.push(...labelledSpecs(set.labelled, options));
  }
  if (set.retrieval?.queries.length) {
    set.retrieval.queries.forEach((q, i) => checkText(`retrieval query ${i}`, q.text));
    set.retrieval.corpus.forEach((c, i) => checkText(`retrieval corpus item ${i}`, c.text));
    specs.push(...retrievalSpecs(set.retrieval));
  }
  if (!specs.length) throw new Error('the evaluation set has nothing to evaluate: it needs pairs of two groups, associations (true and false), labelled texts or retrieval queries');
  return specs;
}

/**
 * Every distinct text of the set with the role it is embedded in, queries first, each in first-seen
 * order: the first text of a pair (and a gene) is a query, the second (and a disease) a passage, as
 * in training; retrieval queries and corpus are queries and passages; single texts (association
 * sentences, labelled texts) are features, embedded as queries.
 */
export function evalTexts(set: EvalSet): RoleText[] {
  const texts: Record<TextRole, Set<string>> = { query: new Set(), passage: new Set() };
  for (const p of set.pairs ?? []) {
    texts.query.add(p.a);
    texts.passage.add(p.b);
  }
  for (const a of set.associations ?? []) {
    texts.query.add(a.gene);
    texts.passage.add(a.disease);
    texts[FEATURE_ROLE].add(a.sentence);
  }
  for (const t of set.labelled ?? []) texts[FEATURE_ROLE].add(t.text);
  for (const q of set.retrieval?.queries ?? []) texts.query.add(q.text);
  for (const c of set.retrieval?.corpus ?? []) texts.passage.add(c.text);
  return ROLES.flatMap((role) => [...texts[role]].map((text) => ({ text, role })));
}

async function embedAll(embedder: Embedder, items: RoleText[], batchSize: number, progress: (count: number) => void): Promise<Vectors> {
  const tables: Record<TextRole, Map<string, Float64Array>> = { query: new Map(), passage: new Map() };
  let width = -1;
  for (const role of ROLES) {
    const texts = items.filter((t) => t.role === role).map((t) => t.text);
    for (let start = 0; start < texts.length; start += batchSize) {
      const batch = texts.slice(start, start + batchSize);
      const vectors = await embedder(batch, role);
      if (vectors.length !== batch.length) throw new Error(`the embedder returned ${vectors.length} vectors for ${batch.length} texts`);
      batch.forEach((t, i) => {
        const v = vectors[i];
        if (width >= 0 && v.length !== width) throw new Error(`the embedder returned vectors of different lengths (${width} and ${v.length})`);
        width = v.length;
        if (!v.every(Number.isFinite)) throw new Error(`the embedder returned a non-finite value for "${t.slice(0, 60)}"`);
        tables[role].set(t, unit(v));
      });
      progress(batch.length);
    }
  }
  return (text, role) => tables[role].get(text)!;
}

/** Units in each class of a sample (one class when it has no strata). */
function classSizes(sample: Sample): number[] {
  if (!sample.strata) return [sample.units];
  const sizes = new Map<number, number>();
  for (let i = 0; i < sample.units; i++) sizes.set(sample.strata[i], (sizes.get(sample.strata[i]) ?? 0) + 1);
  return [...sizes.values()];
}

function smallSampleWarning(sizes: number[], unit: Unit): string | undefined {
  const smallest = Math.min(...sizes);
  if (smallest >= MIN_UNITS_PER_CLASS) return undefined;
  const count = `${smallest} ${smallest === 1 ? unit : PLURAL[unit]}`;
  const where = sizes.length > 1 ? `${count} in the smallest class, fewer than ${MIN_UNITS_PER_CLASS} a class` : `${count}, fewer than ${MIN_UNITS_PER_CLASS}`;
  const meaning = sizes.every((size) => size <= 1)
    ? 'every bootstrap resample is the sample itself, so there is no interval and the value is anecdotal'
    : 'the value is unstable and the interval narrower than the real uncertainty';
  return `only ${where}: ${meaning}`;
}

/**
 * One metric before and after: `before` and `after` on the same bootstrap resamples of `sample`
 * (paired), their change, and the small-sample warning. Also what measures other than embeddings
 * (a decoder's statement margins) report through, so every figure of an evaluation reads the same.
 */
export function compareMetric(metric: MeasuredOver, before: Statistic, after: Statistic, options: BootstrapOptions = {}): MetricComparison {
  const { key, sample } = metric;
  const intervals = bootstrapTogether(sample, [before, after, (idx) => after(idx) - before(idx)], options);
  const sizes = classSizes(sample);
  // One unit a class: every resample is the sample, so the "interval" would be the value itself.
  const [b, a, change] = sizes.every((size) => size <= 1) ? intervals.map((i) => ({ value: i.value, low: NaN, high: NaN })) : intervals;
  const warning = smallSampleWarning(sizes, metric.unit);
  return { key, n: sample.units, base: b, adapted: a, change, ...(warning ? { warning } : {}) };
}

/** A result from compared metrics and pair cosines, with the bootstrap settings they were taken with. */
export function beforeAfterResult(metrics: MetricComparison[], pairCosines: PairCosine[], options: BootstrapOptions = {}): BeforeAfterResult {
  return { metrics, pairCosines, resamples: options.resamples ?? 1000, level: options.level ?? 0.95, seed: options.seed ?? 0 };
}

export async function evaluateBeforeAfter(base: Embedder, adapted: Embedder, evalSet: EvalSet, options: BeforeAfterOptions = {}): Promise<BeforeAfterResult> {
  const specs = metricSpecs(evalSet, options);
  const texts = evalTexts(evalSet);
  const batchSize = options.batchSize ?? 64;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new Error(`batchSize must be a positive integer, got ${batchSize}`);
  let done = 0;
  const progress = (count: number) => options.onProgress?.((done += count), 2 * texts.length);
  const baseVectors = await embedAll(base, texts, batchSize, progress);
  const adaptedVectors = await embedAll(adapted, texts, batchSize, progress);
  const metrics = specs.map((spec) => compareMetric(spec, spec.statistic(baseVectors), spec.statistic(adaptedVectors), options));
  const pairCosines: PairCosine[] = [];
  for (const [model, vectors] of [['base', baseVectors], ['adapted', adaptedVectors]] as const) {
    const pairs = evalSet.pairs ?? [];
    cosines(vectors, pairs).forEach((cosine, i) => pairCosines.push({ model, set: 'cardiology', group: pairs[i].group, cosine }));
    const associations = evalSet.associations ?? [];
    cosines(vectors, associations.map((a) => ({ a: a.gene, b: a.disease }))).forEach((cosine, i) =>
      pairCosines.push({ model, set: 'gene–disease', group: associations[i].associated ? 'associated' : 'not associated', cosine }),
    );
  }
  return beforeAfterResult(metrics, pairCosines, options);
}
