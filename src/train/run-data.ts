/**
 * A run's data, read from the data layer's IndexedDB store inside the engine worker: the build
 * that matches the run's fingerprint, the training batches in the order the data seed fixes
 * (addressable by step, so a resumed run reads exactly the batches it would have), and the
 * evaluation set (a bundled evaluation file, or the build's test split).
 */
import { type BuildMeta, type DataDB, DatasetError, type Example as DataExample, type LabelledRow, listBuilds, readBatches } from '../data/index.ts';
import { ownedBy } from '../data/store.ts';
import { evalPairsFromRows, labelledFromAssociations, retrievalFromPairs } from '../eval/eval-set.ts';
import type { EvalPair, EvalSet, LabelledText } from '../eval/types.ts';
import type { Example, LabelledPair } from './objective.ts';
import { type RunConfig, demoDatasetId } from './run-config.ts';

/** Evaluation examples read from a test split at most: keeps evaluation quick on small GPUs. */
export const MAX_EVAL_EXAMPLES = 2000;

/** The newest build whose fingerprint is the run's. */
export async function findBuild(db: DataDB, fingerprint: string): Promise<BuildMeta> {
  const build = (await listBuilds(db)).filter((b) => b.stats.fingerprint === fingerprint).at(-1);
  if (!build) {
    throw new DatasetError(
      `The training data of this run (fingerprint ${fingerprint}) is not in this browser's storage. Add the same file again with the same build settings.`,
    );
  }
  return build;
}

/** Training examples for optimizer step `step`, micro-batch `micro`. */
export interface TrainingFeed {
  examples(step: number, micro: number): Promise<Example[]>;
}

/**
 * Batches from the build's train split, epoch after epoch (each epoch's order fixed by the data
 * seed and the epoch number); the last, smaller batch of an epoch is dropped so every step sees
 * the same batch size. Batch g = step · accumulation + micro.
 */
export function trainingFeed(db: DataDB, build: BuildMeta, config: RunConfig): TrainingFeed {
  const view = config.train.objective.kind === 'infonce' ? 'contrastive' : 'pairs';
  const { batchSize, gradientAccumulation } = config.train;
  let epoch = 0;
  let next = 0;
  let batches: AsyncGenerator<Example[]> | null = null;
  const open = () => readBatches(db, build.id, 'train', { batchSize, seed: config.seeds.data, epoch, view, dropLast: true }) as AsyncGenerator<Example[]>;
  return {
    async examples(step, micro) {
      const wanted = step * gradientAccumulation + micro;
      if (wanted < next || !batches) {
        epoch = 0;
        next = 0;
        batches = open();
      }
      for (;;) {
        const item = await batches.next();
        if (item.done) {
          if (next === 0 && epoch === 0) {
            throw new DatasetError(
              `The training split of ${build.name} has fewer ${view === 'contrastive' ? 'positive pairs' : 'pairs'} than one batch of ${batchSize}; lower the batch size.`,
            );
          }
          epoch += 1;
          batches = open();
          continue;
        }
        if (next++ === wanted) return item.value;
      }
    },
  };
}

/**
 * What the run is judged on, and the labelled texts its map, search and TSV export use. A bundled
 * evaluation set is a labelled pair file (similar / different / negation groups); otherwise the
 * build's test split: CTD builds give gene–disease associations and their sentences, pair builds
 * labelled pairs, or retrieval (each anchor should find its positive) when every pair is positive.
 */
export async function evaluationData(db: DataDB, config: RunConfig): Promise<{ evalSet: EvalSet; labelled: LabelledText[] }> {
  const { evaluation } = config.data;
  if (evaluation.kind === 'demo') {
    const pairs = evalPairsFromRows(await demoEvaluationRows(db, evaluation.id));
    return { evalSet: { pairs, retrieval: retrievalFromPairs(pairs) }, labelled: pairTexts(pairs) };
  }
  const build = await findBuild(db, config.data.fingerprint);
  const test = await testExamples(db, build);
  if (test.length === 0) throw new DatasetError(`The test split of ${build.name} is empty.`);
  if (build.kind === 'ctd') {
    const associations = test.map((x) => ({ gene: x.textA, disease: x.textB, sentence: x.sentence ?? `${x.textA} ${x.textB}`, associated: x.label === 1 }));
    const labelled = labelledFromAssociations(associations);
    return { evalSet: { associations, labelled }, labelled };
  }
  if (test.every((x) => x.label === 1)) {
    const corpus = test.map((x, i) => ({ id: String(i), text: x.textB }));
    const queries = test.map((x, i) => ({ text: x.textA, relevant: [String(i)] }));
    const labelled = [...test.map((x) => ({ text: x.textA, label: 'anchor' })), ...test.map((x) => ({ text: x.textB, label: 'positive' }))];
    return { evalSet: { retrieval: { corpus, queries } }, labelled };
  }
  const pairs = evalPairsFromRows(test);
  return { evalSet: { pairs }, labelled: pairTexts(pairs) };
}

/**
 * The labelled pairs a run is evaluated on, as stored: the bundled evaluation set, or the build's
 * test split (at most MAX_EVAL_EXAMPLES).
 */
export async function evaluationRows(db: DataDB, config: RunConfig): Promise<(LabelledPair & { group?: string })[]> {
  const { evaluation } = config.data;
  const rows = evaluation.kind === 'demo' ? await demoEvaluationRows(db, evaluation.id) : await testExamples(db, await findBuild(db, config.data.fingerprint));
  return rows.map((r) => ({ textA: r.textA, textB: r.textB, label: r.label, ...('group' in r && r.group ? { group: r.group } : {}) }));
}

async function demoEvaluationRows(db: DataDB, id: string): Promise<LabelledRow[]> {
  const rows = (await db.getAll('pairChunks', ownedBy(demoDatasetId(id)))).flatMap((c) => c.rows);
  if (rows.length === 0) throw new DatasetError(`The bundled evaluation set ${id} is not in this browser's storage yet; add it from the data section.`);
  const labelled = rows.filter((r) => r.kind === 'labelled');
  if (labelled.length !== rows.length) throw new DatasetError(`The evaluation set ${id} must be labelled pairs (text_a, text_b, label or group).`);
  return labelled;
}

/** Each distinct text of the pairs, labelled by the group of the first pair it appears in (colours of the map). */
function pairTexts(pairs: EvalPair[]): LabelledText[] {
  const labels = new Map<string, string>();
  for (const p of pairs) for (const text of [p.a, p.b]) if (!labels.has(text)) labels.set(text, `${p.group} pair`);
  return [...labels].map(([text, label]) => ({ text, label }));
}

async function testExamples(db: DataDB, build: BuildMeta): Promise<DataExample[]> {
  const out: DataExample[] = [];
  for (let shard = 0; shard < build.splits.test.shards && out.length < MAX_EVAL_EXAMPLES; shard++) {
    const stored = await db.get('examples', [build.id, 'test', shard]);
    if (!stored) throw new DatasetError(`Build ${build.name} is missing test shard ${shard}; rebuild it.`);
    out.push(...stored.examples);
  }
  return out.slice(0, MAX_EVAL_EXAMPLES);
}
