/**
 * Seeded shuffled batches from a stored build, without holding the build in memory: each epoch
 * visits the split's shards (SHARD_SIZE examples, already in the build's seeded random order) in a
 * seeded random order, `bufferShards` at a time, and shuffles each group (with what was left over
 * from the previous group) before cutting batches. Memory: about (bufferShards + 1) shards.
 * Every example is yielded exactly once per epoch; (seed, epoch) fixes the order.
 */
import { Rng } from './rng.ts';
import { hash32 } from '../engine/rng.ts';
import type { Example, Split } from './builder.ts';
import { DatasetError } from './errors.ts';
import type { DataDB } from './store.ts';

/** Gene text ↔ disease text (or a pair file's two texts) with the label: for a labelled-pair loss. */
export interface LabelledPair {
  textA: string;
  textB: string;
  label: number;
}

/** Label-1 examples only, with their explicit negatives: for contrastive (in-batch negatives) losses. */
export interface ContrastivePair {
  anchor: string;
  positive: string;
  negatives: string[];
}

/** CTD builds: the templated sentence and its label. */
export interface LabelledSentence {
  text: string;
  label: number;
}

export interface ViewRows {
  pairs: LabelledPair;
  contrastive: ContrastivePair;
  sentences: LabelledSentence;
}
export type View = keyof ViewRows;

export interface BatchOptions<V extends View> {
  batchSize: number;
  seed: number;
  epoch?: number;
  /** Default 'pairs'. */
  view?: V;
  /** Shards shuffled together (default 4). */
  bufferShards?: number;
  /** Leave out the last, smaller batch. */
  dropLast?: boolean;
}

function project<V extends View>(view: V, x: Example): ViewRows[V] | null {
  if (view === 'pairs') return { textA: x.textA, textB: x.textB, label: x.label } as ViewRows[V];
  if (view === 'contrastive') return x.label === 1 ? ({ anchor: x.textA, positive: x.textB, negatives: x.negatives } as ViewRows[V]) : null;
  if (x.sentence === undefined) throw new DatasetError('The sentences view needs a CTD build (pair files have no templated sentences).');
  return { text: x.sentence, label: x.label } as ViewRows[V];
}

export async function* readBatches<V extends View = 'pairs'>(db: DataDB, buildId: string, split: Split, options: BatchOptions<V>): AsyncGenerator<ViewRows[V][]> {
  const { batchSize, seed } = options;
  const view = (options.view ?? 'pairs') as V;
  const group = options.bufferShards ?? 4;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new DatasetError(`batchSize must be a positive integer, got ${batchSize}`);
  const build = await db.get('builds', buildId);
  if (!build) throw new DatasetError(`No build ${buildId}.`);
  const rng = new Rng(hash32((hash32(seed >>> 0) ^ Math.imul((options.epoch ?? 0) + 1, 0x9e3779b1)) >>> 0));
  const order = rng.shuffle(Array.from({ length: build.splits[split].shards }, (_, i) => i));
  let pool: ViewRows[V][] = [];
  for (let at = 0; at < order.length; at += group) {
    const shards = await Promise.all(order.slice(at, at + group).map((shard) => db.get('examples', [buildId, split, shard])));
    for (const [k, shard] of shards.entries()) {
      if (!shard) throw new DatasetError(`Build ${build.name} is missing ${split} shard ${order[at + k]}; rebuild it.`);
      for (const x of shard.examples) {
        const row = project(view, x);
        if (row !== null) pool.push(row);
      }
    }
    rng.shuffle(pool);
    let cut = 0;
    for (; cut + batchSize <= pool.length; cut += batchSize) yield pool.slice(cut, cut + batchSize);
    pool = pool.slice(cut);
  }
  if (pool.length > 0 && !options.dropLast) yield pool;
}
