/**
 * `qlora-lab dataset`: build a seeded train/test dataset from a CTD gene–disease file (or split a
 * pair file) with the same parser and builder the app uses, and write train.jsonl, test.jsonl and
 * stats.json.
 */
import { openAsBlob } from 'node:fs';
import { basename } from 'node:path';
import { type Example, type NegativeMode, type SplitMode, buildCtdDataset, buildPairDataset, checkTemplate, DEFAULT_TEMPLATE, groupingNotes } from '../../data/builder.ts';
import { CTD_CITATION } from '../../data/citation.ts';
import { parseCtd } from '../../data/ctd.ts';
import { GraphBuilder } from '../../data/graph.ts';
import { type PairHeader, type PairLayout, type PairRow, parsePairs } from '../../data/pairs.ts';
import { blobSource, openText } from '../../data/source.ts';
import { type BadRows, BadRowLog } from '../../data/text.ts';
import { numberOption, parseOptions } from '../args.ts';
import { UsageError } from '../errors.ts';
import { checkOutputPath, writeOutputDir } from '../output.ts';
import { PAIR_OPTIONS, PAIR_USAGE, pairOptionsOf } from '../pair-file.ts';

export const summary = 'build a seeded train/test dataset from a CTD gene–disease file (or split a pair file)';

const USAGE = `usage: qlora-lab dataset (--ctd <file> | --pairs <file>) --out <dir> [options]

  --ctd <file>          CTD_curated_genes_diseases or CTD_genes_diseases (.csv/.tsv, plain or .gz)
  --pairs <file>        a pair file (CSV/TSV/JSONL: anchor/positive[/negatives] or text_a/text_b/label)
  --out <dir>           writes train.jsonl, test.jsonl and stats.json
  --seed N              default 42
  --test-fraction F     share of (kept) pairs in test, default 0.2
 CTD only:
  --negatives random|hard   default random (1:1); hard = a disease sharing a gene with the true one
  --split random|entity     default random; entity = no gene or disease of test appears in train
  --template T              default "${DEFAULT_TEMPLATE}"
                            ({GeneSymbol} {GeneID} {DiseaseName} {DiseaseID})
  --keep-inferred           keep inferred rows (default: DirectEvidence rows only)
  --min-score X             with --keep-inferred: minimum InferenceScore
 pair files only:
${PAIR_USAGE}`;

async function open(path: string) {
  let blob: Blob;
  try {
    blob = await openAsBlob(path);
  } catch (e) {
    throw new UsageError(`cannot read ${path}: ${(e as Error).message}`);
  }
  return (await openText(blobSource(blob, basename(path)))).stream;
}

function reportBad({ count, samples }: BadRows): void {
  if (count === 0) return;
  console.error(`${count} bad row(s) skipped; the first ones:`);
  for (const b of samples) console.error(`  line ${b.line}: ${b.reason}: ${b.text}`);
}

function choice<T extends string>(values: Record<string, unknown>, name: string, allowed: readonly T[], fallback: T): T {
  const v = values[name];
  if (v === undefined) return fallback;
  if (!allowed.includes(v as T)) throw new UsageError(`--${name} must be ${allowed.join(' or ')}, got ${String(v)}`);
  return v as T;
}

function jsonl(lines: object[]): string {
  return lines.map((l) => JSON.stringify(l)).join('\n') + (lines.length ? '\n' : '');
}

/** CTD examples as labelled pairs (text_a = gene, text_b = disease) plus the sentence and ids. */
function ctdLine(x: Example): object {
  return { text_a: x.textA, text_b: x.textB, label: x.label, sentence: x.sentence, gene_id: x.geneId, disease_id: x.diseaseId, negatives: x.negatives };
}

function pairLine(layout: PairLayout, x: Example): object {
  return layout === 'triplets'
    ? { anchor: x.textA, positive: x.textB, negatives: x.negatives }
    : { text_a: x.textA, text_b: x.textB, label: x.label, ...(x.group !== undefined ? { category: x.group } : {}) };
}

export async function run(args: string[]): Promise<void> {
  const { values } = parseOptions(
    args,
    {
      ctd: { type: 'string' },
      pairs: { type: 'string' },
      out: { type: 'string' },
      seed: { type: 'string' },
      'test-fraction': { type: 'string' },
      negatives: { type: 'string' },
      split: { type: 'string' },
      template: { type: 'string' },
      'keep-inferred': { type: 'boolean' },
      'min-score': { type: 'string' },
      ...PAIR_OPTIONS,
    },
    USAGE,
  );
  const ctd = values.ctd as string | undefined;
  const pairs = values.pairs as string | undefined;
  if ((ctd === undefined) === (pairs === undefined)) throw new UsageError(`give exactly one of --ctd and --pairs\n\n${USAGE}`);
  const out = values.out as string | undefined;
  if (!out) throw new UsageError(`--out is required\n\n${USAGE}`);
  await checkOutputPath('out', out, 'dir');
  const seed = numberOption(values, 'seed', 42, Number.isInteger);
  const testFraction = numberOption(values, 'test-fraction', 0.2, (f) => f > 0 && f < 1);
  const ctdOnly = (['negatives', 'split', 'template', 'keep-inferred', 'min-score'] as const).filter((k) => values[k] !== undefined);
  if (pairs !== undefined && ctdOnly.length > 0) throw new UsageError(`--${ctdOnly[0]} applies to --ctd only`);
  if (values['min-score'] !== undefined && !values['keep-inferred']) throw new UsageError('--min-score needs --keep-inferred');
  const pairOnly = (Object.keys(PAIR_OPTIONS) as (keyof typeof PAIR_OPTIONS)[]).filter((k) => values[k] !== undefined);
  if (ctd !== undefined && pairOnly.length > 0) throw new UsageError(`--${pairOnly[0]} applies to --pairs only`);

  const counts = { rowsRead: 0, accepted: 0, skipped: 0 };
  const badRows = new BadRowLog();
  let result: { train: Example[]; test: Example[]; stats: object; line: (x: Example) => object; extra: object; notes: string[] };
  if (ctd !== undefined) {
    const template = (values.template as string | undefined) ?? DEFAULT_TEMPLATE;
    checkTemplate(template);
    const negatives = choice<NegativeMode>(values, 'negatives', ['random', 'hard'], 'random');
    const split = choice<SplitMode>(values, 'split', ['random', 'entity'], 'random');
    const keepInferred = Boolean(values['keep-inferred']);
    const minInferenceScore = numberOption(values, 'min-score', -Infinity);
    const graph = new GraphBuilder();
    for await (const chunk of parseCtd(await open(ctd), { keepInferred, minInferenceScore })) {
      for (const r of chunk.rows) graph.add(r.geneId, r.geneSymbol, r.diseaseId, r.diseaseName);
      counts.rowsRead += chunk.rows.length + chunk.bad.length + chunk.skipped;
      counts.accepted += chunk.rows.length;
      counts.skipped += chunk.skipped;
      badRows.add(chunk.bad);
    }
    const built = buildCtdDataset(graph.finish(), { seed, negatives, split, testFraction, template }, badRows);
    result = {
      ...built,
      line: ctdLine,
      notes: groupingNotes(built.stats),
      extra: { duplicates: counts.accepted - built.stats.positives, keepInferred, minInferenceScore: keepInferred ? minInferenceScore : null, citation: CTD_CITATION },
    };
  } else {
    const rows: PairRow[] = [];
    let header: PairHeader = { format: 'csv', layout: 'triplets' };
    for await (const chunk of parsePairs(await open(pairs!), pairOptionsOf(values))) {
      header = chunk.header;
      rows.push(...chunk.rows);
      counts.rowsRead += chunk.rows.length + chunk.bad.length + chunk.skipped;
      counts.accepted += chunk.rows.length;
      counts.skipped += chunk.skipped;
      badRows.add(chunk.bad);
    }
    const { layout } = header;
    const built = buildPairDataset(rows, layout, { seed, testFraction }, badRows);
    // How the labels were read (NLI classes, or scores and their scale), so the written 0–1 labels can be traced.
    result = { ...built, line: (x) => pairLine(layout, x), extra: header.labels ? { labels: header.labels } : {}, notes: groupingNotes(built.stats) };
  }
  reportBad(badRows);
  for (const note of result.notes) console.error(note);

  const stats = { source: { file: ctd ?? pairs, ...counts, bad: badRows.count, badSamples: badRows.samples, ...result.extra }, ...result.stats };
  await writeOutputDir(out, {
    'train.jsonl': jsonl(result.train.map(result.line)),
    'test.jsonl': jsonl(result.test.map(result.line)),
    'stats.json': `${JSON.stringify(stats, null, 2)}\n`,
  });
  console.error(`wrote ${result.train.length} train and ${result.test.length} test rows to ${out} (stats.json: counts, overlaps, seed)`);
}
