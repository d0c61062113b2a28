/** The autotuner's cache in the browser: IndexedDB, one record per adapter key. */
import { openDB } from 'idb';
import type { TuneCache, TuneTable } from './autotune.ts';

const DB_NAME = 'qlora-lab-autotune';
const STORE = 'tables';

export function indexedDbTuneCache(): TuneCache {
  const db = openDB(DB_NAME, 1, {
    upgrade(database) {
      database.createObjectStore(STORE);
    },
  });
  return {
    runtime: navigator.userAgent,
    async load(adapterKey) {
      return ((await (await db).get(STORE, adapterKey)) as TuneTable | undefined) ?? {};
    },
    async save(adapterKey, table) {
      await (await db).put(STORE, table, adapterKey);
    },
  };
}
