// The ingest worker through comlink: the bundled demo sets ingested from their URLs, built, listed, deleted.
import { proxy, wrap } from 'comlink';
import type { IngestProgress } from '../../../src/data/ingest.ts';
import type { IngestWorkerApi } from '../../../workers/ingest.worker.ts';
import { report } from './report.ts';

report(async () => {
  const worker = wrap<IngestWorkerApi>(new Worker(new URL('../../../workers/ingest.worker.ts', import.meta.url), { type: 'module' }));
  const progress: IngestProgress[] = [];
  const onProgress = proxy((p: IngestProgress) => void progress.push(p));
  const mendelian = await worker.ingest({ url: '/data/mendelian-gene-disease.csv' }, { datasetId: 'mendelian' }, onProgress);
  const evalSet = await worker.ingest({ url: '/data/cardiology-eval.csv' }, { datasetId: 'eval' });
  const train = await worker.ingest({ url: '/data/cardiology-train.jsonl' }, { datasetId: 'train' });
  const ctdBuild = await worker.buildCtd('mendelian', { seed: 5, negatives: 'hard', split: 'entity' });
  const pairBuild = await worker.buildPairs('train', { seed: 5 });
  const wrongKind = await worker.buildCtd('train', { seed: 5, negatives: 'random', split: 'random' }).then(
    () => null,
    (e: Error) => e.message,
  );
  const listed = (await worker.listDatasets()).map((d) => d.id).sort();
  await worker.deleteDataset('eval');
  return {
    mendelian,
    evalSet,
    train,
    ctdBuild,
    pairBuild,
    wrongKind,
    progress: progress.length,
    listed,
    afterDelete: (await worker.listDatasets()).map((d) => d.id).sort(),
    builds: (await worker.listBuilds()).length,
    cancelIdle: await worker.cancel('nothing-running'),
  };
});
