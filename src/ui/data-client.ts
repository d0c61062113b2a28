/** The page's handle on the ingest worker (workers/ingest.worker.ts, the data layer behind comlink). */
import * as Comlink from 'comlink';
import type { IngestWorkerApi } from '../../workers/ingest.worker.ts';

export type RemoteData = Comlink.Remote<IngestWorkerApi>;

export function startIngestWorker(): RemoteData {
  const worker = new Worker(new URL('../../workers/ingest.worker.ts', import.meta.url), { type: 'module', name: 'qlora-lab ingest' });
  return Comlink.wrap<IngestWorkerApi>(worker);
}
