import { beforeAll, describe, expect, it } from 'vitest';
import { type CtdBuild, DEFAULT_TEMPLATE, buildCtdDataset, buildPairDataset, checkTemplate } from '../../src/data/builder.ts';
import { parseCtd } from '../../src/data/ctd.ts';
import { type CtdGraph, GraphBuilder } from '../../src/data/graph.ts';
import type { PairRow } from '../../src/data/pairs.ts';
import { normaliseText } from '../../src/data/text-groups.ts';
import { CTD_CURATED, fileStream } from './streams.ts';

let graph: CtdGraph;
beforeAll(async () => {
  const builder = new GraphBuilder();
  for await (const chunk of parseCtd(await fileStream(CTD_CURATED))) {
    for (const r of chunk.rows) builder.add(r.geneId, r.geneSymbol, r.diseaseId, r.diseaseName);
  }
  graph = builder.finish();
});

/** Every claim the stats make, recomputed from the examples themselves. */
function checkAgainstExamples(build: CtdBuild) {
  const known = new Set<string>();
  for (let e = 0; e < graph.edgeGene.length; e++) known.add(`${graph.genes[graph.edgeGene[e]].id}|${graph.diseases[graph.edgeDisease[e]].id}`);
  const seen = new Set<string>();
  let mislabelled = 0;
  let repeated = 0;
  for (const split of ['train', 'test'] as const) {
    const xs = build[split];
    expect(xs.filter((x) => x.label === 1).length).toBe(build.stats[split].positives);
    expect(xs.filter((x) => x.label === 0).length).toBe(build.stats[split].negatives);
    expect(build.stats[split].positives).toBe(build.stats[split].negatives);
    for (const x of xs) {
      const key = `${x.geneId}|${x.diseaseId}`;
      if (known.has(key) !== (x.label === 1)) mislabelled++; // negatives are never known associations
      if (seen.has(key)) repeated++; // no pair twice, within or across splits
      seen.add(key);
    }
  }
  expect({ mislabelled, repeated }).toEqual({ mislabelled: 0, repeated: 0 });
}

describe('buildCtdDataset on the real curated CTD file', () => {
  it('random split, random negatives: 34,222 positives, 68,444 balanced rows, 9,111 genes, 5,858 diseases', () => {
    const build = buildCtdDataset(graph, { seed: 42, negatives: 'random', split: 'random' });
    const s = build.stats;
    expect(s.positives).toBe(34_222);
    expect(s.uniqueGenes).toBe(9_111);
    expect(s.uniqueDiseases).toBe(5_858);
    expect(s.rows).toBe(68_444);
    expect(s.train.positives + s.test.positives).toBe(34_222);
    expect(s.test.positives).toBe(Math.round(34_222 * 0.2));
    expect(s.droppedStraddling).toBe(0);
    expect(s.overlap.pairs).toBe(0);
    // CTD names "Maturity-Onset Diabetes of the Young, Type 1" under a MESH and an OMIM id.
    expect(s.sameText).toEqual({ genes: 0, diseases: 1 });
    checkAgainstExamples(build);
    const x = build.train.find((e) => e.label === 1)!;
    expect(x.sentence).toBe(`${x.textA} is associated with ${x.textB}`);
  });

  it('entity-held-out split: zero gene, disease and pair overlap; straddling associations dropped and counted', () => {
    for (const negatives of ['random', 'hard'] as const) {
      const build = buildCtdDataset(graph, { seed: 7, negatives, split: 'entity' });
      const s = build.stats;
      expect(s.overlap).toEqual({ genes: 0, diseases: 0, pairs: 0 });
      expect(s.train.positives + s.test.positives + s.droppedStraddling).toBe(34_222);
      // Test holds about the requested fifth of the kept associations, and few are lost.
      expect(s.test.positives / (s.train.positives + s.test.positives)).toBeGreaterThan(0.19);
      expect(s.test.positives / (s.train.positives + s.test.positives)).toBeLessThan(0.22);
      expect(s.droppedStraddling / 34_222).toBeLessThan(0.25);
      checkAgainstExamples(build);
      // Check the claim from the examples too, not only the stats.
      const trainGenes = new Set(build.train.map((x) => x.geneId));
      const trainDiseases = new Set(build.train.map((x) => x.diseaseId));
      expect(build.test.filter((x) => trainGenes.has(x.geneId) || trainDiseases.has(x.diseaseId))).toEqual([]);
    }
  });

  it('hard negatives keep the gene, reach a disease through a shared gene, and are offered as the positive\'s negative', () => {
    const build = buildCtdDataset(graph, { seed: 3, negatives: 'hard', split: 'random' });
    checkAgainstExamples(build);
    expect(build.stats.hardNegativeFallbacks / 34_222).toBeLessThan(0.1);
    const byGene = new Map<string, Set<string>>();
    for (let e = 0; e < graph.edgeGene.length; e++) {
      const g = graph.genes[graph.edgeGene[e]].id;
      if (!byGene.has(g)) byGene.set(g, new Set());
      byGene.get(g)!.add(graph.diseases[graph.edgeDisease[e]].id);
    }
    // Gene frequency in negatives equals that in positives.
    const count = (label: number) => {
      const m = new Map<string, number>();
      for (const x of [...build.train, ...build.test]) if (x.label === label) m.set(x.geneId!, (m.get(x.geneId!) ?? 0) + 1);
      return m;
    };
    expect(count(0)).toEqual(count(1));
    const positives = build.train.filter((x) => x.label === 1);
    expect(positives.every((x) => x.negatives.length === 1)).toBe(true);
    const negDiseaseNames = new Set(build.train.filter((x) => x.label === 0).map((x) => x.textB));
    expect(positives.every((x) => negDiseaseNames.has(x.negatives[0]))).toBe(true);
  });

  it('is reproducible: same seed → same fingerprint and examples; another seed → another dataset', () => {
    const a = buildCtdDataset(graph, { seed: 11, negatives: 'hard', split: 'entity' });
    const b = buildCtdDataset(graph, { seed: 11, negatives: 'hard', split: 'entity' });
    const c = buildCtdDataset(graph, { seed: 12, negatives: 'hard', split: 'entity' });
    expect(b.stats).toEqual(a.stats);
    expect(b.test.slice(0, 50)).toEqual(a.test.slice(0, 50));
    expect(c.stats.fingerprint).not.toBe(a.stats.fingerprint);
    // The negative mode does not move the split.
    const r = buildCtdDataset(graph, { seed: 11, negatives: 'random', split: 'entity' });
    expect(r.stats.test.positives).toBe(a.stats.test.positives);
  });

  it('fills an edited template and refuses a broken one', () => {
    const build = buildCtdDataset(graph, { seed: 1, negatives: 'random', split: 'random', template: 'Gene {GeneSymbol} ({GeneID}) and {DiseaseName} [{DiseaseID}]' });
    const x = build.test[0];
    expect(x.sentence).toBe(`Gene ${x.textA} (${x.geneId}) and ${x.textB} [${x.diseaseId}]`);
    expect(() => checkTemplate('{Gene} causes {DiseaseName}')).toThrow(/Unknown placeholder \{Gene\}/);
    expect(() => checkTemplate('{GeneSymbol} alone')).toThrow(/disease placeholder/);
    expect(() => checkTemplate(DEFAULT_TEMPLATE)).not.toThrow();
  });
});

describe('buildPairDataset', () => {
  it('splits pair rows 80/20 reproducibly and keeps negatives and categories', () => {
    const rows: PairRow[] = Array.from({ length: 101 }, (_, i) => ({ kind: 'triplet', line: i + 1, anchor: `a${i}`, positive: `p${i}`, negatives: [`n${i}`] }));
    const a = buildPairDataset(rows, 'triplets', { seed: 5 });
    expect(a.stats.test.rows).toBe(20);
    expect(a.stats.train.rows).toBe(81);
    expect(new Set([...a.train, ...a.test].map((x) => x.textA)).size).toBe(101);
    expect(a.train[0].negatives).toEqual([`n${a.train[0].textA.slice(1)}`]);
    expect(buildPairDataset(rows, 'triplets', { seed: 5 }).stats.fingerprint).toBe(a.stats.fingerprint);
    expect(buildPairDataset(rows, 'triplets', { seed: 6 }).stats.fingerprint).not.toBe(a.stats.fingerprint);
  });
});

/** Every normalised first or second text of a split. */
const textsOf = (xs: { textA: string; textB: string }[]) => new Set(xs.flatMap((x) => [normaliseText(x.textA), normaliseText(x.textB)]));

describe('splits keep rows with the same text on one side', () => {
  const labelled = (textA: string, textB: string, label = 1): PairRow => ({ kind: 'labelled', line: 0, textA, textB, label });

  it('pairs: exact duplicates removed, rows sharing a normalised text on either side grouped, no test text in train', () => {
    const rows: PairRow[] = [
      ...Array.from({ length: 5 }, () => labelled('Atrial fibrillation', 'AF')), // 4 exact repeats
      labelled('atrial  FIBRILLATION ', 'irregular rhythm'), // the same anchor, normalised
      labelled('irregular rhythm', 'arrhythmia', 0), // shares a text as its first text
      labelled('Mitral stenosis', 'MS'),
      labelled('MS', 'narrowed mitral valve'),
      ...Array.from({ length: 40 }, (_, i) => labelled(`anchor ${i}`, `positive ${i}`, i % 2)),
    ];
    for (let seed = 0; seed < 30; seed++) {
      const b = buildPairDataset(rows, 'labelled', { seed });
      expect(b.stats).toMatchObject({ rows: 45, duplicatesRemoved: 4, groups: 42, largestGroup: 3 });
      expect(b.train.length + b.test.length).toBe(45);
      expect(b.test.length).toBe(9);
      const train = textsOf(b.train);
      expect([...textsOf(b.test)].filter((t) => train.has(t))).toEqual([]);
    }
  });

  it('pairs: a group larger than the test share goes to train; a file that is one group cannot be split', () => {
    const rows: PairRow[] = [...Array.from({ length: 8 }, (_, i) => labelled('hub', `leaf ${i}`)), labelled('x', 'y'), labelled('z', 'w')];
    for (let seed = 0; seed < 10; seed++) {
      const b = buildPairDataset(rows, 'labelled', { seed });
      expect(b.stats).toMatchObject({ groups: 3, largestGroup: 8 });
      expect(b.test.map((x) => x.textA).every((t) => t !== 'hub')).toBe(true);
      expect(b.test.length).toBe(2);
    }
    // No group fits in a test share of 1 row: the smallest group goes to test.
    const big = [...Array.from({ length: 4 }, (_, i) => labelled('p', `q${i}`)), ...Array.from({ length: 3 }, (_, i) => labelled('r', `s${i}`))];
    expect(buildPairDataset(big, 'labelled', { seed: 1, testFraction: 0.1 }).test.map((x) => x.textA)).toEqual(['r', 'r', 'r']);
    expect(() => buildPairDataset(rows.slice(0, 8), 'labelled', { seed: 1 })).toThrow(/cannot be split: they are linked into one group by shared texts/);
    expect(() => buildPairDataset([labelled('a', 'b'), labelled('a', 'b')], 'labelled', { seed: 1 })).toThrow(/has 1 after removing 1 exact duplicate/);
  });

  it('CTD: two ids with one name (MESH and OMIM) are one disease for the split and the negatives', () => {
    const g = new GraphBuilder();
    for (let i = 0; i < 30; i++) {
      g.add(String(100 + i), `G${i}`, `MESH:D${i}`, `Disease ${i}`);
      g.add(String(100 + i), `G${i}`, `MESH:D${(i + 1) % 30}`, `Disease ${(i + 1) % 30}`);
    }
    g.add('100', 'G0', 'OMIM:1', 'disease  0'); // "Disease 0" again under another id
    g.add('101', 'G1', 'OMIM:1', 'disease  0');
    const twins = g.finish();
    for (const split of ['random', 'entity'] as const) {
      for (let seed = 0; seed < 20; seed++) {
        const b = buildCtdDataset(twins, { seed, negatives: 'random', split });
        expect(b.stats.sameText).toEqual({ genes: 0, diseases: 1 });
        const pair = (x: { textA: string; textB: string }) => `${normaliseText(x.textA)}|${normaliseText(x.textB)}`;
        const positives = new Set([...b.train, ...b.test].filter((x) => x.label === 1).map(pair));
        expect([...b.train, ...b.test].filter((x) => x.label === 0 && positives.has(pair(x)))).toEqual([]);
        const trainPairs = new Set(b.train.map(pair));
        expect(b.test.filter((x) => trainPairs.has(pair(x)))).toEqual([]);
        if (split === 'entity') {
          const trainDiseases = new Set(b.train.map((x) => normaliseText(x.textB)));
          expect(b.test.filter((x) => trainDiseases.has(normaliseText(x.textB)))).toEqual([]);
        }
      }
    }
  });
});
