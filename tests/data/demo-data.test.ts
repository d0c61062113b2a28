// The bundled demo data sets (public/data): they parse cleanly and have the documented design.
import { describe, expect, it } from 'vitest';
import { buildCtdDataset } from '../../src/data/builder.ts';
import { parseCtd } from '../../src/data/ctd.ts';
import { GraphBuilder } from '../../src/data/graph.ts';
import { type LabelledRow, type TripletRow, parsePairs } from '../../src/data/pairs.ts';
import { collect, fileStream } from './streams.ts';

const DIR = new URL('../../public/data/', import.meta.url).pathname;

async function pairs(name: string) {
  const chunks = await collect(parsePairs(await fileStream(DIR + name)));
  return { header: chunks[0].header, rows: chunks.flatMap((c) => c.rows), bad: chunks.flatMap((c) => c.bad) };
}

describe('public/data demo sets', () => {
  it('cardiology-eval.csv: 50 similar, 50 different and 50 negation pairs', async () => {
    const { header, rows, bad } = await pairs('cardiology-eval.csv');
    expect(bad).toEqual([]);
    expect(header.layout).toBe('labelled');
    const eval_ = rows as LabelledRow[];
    const by = (g: string) => eval_.filter((r) => r.group === g);
    expect([by('similar').length, by('different').length, by('negation').length]).toEqual([50, 50, 50]);
    expect(by('similar').every((r) => r.label === 1)).toBe(true);
    expect([...by('different'), ...by('negation')].every((r) => r.label === 0)).toBe(true);
    expect(new Set(eval_.map((r) => `${r.textA}|${r.textB}`)).size).toBe(150);
    expect(eval_.filter((r) => r.textA === r.textB)).toEqual([]);
    // Each negation pair negates the first sentence and affirms the second.
    const negated = /\b(no|denies|ruled out)\b/i;
    expect(by('negation').filter((r) => !negated.test(r.textA) || negated.test(r.textB))).toEqual([]);
  });

  it('cardiology-train.jsonl: 240 CardioEmbed-layout pairs whose negative is another anchor of the same topic, none shared with the eval set', async () => {
    const { header, rows, bad } = await pairs('cardiology-train.jsonl');
    expect(bad).toEqual([]);
    expect(header).toEqual({ format: 'jsonl', layout: 'triplets' });
    const train = rows as TripletRow[];
    expect(train.length).toBe(240);
    const topicOf = new Map(train.map((r) => [r.anchor, (r.metadata as { topic: string }).topic]));
    expect(topicOf.size).toBe(240);
    for (const r of train) {
      expect(r.negatives).toHaveLength(1);
      expect(r.negatives[0]).not.toBe(r.anchor);
      expect(topicOf.get(r.negatives[0])).toBe((r.metadata as { topic: string }).topic);
    }
    const evalTexts = new Set(((await pairs('cardiology-eval.csv')).rows as LabelledRow[]).flatMap((r) => [r.textA, r.textB]));
    expect(train.flatMap((r) => [r.anchor, r.positive]).filter((t) => evalTexts.has(t))).toEqual([]);
  });

  it('mendelian-gene-disease.csv: CTD layout, parses with no bad rows, and builds', async () => {
    const graph = new GraphBuilder();
    let bad = 0;
    for await (const chunk of parseCtd(await fileStream(DIR + 'mendelian-gene-disease.csv'))) {
      bad += chunk.bad.length;
      for (const r of chunk.rows) graph.add(r.geneId, r.geneSymbol, r.diseaseId, r.diseaseName);
    }
    expect(bad).toBe(0);
    const g = graph.finish();
    expect(g.edgeGene.length).toBe(92);
    const symbols = new Map(g.genes.map((x) => [x.symbol, x.id]));
    expect(Object.fromEntries(['CFTR', 'HBB', 'FBN1', 'MYH7', 'KCNQ1'].map((s) => [s, symbols.get(s)]))).toEqual({
      CFTR: '1080',
      HBB: '3043',
      FBN1: '2200',
      MYH7: '4625',
      KCNQ1: '3784',
    });
    const build = buildCtdDataset(g, { seed: 1, negatives: 'hard', split: 'entity' });
    expect(build.stats.overlap).toEqual({ genes: 0, diseases: 0, pairs: 0 });
    expect(build.stats.test.positives).toBeGreaterThan(0);
  });
});
