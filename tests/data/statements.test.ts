/**
 * The CTD study's statements from the bundled Mendelian set (CTD layout): curated associations true,
 * as many random non-associations false in each split, the template's sentence, the random 80/20
 * and entity-held-out splits of the encoder builder, the same statements for the same seed.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_TEMPLATE, fillTemplate } from '../../src/data/builder.ts';
import { parseCtd } from '../../src/data/ctd.ts';
import { type CtdGraph, GraphBuilder } from '../../src/data/graph.ts';
import { type CtdStatement, buildCtdStatements, statementsOfBuild } from '../../src/data/statements.ts';
import { fileStream } from './streams.ts';

let graph: CtdGraph;
let curated: Set<string>;
beforeAll(async () => {
  const builder = new GraphBuilder();
  for await (const chunk of parseCtd(await fileStream('public/data/mendelian-gene-disease.csv'))) {
    for (const r of chunk.rows) builder.add(r.geneId, r.geneSymbol, r.diseaseId, r.diseaseName);
  }
  graph = builder.finish();
  curated = new Set(Array.from(graph.edgeGene, (g, e) => `${graph.genes[g].symbol}|${graph.diseases[graph.edgeDisease[e]].name}`));
});

const key = (s: CtdStatement) => `${s.gene}|${s.disease}`;

function checkStatements(split: CtdStatement[]) {
  expect(split.filter((s) => s.label).length).toBe(split.filter((s) => !s.label).length);
  for (const s of split) {
    expect(curated.has(key(s)), key(s)).toBe(s.label);
    expect(s.statement).toBe(fillTemplate(DEFAULT_TEMPLATE, { id: '', symbol: s.gene }, { id: '', name: s.disease }));
  }
}

describe('buildCtdStatements', () => {
  it('random 80/20: every curated association once, true, beside as many random false pairs', () => {
    const { train, test, stats } = buildCtdStatements(graph, 'random', 5);
    checkStatements(train);
    checkStatements(test);
    const trueKeys = [...train, ...test].filter((s) => s.label).map(key);
    expect(new Set(trueKeys)).toEqual(curated);
    expect(trueKeys.length).toBe(curated.size);
    expect(test.filter((s) => s.label).length).toBe(Math.round(curated.size * 0.2));
    expect(stats).toMatchObject({ negatives: 'random', split: 'random', testFraction: 0.2, template: DEFAULT_TEMPLATE });
    expect(buildCtdStatements(graph, 'random', 5).test).toEqual(test);
    expect(buildCtdStatements(graph, 'random', 6).test).not.toEqual(test);
  });

  it('entity-held-out: no gene and no disease of the held-out statements is in training', () => {
    const { train, test, stats } = buildCtdStatements(graph, 'entity', 5);
    checkStatements(train);
    checkStatements(test);
    expect(test.length).toBeGreaterThan(0);
    const trainGenes = new Set(train.map((s) => s.gene));
    const trainDiseases = new Set(train.map((s) => s.disease));
    expect(test.filter((s) => trainGenes.has(s.gene) || trainDiseases.has(s.disease))).toEqual([]);
    expect(train.filter((s) => s.label).length + test.filter((s) => s.label).length + stats.droppedStraddling).toBe(curated.size);
  });

  it('refuses examples without sentences and an empty split', () => {
    const pair = { textA: 'a', textB: 'b', label: 1, negatives: [] };
    expect(() => statementsOfBuild({ train: [pair], test: [] })).toThrow('train example 1 has no sentence: statements come from a CTD gene–disease build');
    const sentence = { ...pair, sentence: 'a is associated with b' };
    expect(() => statementsOfBuild({ train: [sentence], test: [] })).toThrow('the test split has no statements');
  });
});
