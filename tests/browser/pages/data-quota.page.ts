// A full disk: phase=fill stops with StorageFullError once about 1 MB of CTD blocks are stored
// (the disk is filled at the IndexedDB boundary, see fillDiskAfter), then frees the space;
// phase=resume finishes the same dataset.
import { ingest, resumeIngest } from '../../../src/data/ingest.ts';
import { blobSource } from '../../../src/data/source.ts';
import { getDataset, openDataStore } from '../../../src/data/store.ts';
import { failure, fetchFile, fillDiskAfter, freshStore, params, storedCtd } from '../../data/in-page.ts';
import { report } from './report.ts';

report(async () => {
  const p = params(import.meta.url);
  const file = await fetchFile('CTD_curated_genes_diseases.csv');
  if (p.get('phase') === 'fill') {
    const db = await freshStore(p.get('db')!);
    const freeSpace = fillDiskAfter('ctdBlocks', 1_000_000);
    try {
      const error = await failure(() => ingest(db, blobSource(file), { datasetId: 'full', batchRows: 2000 }));
      return { error, meta: await getDataset(db, 'full'), stored: await storedCtd(db, 'full') };
    } finally {
      freeSpace();
    }
  }
  const db = await openDataStore(p.get('db')!);
  const meta = await resumeIngest(db, 'full', blobSource(file), { batchRows: 2000 });
  return { meta, stored: await storedCtd(db, 'full') };
});
