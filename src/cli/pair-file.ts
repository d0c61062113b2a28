/** Read a whole pair file (CSV/TSV/JSONL, plain or gzip) from disk into training examples. */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { type LabelledRow, type PairLayout, type TripletRow, parsePairs } from '../data/pairs.ts';
import type { IngestSource } from '../data/source.ts';
import { openText } from '../data/source.ts';
import { BadRowLog } from '../data/text.ts';
import type { ContrastiveExample, LabelledPair } from '../train/objective.ts';
import { UsageError } from './errors.ts';

/** Labelled pairs keep the file's category column (similar / different / negation) for evaluation. */
export type GroupedPair = LabelledPair & { group?: string };

export type PairExamples = { layout: 'triplets'; examples: ContrastiveExample[] } | { layout: 'labelled'; examples: GroupedPair[] };

export async function readPairFile(path: string, stderr: { write(s: string): unknown } = process.stderr): Promise<PairExamples> {
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
  for await (const chunk of parsePairs(stream)) {
    layout ??= chunk.header.layout;
    for (const row of chunk.rows) {
      if (row.kind === 'triplet') triplets.push(tripletExample(row));
      else labelled.push(labelledExample(row));
    }
    badRows.add(chunk.bad);
  }
  for (const b of badRows.samples) stderr.write(`${path}:${b.line}: skipped: ${b.reason}\n`);
  if (badRows.count > badRows.samples.length) stderr.write(`${path}: ${badRows.count} rows skipped in all\n`);
  if (triplets.length + labelled.length === 0) throw new UsageError(`${path} has no usable rows.${badRows.describe()}`);
  return layout === 'labelled' ? { layout, examples: labelled } : { layout: 'triplets', examples: triplets };
}

function tripletExample(row: TripletRow): ContrastiveExample {
  return row.negatives.length > 0 ? { anchor: row.anchor, positive: row.positive, negatives: row.negatives } : { anchor: row.anchor, positive: row.positive };
}

function labelledExample(row: LabelledRow): GroupedPair {
  return { textA: row.textA, textB: row.textB, label: row.label, ...(row.group ? { group: row.group } : {}) };
}
