// Ingest the real curated CTD file into IndexedDB, build datasets, read shuffled batches.
import { buildCtd } from '../../../src/data/builds.ts';
import { readBatches } from '../../../src/data/batches.ts';
import { ingest } from '../../../src/data/ingest.ts';
import { blobSource } from '../../../src/data/source.ts';
import { fetchFile, freshStore, params } from '../../data/in-page.ts';
import { report } from './report.ts';

report(async () => {
  const db = await freshStore(params(import.meta.url).get('db')!);
  const file = await fetchFile('CTD_curated_genes_diseases.csv');
  const progress: number[] = [];
  const started = performance.now();
  const meta = await ingest(db, blobSource(file), { onProgress: (p) => progress.push(p.rowsRead) });
  const seconds = (performance.now() - started) / 1000;
  const random = await buildCtd(db, meta.id, { seed: 42, negatives: 'random', split: 'random' });
  const entity = await buildCtd(db, meta.id, { seed: 42, negatives: 'hard', split: 'entity' });

  // Batches: one epoch covers every example once; (seed, epoch) fixes the order.
  const epoch = async (seed: number, n: number) => {
    const keys: string[] = [];
    const sizes: number[] = [];
    for await (const batch of readBatches(db, random.id, 'train', { batchSize: 100, seed, epoch: n })) {
      sizes.push(batch.length);
      for (const x of batch) keys.push(`${x.textA}|${x.textB}|${x.label}`);
    }
    return { keys, sizes };
  };
  const a = await epoch(1, 0);
  const b = await epoch(1, 0);
  const c = await epoch(1, 1);
  const contrastive: number[] = [];
  for await (const batch of readBatches(db, entity.id, 'train', { batchSize: 64, seed: 3, view: 'contrastive' })) {
    contrastive.push(batch.filter((x) => x.negatives.length === 1).length - batch.length);
  }
  const sentences = await readBatches(db, entity.id, 'test', { batchSize: 5, seed: 3, view: 'sentences' }).next();
  return {
    meta,
    seconds,
    progressCalls: progress.length,
    random: random.stats,
    entity: entity.stats,
    entitySplits: entity.splits,
    epoch: {
      count: a.keys.length,
      unique: new Set(a.keys).size,
      sameOrder: a.keys.join('\n') === b.keys.join('\n'),
      otherEpochDiffers: a.keys.join('\n') !== c.keys.join('\n'),
      otherEpochSameSet: [...a.keys].sort().join('\n') === [...c.keys].sort().join('\n'),
      fullBatches: a.sizes.slice(0, -1).every((s) => s === 100),
      inBuildOrder: a.keys.slice(0, 20),
    },
    contrastiveMissingNegatives: contrastive.reduce((x, y) => x + y, 0),
    sentences: sentences.value,
  };
});
