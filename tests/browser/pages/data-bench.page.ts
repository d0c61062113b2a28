// Benchmark page (bench/ingest.ts): ingest a file served over HTTP into IndexedDB on the page's
// main thread, so that the bench can sample this page's JS heap through CDP while it runs. The
// ingest worker runs the same function.
import { ingest } from '../../../src/data/ingest.ts';
import { urlSource } from '../../../src/data/source.ts';
import { freshStore, params } from '../../data/in-page.ts';
import { report } from './report.ts';

report(async () => {
  const p = params(import.meta.url);
  const db = await freshStore(p.get('db')!);
  const progress = globalThis as { __rowsRead?: number };
  progress.__rowsRead = 0;
  const started = performance.now();
  const meta = await ingest(db, urlSource(p.get('url')!, Number(p.get('size'))), {
    keepInferred: true,
    onProgress: (x) => (progress.__rowsRead = x.rowsRead),
  });
  const seconds = (performance.now() - started) / 1000;
  db.close();
  return { seconds, counts: meta.counts, ctd: meta.ctd, status: meta.status };
});
