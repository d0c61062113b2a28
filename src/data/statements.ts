/**
 * The CTD LLM study's statement dataset from a gene–disease graph: "{Gene} is associated with
 * {Disease}" for each curated association (true) and as many random gene–disease pairs that are no
 * known association (false), split at random 80/20 or entity-held-out. The encoder builder makes
 * exactly these examples (random negatives 1:1, its two split modes), so the statements are its
 * build read as labelled sentences: both model kinds are judged on the same splits.
 */
import { type BuildOptions, type CtdBuild, type CtdBuildStats, DEFAULT_TEMPLATE, type SplitMode, buildCtdDataset } from './builder.ts';
import { DatasetError } from './errors.ts';
import type { CtdGraph } from './graph.ts';
import type { BadRows } from './text.ts';

/** The study's share of associations in the held-out split. */
export const STATEMENT_TEST_FRACTION = 0.2;

export interface CtdStatement {
  statement: string;
  /** A curated association (true) or a random non-association (false). */
  label: boolean;
  gene: string;
  disease: string;
}

export interface CtdStatements {
  train: CtdStatement[];
  test: CtdStatement[];
  stats: CtdBuildStats;
}

/** The builder options of the study's statements under `split`. */
export function statementBuildOptions(split: SplitMode, seed: number): BuildOptions {
  return { seed, negatives: 'random', split, testFraction: STATEMENT_TEST_FRACTION, template: DEFAULT_TEMPLATE };
}

/** A CTD build's examples as labelled statements; a build without sentences (a pair build) is refused. */
export function statementsOfBuild(build: Pick<CtdBuild, 'train' | 'test'>): { train: CtdStatement[]; test: CtdStatement[] } {
  const read = (split: 'train' | 'test') =>
    build[split].map((x, i): CtdStatement => {
      if (x.sentence === undefined) throw new DatasetError(`${split} example ${i + 1} has no sentence: statements come from a CTD gene–disease build`);
      return { statement: x.sentence, label: x.label === 1, gene: x.textA, disease: x.textB };
    });
  const out = { train: read('train'), test: read('test') };
  for (const split of ['train', 'test'] as const) {
    if (out[split].length === 0) throw new DatasetError(`the ${split} split has no statements; the data has too few associations to split`);
  }
  return out;
}

export function buildCtdStatements(graph: CtdGraph, split: SplitMode, seed: number, badRows?: BadRows): CtdStatements {
  const build = buildCtdDataset(graph, statementBuildOptions(split, seed), badRows);
  return { ...statementsOfBuild(build), stats: build.stats };
}
