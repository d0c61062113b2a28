// A full disk (the test lowers the origin's quota through CDP): phase=fill stops with
// StorageFullError; phase=resume (quota restored) finishes the same dataset.
import { ingest, resumeIngest } from '../../../src/data/ingest.ts';
import { blobSource } from '../../../src/data/source.ts';
import { getDataset, openDataStore } from '../../../src/data/store.ts';
import { failure, fetchFile, freshStore, params, storedCtd } from '../../data/in-page.ts';
import { report } from './report.ts';

report(async () => {
  const p = params(import.meta.url);
  const file = await fetchFile('CTD_curated_genes_diseases.csv');
  if (p.get('phase') === 'fill') {
    const db = await freshStore(p.get('db')!);
    const error = await failure(() => ingest(db, blobSource(file), { datasetId: 'full', batchRows: 2000 }));
    return { error, meta: await getDataset(db, 'full'), stored: await storedCtd(db, 'full'), usage: (await navigator.storage.estimate()).usage };
  }
  const db = await openDataStore(p.get('db')!);
  const meta = await resumeIngest(db, 'full', blobSource(file), { batchRows: 2000 });
  return { meta, stored: await storedCtd(db, 'full'), usage: (await navigator.storage.estimate()).usage };
});
