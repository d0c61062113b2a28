/** Helpers for data page modules running in the browser (see pages.ts). */
import { deleteDB } from 'idb';
import { type DataDB, eachRecord, openDataStore, ownedBy } from '../../src/data/store.ts';

/** The page module's query parameters (pages.ts passes them on the module URL). */
export function params(moduleUrl: string): URLSearchParams {
  return new URL(moduleUrl).searchParams;
}

/** A file the test serves under /__data/, as a File with its name. */
export async function fetchFile(name: string): Promise<File> {
  const response = await fetch(`/__data/${encodeURIComponent(name)}`);
  if (!response.ok) throw new Error(`/__data/${name}: HTTP ${response.status}`);
  return new File([await response.blob()], name, { lastModified: 1 });
}

export async function freshStore(name: string): Promise<DataDB> {
  await deleteDB(name);
  return openDataStore(name);
}

/** gzip bytes made in the page (CompressionStream), optionally cut short. */
export async function gzip(file: Blob, keepFraction = 1): Promise<Blob> {
  const compressed = await new Response(file.stream().pipeThrough(new CompressionStream('gzip'))).arrayBuffer();
  return new Blob([compressed.slice(0, Math.floor(compressed.byteLength * keepFraction))]);
}

/** What a CTD dataset's blocks really hold, to check its meta's counts against. */
export async function storedCtd(db: DataDB, datasetId: string) {
  const genes = new Set<string>();
  const diseases = new Set<string>();
  const pairs = new Set<string>();
  let associations = 0;
  let blocks = 0;
  await eachRecord(db, 'ctdBlocks', ownedBy(datasetId), (block) => {
    blocks++;
    for (const g of block.genes) {
      genes.add(g.geneId);
      for (const a of g.associations) {
        associations++;
        diseases.add(a.diseaseId);
        pairs.add(`${g.geneId}|${a.diseaseId}`);
      }
    }
  });
  return { blocks, associations, uniquePairs: pairs.size, genes: genes.size, diseases: diseases.size };
}

/** Resolves with the first progress report that satisfies `when`. */
export function progressGate<P>(when: (p: P) => boolean): { onProgress: (p: P) => void; reached: Promise<P> } {
  let resolve: (p: P) => void = () => {};
  const reached = new Promise<P>((r) => (resolve = r));
  return { onProgress: (p) => (when(p) ? resolve(p) : undefined), reached };
}

/** An error's name and message, or null when `run` did not throw. */
export async function failure(run: () => Promise<unknown>): Promise<{ name: string; message: string } | null> {
  try {
    await run();
    return null;
  } catch (e) {
    return { name: (e as Error).name, message: (e as Error).message };
  }
}

/**
 * A full disk at the IndexedDB boundary. Chromium builds differ in whether they enforce CDP's quota
 * override on IndexedDB, so the test fills the disk itself: once `bytes` (as JSON) have been put
 * into `store`, opening another read-write transaction over it throws the QuotaExceededError a full
 * disk raises. Smaller writes elsewhere (a dataset's metadata) still fit, as they would on a real
 * disk with a few bytes left. A real full disk fails the transaction's commit instead; the caller
 * sees the same error either way, and nothing of the refused transaction is written. Returns the
 * function that frees the space again.
 */
export function fillDiskAfter(store: string, bytes: number): () => void {
  const put = IDBObjectStore.prototype.put;
  const transaction = IDBDatabase.prototype.transaction;
  let used = 0;
  IDBObjectStore.prototype.put = function (this: IDBObjectStore, value: unknown, key?: IDBValidKey) {
    if (this.name === store) used += JSON.stringify(value).length;
    return put.call(this, value, key);
  };
  IDBDatabase.prototype.transaction = function (this: IDBDatabase, names: string | string[], mode?: IDBTransactionMode, options?: IDBTransactionOptions) {
    const touches = typeof names === 'string' ? names === store : names.includes(store);
    if (touches && mode === 'readwrite' && used >= bytes) throw new DOMException('The quota has been exceeded.', 'QuotaExceededError');
    return transaction.call(this, names, mode, options);
  } as typeof IDBDatabase.prototype.transaction;
  return () => {
    IDBObjectStore.prototype.put = put;
    IDBDatabase.prototype.transaction = transaction;
  };
}
