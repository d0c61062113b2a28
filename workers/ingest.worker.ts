/**
 * The ingest worker: the data layer (src/data) behind comlink, so that parsing, IndexedDB writes and
 * dataset builds never block the page. The caller picks a new dataset's id, so it can cancel it.
 */
import { expose } from 'comlink';
import {
  type BuildOptions,
  type IngestOptions,
  type IngestProgress,
  type IngestSource,
  blobSource,
  buildCtd,
  buildPairs,
  deleteBuild,
  deleteDataset,
  getDataset,
  ingest,
  listBuilds,
  listDatasets,
  openDataStore,
  resumeIngest,
  urlSource,
} from '../src/data/index.ts';

/** A dropped file, or a URL (the bundled demo sets). */
export type IngestInput = Blob | { url: string; size?: number; name?: string };

const db = openDataStore();
const running = new Map<string, AbortController>();

function sourceOf(input: IngestInput): IngestSource {
  return input instanceof Blob ? blobSource(input) : urlSource(input.url, input.size, input.name);
}

async function tracked<T>(datasetId: string, go: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  running.set(datasetId, controller);
  try {
    return await go(controller.signal);
  } finally {
    running.delete(datasetId);
  }
}

const api = {
  async ingest(input: IngestInput, options: Omit<IngestOptions, 'signal' | 'onProgress'> & { datasetId: string }, onProgress?: (p: IngestProgress) => void) {
    return tracked(options.datasetId, async (signal) => ingest(await db, sourceOf(input), { ...options, signal, onProgress }));
  },
  async resume(datasetId: string, input: IngestInput, onProgress?: (p: IngestProgress) => void, batchRows?: number) {
    return tracked(datasetId, async (signal) => resumeIngest(await db, datasetId, sourceOf(input), { signal, onProgress, batchRows }));
  },
  /** Stop a running ingest after its current batch; what is committed stays and can be resumed. */
  cancel(datasetId: string): boolean {
    running.get(datasetId)?.abort();
    return running.has(datasetId);
  },
  async listDatasets() {
    return listDatasets(await db);
  },
  async getDataset(id: string) {
    return getDataset(await db, id);
  },
  async deleteDataset(id: string) {
    return deleteDataset(await db, id);
  },
  async buildCtd(datasetId: string, options: BuildOptions, name?: string) {
    return buildCtd(await db, datasetId, options, name);
  },
  async buildPairs(datasetId: string, options: { seed: number; testFraction?: number }, name?: string) {
    return buildPairs(await db, datasetId, options, name);
  },
  async listBuilds(datasetId?: string) {
    return listBuilds(await db, datasetId);
  },
  async deleteBuild(id: string) {
    return deleteBuild(await db, id);
  },
};

export type IngestWorkerApi = typeof api;
expose(api);
