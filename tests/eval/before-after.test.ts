import { describe, expect, it } from 'vitest';
import { type BeforeAfterResult, MIN_UNITS_PER_CLASS, evalTexts, evaluateBeforeAfter } from '../../src/eval/before-after.ts';
import { evalPairsFromRows, labelledFromAssociations, retrievalFromPairs } from '../../src/eval/eval-set.ts';
import { beforeAfterCsv, formatBeforeAfterTable } from '../../src/eval/format.ts';
import { projectorTsv, toCsv } from '../../src/eval/export.ts';
import { METRIC_HELP } from '../../src/eval/help.ts';
import type { Embedder, EvalSet } from '../../src/eval/types.ts';

/** An embedder over a fixed table of 2-D unit vectors (angle in degrees per text). */
function tableEmbedder(angles: Record<string, number>): Embedder & { calls: number } {
  const embed = async (texts: string[]) => {
    embed.calls++;
    return texts.map((t) => {
      if (!(t in angles)) throw new Error(`no vector for ${t}`);
      const r = (angles[t] * Math.PI) / 180;
      return Float32Array.from([Math.cos(r), Math.sin(r)]);
    });
  };
  embed.calls = 0;
  return embed;
}

// Pairs at known angles: cos(0°)=1, cos(60°)=0.5, cos(90°)=0.
const set: EvalSet = {
  pairs: [
    { a: 's1', b: 's1p', group: 'similar' },
    { a: 's2', b: 's2p', group: 'similar' },
    { a: 'd1', b: 'd1p', group: 'different' },
    { a: 'd2', b: 'd2p', group: 'different' },
    { a: 'n1', b: 'n1p', group: 'negation' },
  ],
};
// Base: similar pairs 60° apart (cos .5), different 90° (cos 0), negation 0° (cos 1).
const base = tableEmbedder({ s1: 0, s1p: 60, s2: 10, s2p: 70, d1: 0, d1p: 90, d2: 20, d2p: 110, n1: 0, n1p: 0 });
// Adapted: similar 0° (cos 1), different 90°, negation 90° (cos 0).
const adapted = tableEmbedder({ s1: 0, s1p: 0, s2: 10, s2p: 10, d1: 0, d1p: 90, d2: 20, d2p: 110, n1: 0, n1p: 90 });

function metric(result: BeforeAfterResult, key: keyof typeof METRIC_HELP) {
  const m = result.metrics.find((x) => x.key === key);
  if (!m) throw new Error(`no ${key} in result`);
  return m;
}

describe('evaluateBeforeAfter', () => {
  it('computes every pair metric for both models with intervals and the paired change', async () => {
    const progress: number[] = [];
    const result = await evaluateBeforeAfter(base, adapted, set, { resamples: 200, seed: 1, batchSize: 4, onProgress: (done) => progress.push(done) });
    expect(progress.at(-1)).toBe(2 * evalTexts(set).length);
    const sep = metric(result, 'cardio_separation');
    expect(sep.n).toBe(4);
    expect(sep.base.value).toBeCloseTo(0.5, 6);
    expect(sep.adapted.value).toBeCloseTo(1, 6);
    expect(sep.change.value).toBeCloseTo(0.5, 6);
    // Every resample sees cos 0.5 / 1 for similar and 0 for different: a zero-width interval.
    expect(sep.base.low).toBeCloseTo(0.5, 6);
    expect(sep.base.high).toBeCloseTo(0.5, 6);
    expect(metric(result, 'negation_mean').base.value).toBeCloseTo(1, 6);
    expect(metric(result, 'negation_mean').change.value).toBeCloseTo(-1, 6);
    // Base: negation (1) above both similar (.5) → 0; adapted: negation (0) below similar (1) → 1.
    expect(metric(result, 'negation_below_similar').base.value).toBe(0);
    expect(metric(result, 'negation_below_similar').adapted.value).toBe(1);
    expect(metric(result, 'cardio_auroc').adapted.value).toBe(1);
    expect(metric(result, 'cardio_pair_accuracy').n).toBe(2);
    const negation = result.pairCosines.filter((p) => p.group === 'negation').map((p) => [p.model, +p.cosine.toFixed(6)]);
    expect(negation).toEqual([['base', 1], ['adapted', 0]]);
    expect(result.pairCosines.length).toBe(10);
    expect(result.metrics.map((m) => m.key)).toEqual([
      'cardio_separation',
      'cardio_similar_mean',
      'cardio_different_mean',
      'cardio_auroc',
      'cardio_pair_accuracy',
      'negation_mean',
      'negation_below_similar',
    ]);
  });

  it('covers KG associations, labelled texts and retrieval; identical models change by exactly 0', async () => {
    const angles: Record<string, number> = {};
    const kg: EvalSet = { associations: [], labelled: [], retrieval: { corpus: [], queries: [] } };
    for (let i = 0; i < 12; i++) {
      const associated = i % 2 === 0;
      angles[`g${i}`] = i * 7;
      angles[`d${i}`] = i * 7 + (associated ? 10 : 80);
      angles[`s${i}`] = associated ? i : 90 + i;
      kg.associations!.push({ gene: `g${i}`, disease: `d${i}`, sentence: `s${i}`, associated });
      kg.labelled!.push({ text: `s${i}`, label: associated ? 'true' : 'false' });
      kg.retrieval!.corpus.push({ id: `c${i}`, text: `d${i}` });
      kg.retrieval!.queries.push({ text: `g${i}`, relevant: [`c${i}`] });
    }
    const model = tableEmbedder(angles);
    const result = await evaluateBeforeAfter(model, model, kg, { resamples: 100, probeFolds: 3 });
    expect(metric(result, 'kg_separation').base.value).toBeCloseTo(Math.cos((10 * Math.PI) / 180) - Math.cos((80 * Math.PI) / 180), 6);
    expect(metric(result, 'kg_auroc').base.value).toBe(1);
    expect(metric(result, 'probe_accuracy').base.value).toBe(1);
    expect(metric(result, 'silhouette').base.value).toBeGreaterThan(0.5);
    expect(metric(result, 'kg_sentence_separation').base.value).toBeGreaterThan(0.5);
    expect(metric(result, 'mrr').n).toBe(12);
    for (const m of result.metrics) {
      expect(m.change.value, m.key).toBe(0);
      expect([m.change.low, m.change.high], m.key).toEqual([0, 0]);
    }
    // One call per role and model: genes and sentences are queries (24 texts), diseases passages.
    expect(model.calls).toBe(4);
  });

  it('embeds each text in its role: first texts, genes, queries and single texts as queries; second texts, diseases and the corpus as passages', async () => {
    const kg: EvalSet = {
      pairs: [
        { a: 'a1', b: 'b1', group: 'similar' },
        { a: 'a2', b: 'b2', group: 'different' },
      ],
      associations: [
        { gene: 'g1', disease: 'd1', sentence: 's1', associated: true },
        { gene: 'g2', disease: 'd2', sentence: 's2', associated: false },
      ],
      labelled: [
        { text: 'l1', label: 'x' },
        { text: 'l2', label: 'y' },
        { text: 'l3', label: 'x' },
        { text: 'l4', label: 'y' },
      ],
      retrieval: { corpus: [{ id: 'c', text: 'b1' }], queries: [{ text: 'a1', relevant: ['c'] }] },
    };
    expect(evalTexts(kg)).toEqual([
      ...['a1', 'a2', 'g1', 's1', 'g2', 's2', 'l1', 'l2', 'l3', 'l4'].map((text) => ({ text, role: 'query' })),
      ...['b1', 'b2', 'd1', 'd2'].map((text) => ({ text, role: 'passage' })),
    ]);
    // A prompt-like embedder: a passage is turned by 90°, so a pair's cosine shows which roles met.
    const seen: string[] = [];
    const roleEmbedder: Embedder = async (texts, role) => {
      seen.push(...texts.map((t) => `${role}:${t}`));
      return texts.map(() => Float32Array.from(role === 'query' ? [1, 0] : [0, 1]));
    };
    const result = await evaluateBeforeAfter(roleEmbedder, roleEmbedder, kg, { resamples: 10, probeFolds: 2 });
    expect(result.pairCosines.every((p) => p.cosine === 0)).toBe(true);
    expect([...new Set(seen)].sort()).toEqual(evalTexts(kg).map((t) => `${t.role}:${t.text}`).sort());
  });

  it('rejects bad input with clear messages', async () => {
    await expect(evaluateBeforeAfter(base, adapted, {})).rejects.toThrow(/nothing to evaluate/);
    await expect(evaluateBeforeAfter(base, adapted, { pairs: [{ a: 's1', b: '', group: 'similar' }] })).rejects.toThrow(/pair 0: text must be a non-empty string/);
    await expect(evaluateBeforeAfter(base, adapted, { pairs: [{ a: 's1', b: 's2', group: 'same' as 'similar' }] })).rejects.toThrow(/group must be similar, different or negation/);
    const short: Embedder = async (texts) => texts.slice(1).map(() => new Float32Array(2));
    await expect(evaluateBeforeAfter(short, adapted, set)).rejects.toThrow(/returned 4 vectors for 5 texts/);
    await expect(evaluateBeforeAfter(base, adapted, { retrieval: { corpus: [{ id: 'a', text: 's1' }], queries: [{ text: 's2', relevant: ['b'] }] } })).rejects.toThrow(
      /names relevant id "b", which is not in the corpus/,
    );
  });
});

describe('small samples', () => {
  it('two pairs: AUROC is reported without an interval, with a warning, in the result, the table and the CSV', async () => {
    const two: EvalSet = { pairs: [{ a: 's1', b: 's1p', group: 'similar' }, { a: 'd1', b: 'd1p', group: 'different' }] };
    // The different pair is closer than the similar one: AUROC 0 for both models.
    const model = tableEmbedder({ s1: 0, s1p: 80, d1: 0, d1p: 10 });
    const result = await evaluateBeforeAfter(model, model, two, { resamples: 50 });
    const auc = metric(result, 'cardio_auroc');
    expect(auc.base).toEqual({ value: 0, low: NaN, high: NaN });
    expect(auc.change).toEqual({ value: 0, low: NaN, high: NaN });
    expect(auc.warning).toBe('only 1 pair in the smallest class, fewer than 10 a class: every bootstrap resample is the sample itself, so there is no interval and the value is anecdotal');
    expect(result.metrics.every((m) => m.warning)).toBe(true);
    const table = formatBeforeAfterTable(result).split('\n');
    expect(table.find((l) => l.startsWith('Cardiology AUROC *'))).toMatch(/\s0\.000 \[no interval\]\s+0\.000 \[no interval\]\s+\+0\.000 \[no interval\]$/);
    expect(table).toContain(`* Cardiology AUROC: ${auc.warning}.`);
    expect(beforeAfterCsv(result)).toContain(auc.warning);
    expect(JSON.parse(JSON.stringify(result)).metrics.find((m: { key: string }) => m.key === 'cardio_auroc').warning).toBe(auc.warning);
  });

  it(`warns below ${MIN_UNITS_PER_CLASS} a class (and below ${MIN_UNITS_PER_CLASS} queries), not at it`, async () => {
    const pairsOf = (similar: number, different: number) => {
      const angles: Record<string, number> = {};
      const set: EvalSet = { pairs: [] };
      for (let i = 0; i < similar + different; i++) {
        const isSimilar = i < similar;
        angles[`a${i}`] = i;
        angles[`b${i}`] = i + (isSimilar ? 5 + (i % 3) : 70 + (i % 5));
        set.pairs!.push({ a: `a${i}`, b: `b${i}`, group: isSimilar ? 'similar' : 'different' });
      }
      return evaluateBeforeAfter(tableEmbedder(angles), tableEmbedder(angles), set, { resamples: 50 });
    };
    const enough = await pairsOf(10, 12);
    expect(metric(enough, 'cardio_auroc').warning).toBeUndefined();
    const rows = formatBeforeAfterTable(enough).split('\n');
    expect(rows.filter((l) => l.startsWith('Cardiology AUROC'))).toEqual([expect.not.stringContaining('*')]);
    // Pair accuracy is scored on the test half only: 5 a class.
    expect(metric(enough, 'cardio_pair_accuracy').warning).toMatch(/^only 5 pairs in the smallest class/);
    const few = await pairsOf(12, 9);
    const auc = metric(few, 'cardio_auroc');
    expect(auc.warning).toBe('only 9 pairs in the smallest class, fewer than 10 a class: the value is unstable and the interval narrower than the real uncertainty');
    expect(Number.isFinite(auc.base.low)).toBe(true);
    const retrieval: EvalSet = { retrieval: { corpus: [{ id: 'c', text: 'b0' }], queries: [0, 1, 2].map((i) => ({ text: `a${i}`, relevant: ['c'] })) } };
    const angles = { a0: 0, a1: 1, a2: 2, b0: 3 };
    const r = await evaluateBeforeAfter(tableEmbedder(angles), tableEmbedder(angles), retrieval, { resamples: 20 });
    expect(metric(r, 'mrr').warning).toBe('only 3 queries, fewer than 10: the value is unstable and the interval narrower than the real uncertainty');
  });
});

describe('reports and exports', () => {
  const result: BeforeAfterResult = {
    resamples: 1000,
    level: 0.95,
    seed: 7,
    pairCosines: [],
    metrics: [{ key: 'cardio_separation', n: 100, base: { value: 0.1234, low: 0.1, high: 0.15 }, adapted: { value: 0.3, low: 0.25, high: 0.35 }, change: { value: 0.1766, low: 0.12, high: 0.2 } }],
  };

  it('formats the before/after table', () => {
    const lines = formatBeforeAfterTable(result).split('\n');
    expect(lines[0]).toMatch(/^Metric\s+n\s+Base \[95% CI\]\s+Adapted \[95% CI\]\s+Change \[95% CI\]$/);
    expect(lines[2]).toMatch(/^Cardiology separation\s+100\s+0\.123 \[0\.100, 0\.150\]\s+0\.300 \[0\.250, 0\.350\]\s+\+0\.177 \[\+0\.120, \+0\.200\]$/);
    expect(lines[3]).toBe('Intervals: 95% percentile bootstrap, 1000 paired resamples, seed 7.');
  });

  it('writes CSV with quoting and formula-safe text', () => {
    const csv = beforeAfterCsv(result);
    expect(csv.split('\r\n')[1]).toMatch(/^cardio_separation,Cardiology separation,100,0\.1234,0\.1,0\.15,0\.3,/);
    expect(toCsv([{ a: 'x, "y"', b: '=HYPERLINK()', c: -1.5, d: NaN }])).toBe('a,b,c,d\r\n"x, ""y""",\'=HYPERLINK(),-1.5,\r\n');
  });

  it('writes TensorBoard Projector TSV files', () => {
    const single = projectorTsv([[1, 2.5], [-3, 0]], [{ text: 'a\tb' }, { text: 'line\nbreak' }]);
    expect(single.vectors).toBe('1\t2.5\n-3\t0\n');
    expect(single.metadata).toBe('a b\nline break\n');
    const multi = projectorTsv([[1], [2]], [{ text: 'x', label: 'A' }, { text: 'y', label: 'B' }]);
    expect(multi.metadata).toBe('text\tlabel\nx\tA\ny\tB\n');
    expect(() => projectorTsv([[1]], [])).toThrow(/1 vectors but 0 metadata rows/);
  });
});

describe('building evaluation sets', () => {
  it('turns labelled rows into pairs, by group column or by label', () => {
    const pairs = evalPairsFromRows([
      { textA: 'a', textB: 'b', label: 1, group: 'Negation', line: 2 },
      { textA: 'c', textB: 'd', label: 1 },
      { textA: 'e', textB: 'f', label: 0 },
    ]);
    expect(pairs.map((p) => p.group)).toEqual(['negation', 'similar', 'different']);
    expect(() => evalPairsFromRows([{ textA: 'a', textB: 'b', label: 1, group: 'same', line: 9 }])).toThrow(/line 9: group "same" is not similar, different or negation/);
    expect(() => evalPairsFromRows([{ textA: 'a', textB: 'b', label: 0.5 }])).toThrow(/row 0: label 0.5 is neither 1/);
  });

  it('derives retrieval queries from similar pairs and labelled texts from associations', () => {
    const retrieval = retrievalFromPairs([
      { a: 'q1', b: 'x', group: 'similar' },
      { a: 'q2', b: 'x', group: 'similar' },
      { a: 'q3', b: 'y', group: 'different' },
    ]);
    expect(retrieval).toEqual({ corpus: [{ id: 'c0', text: 'x' }], queries: [{ text: 'q1', relevant: ['c0'] }, { text: 'q2', relevant: ['c0'] }] });
    expect(labelledFromAssociations([{ gene: 'g', disease: 'd', sentence: 's', associated: false }])).toEqual([{ text: 's', label: 'not associated' }]);
  });
});
