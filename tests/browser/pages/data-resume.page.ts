// Resume after a reload and after a cancel. phase=start: ingest, report after 3 committed batches
// and leave it running (the test then reloads the page); phase=resume: continue it;
// phase=cancel: ingest, cancel after 2 batches, resume.
import { ingest, resumeIngest } from '../../../src/data/ingest.ts';
import { blobSource } from '../../../src/data/source.ts';
import { getDataset, openDataStore } from '../../../src/data/store.ts';
import { fetchFile, freshStore, params, progressGate, storedCtd } from '../../data/in-page.ts';
import type { IngestProgress } from '../../../src/data/ingest.ts';
import { report } from './report.ts';

const NAME = 'CTD_curated_genes_diseases.csv';

report(async () => {
  const p = params(import.meta.url);
  const phase = p.get('phase');
  const dbName = p.get('db')!;
  const file = await fetchFile(NAME);
  if (phase === 'start') {
    const db = await freshStore(dbName);
    const gate = progressGate<IngestProgress>((x) => x.batchesCommitted >= 3);
    void ingest(db, blobSource(file), { datasetId: 'reloaded', batchRows: 2000, onProgress: gate.onProgress });
    return gate.reached;
  }
  if (phase === 'resume') {
    const db = await openDataStore(dbName);
    const before = (await getDataset(db, 'reloaded'))!;
    const storedBefore = await storedCtd(db, 'reloaded');
    const after = await resumeIngest(db, 'reloaded', blobSource(file), { batchRows: 2000 });
    return { before, storedBefore, after, storedAfter: await storedCtd(db, 'reloaded') };
  }
  const db = await freshStore(dbName);
  const controller = new AbortController();
  const cancelled = await ingest(db, blobSource(file), {
    datasetId: 'cancelled',
    batchRows: 2000,
    signal: controller.signal,
    onProgress: (x) => (x.batchesCommitted >= 2 ? controller.abort() : undefined),
  });
  const storedCancelled = await storedCtd(db, 'cancelled');
  const after = await resumeIngest(db, 'cancelled', blobSource(file), { batchRows: 2000 });
  return { cancelled, storedCancelled, after, storedAfter: await storedCtd(db, 'cancelled') };
});
