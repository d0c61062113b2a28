/**
 * Built datasets in IndexedDB: load a CTD dataset's association graph, build train/test examples
 * (builder.ts), and store them in shards for the batch reader.
 */
import { type BuildOptions, type CtdBuildStats, type Example, type PairBuildStats, type Split, buildCtdDataset, buildPairDataset } from './builder.ts';
import { DatasetError } from './errors.ts';
import { type CtdGraph, GraphBuilder } from './graph.ts';
import type { PairRow } from './pairs.ts';
import { type BuildMeta, type DataDB, type DatasetMeta, RELAXED, eachRecord, getDataset, ownedBy } from './store.ts';

/** Examples per stored shard: the unit the batch reader loads and shuffles. */
export const SHARD_SIZE = 512;
const SHARDS_PER_TRANSACTION = 16;

async function completeDataset(db: DataDB, datasetId: string, kind: DatasetMeta['kind']): Promise<DatasetMeta> {
  const meta = await getDataset(db, datasetId);
  if (!meta) throw new DatasetError(`No dataset ${datasetId}.`);
  if (meta.kind !== kind) throw new DatasetError(`${meta.name} is a ${meta.kind} dataset, not ${kind}.`);
  if (meta.status !== 'complete') {
    throw new DatasetError(`${meta.name} is not completely ingested (${meta.status}${meta.error ? `: ${meta.error}` : ''}); resume or re-ingest it first.`);
  }
  return meta;
}

const badRowsOf = (meta: DatasetMeta) => ({ count: meta.counts.bad, samples: meta.badSamples });

/** Every association of a CTD dataset, in the graph's canonical order. */
export async function loadCtdGraph(db: DataDB, datasetId: string): Promise<CtdGraph> {
  const graph = new GraphBuilder();
  await eachRecord(db, 'ctdBlocks', ownedBy(datasetId), (block) => {
    for (const gene of block.genes) for (const a of gene.associations) graph.add(gene.geneId, gene.symbol, a.diseaseId, a.diseaseName);
  });
  return graph.finish();
}

/** Build train/test examples from a complete CTD dataset and store them. */
export async function buildCtd(db: DataDB, datasetId: string, options: BuildOptions, name?: string): Promise<BuildMeta> {
  const meta = await completeDataset(db, datasetId, 'ctd');
  const build = buildCtdDataset(await loadCtdGraph(db, datasetId), options, badRowsOf(meta));
  return saveBuild(db, meta, build, name ?? `${meta.name} · ${options.negatives} negatives · ${options.split} split · seed ${options.seed}`);
}

/** Split a complete pair dataset into train/test (seeded) and store it. */
export async function buildPairs(db: DataDB, datasetId: string, options: { seed: number; testFraction?: number }, name?: string): Promise<BuildMeta> {
  const meta = await completeDataset(db, datasetId, 'pairs');
  const rows: PairRow[] = [];
  await eachRecord(db, 'pairChunks', ownedBy(datasetId), (chunk) => rows.push(...chunk.rows));
  const build = buildPairDataset(rows, meta.pairs!.layout, options, badRowsOf(meta));
  return saveBuild(db, meta, build, name ?? `${meta.name} · seed ${options.seed}`);
}

async function saveBuild(
  db: DataDB,
  dataset: DatasetMeta,
  build: { stats: CtdBuildStats | PairBuildStats; train: Example[]; test: Example[] },
  name: string,
): Promise<BuildMeta> {
  const id = crypto.randomUUID();
  const shards: Array<{ split: Split; shard: number; examples: Example[] }> = [];
  for (const split of ['train', 'test'] as const) {
    for (let at = 0, shard = 0; at < build[split].length; at += SHARD_SIZE, shard++) shards.push({ split, shard, examples: build[split].slice(at, at + SHARD_SIZE) });
  }
  for (let at = 0; at < shards.length; at += SHARDS_PER_TRANSACTION) {
    const tx = db.transaction('examples', 'readwrite', RELAXED);
    await Promise.all([...shards.slice(at, at + SHARDS_PER_TRANSACTION).map((s) => tx.store.put({ buildId: id, ...s })), tx.done]);
  }
  const split = (s: Split) => ({
    rows: build[s].length,
    positives: build[s].filter((x) => x.label === 1).length,
    shards: Math.ceil(build[s].length / SHARD_SIZE),
  });
  // The meta goes last: a build interrupted while its shards were written does not appear.
  const meta: BuildMeta = { id, datasetId: dataset.id, kind: dataset.kind, name, stats: build.stats, splits: { train: split('train'), test: split('test') }, createdAt: Date.now() };
  await db.put('builds', meta);
  return meta;
}
