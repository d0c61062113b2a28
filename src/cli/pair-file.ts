/** Read a whole pair file (CSV/TSV/JSONL, plain or gzip) from disk into training examples. */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { type LabelScheme, type LabelledRow, type PairLayout, type PairOptions, type TripletRow, parsePairs } from '../data/pairs.ts';
import type { IngestSource } from '../data/source.ts';
import { openText } from '../data/source.ts';
import { BadRowLog } from '../data/text.ts';
import type { ContrastiveExample, LabelledPair } from '../train/objective.ts';
import { numberOption } from './args.ts';
import { UsageError } from './errors.ts';

/** The options of every command that reads a pair file: how its labels read. */
export const PAIR_OPTIONS = { labels: { type: 'string' }, 'score-scale': { type: 'string' } } as const;

export const PAIR_USAGE = `  --score-scale S       labelled pairs scored from 0 to S (e.g. 5 for STS-B): scores are divided by S
                        (default 1); a score outside [0, S] is a bad row
  --labels nli|score    numeric labels as NLI classes (0 entailment = similar, 2 contradiction =
                        different, 1 neutral left out) or as scores; default nli for premise/hypothesis
                        columns (sentence-transformers' all-nli pair-class), else score`;

export function pairOptionsOf(values: Record<string, unknown>): Omit<PairOptions, 'skipBeforeLine'> {
  const labels = values.labels as string | undefined;
  if (labels !== undefined && labels !== 'nli' && labels !== 'score') throw new UsageError(`--labels must be nli or score, got ${labels}`);
  if (labels === 'nli' && values['score-scale'] !== undefined) throw new UsageError('--score-scale applies to scores, not to --labels nli');
  const scoreScale = values['score-scale'] === undefined ? undefined : numberOption(values, 'score-scale', 1, (n) => Number.isFinite(n) && n > 0);
  return { ...(labels !== undefined ? { labels: labels as LabelScheme } : {}), ...(scoreScale !== undefined ? { scoreScale } : {}) };
}

/** Labelled pairs keep the file's category column (similar / different / negation) for evaluation. */
export type GroupedPair = LabelledPair & { group?: string };

export type PairExamples = { layout: 'triplets'; examples: ContrastiveExample[] } | { layout: 'labelled'; examples: GroupedPair[] };

export async function readPairFile(path: string, options: Omit<PairOptions, 'skipBeforeLine'> = {}, stderr: { write(s: string): unknown } = process.stderr): Promise<PairExamples> {
  const info = await stat(path).catch(() => {
    throw new UsageError(`cannot read --data ${path}: no such file`);
  });
  const source: IngestSource = {
    name: path,
    size: info.size,
    lastModified: info.mtimeMs,
    open: async () => Readable.toWeb(createReadStream(path)) as ReadableStream<Uint8Array>,
  };
  const { stream } = await openText(source);
  const triplets: ContrastiveExample[] = [];
  const labelled: GroupedPair[] = [];
  let layout: PairLayout | null = null;
  const badRows = new BadRowLog(5);
  let neutral = 0;
  for await (const chunk of parsePairs(stream, options)) {
    layout ??= chunk.header.layout;
    neutral += chunk.skipped;
    for (const row of chunk.rows) {
      if (row.kind === 'triplet') triplets.push(tripletExample(row));
      else labelled.push(labelledExample(row));
    }
    badRows.add(chunk.bad);
  }
  for (const b of badRows.samples) stderr.write(`${path}:${b.line}: skipped: ${b.reason}\n`);
  if (badRows.count > badRows.samples.length) stderr.write(`${path}: ${badRows.count} rows skipped in all\n`);
  if (neutral > 0) stderr.write(`${path}: ${neutral} neutral NLI pairs left out (neither similar nor different)\n`);
  if (triplets.length + labelled.length === 0) throw new UsageError(`${path} has no usable rows.${badRows.describe()}`);
  return layout === 'labelled' ? { layout, examples: labelled } : { layout: 'triplets', examples: triplets };
}

function tripletExample(row: TripletRow): ContrastiveExample {
  return row.negatives.length > 0 ? { anchor: row.anchor, positive: row.positive, negatives: row.negatives } : { anchor: row.anchor, positive: row.positive };
}

function labelledExample(row: LabelledRow): GroupedPair {
  return { textA: row.textA, textB: row.textB, label: row.label, ...(row.group ? { group: row.group } : {}) };
}
