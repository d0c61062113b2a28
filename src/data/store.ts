/**
 * The IndexedDB store (through idb) for ingested datasets and built training sets.
 *
 *  datasets    one DatasetMeta per ingested file: status, resume point, counts, stats, bad-row samples
 *  ctdBlocks   CTD: one record per committed batch holding its associations grouped by gene.
 *              A browser pays per IndexedDB request, so a batch is one write, not one per row or
 *              gene. Dedupe: the writer knows which blocks hold each gene; a row for a gene stored
 *              before is checked against those blocks (CTD files are sorted by gene, so that is
 *              the block just written, kept in memory) and a duplicate merges into its association.
 *  pairChunks  pair files: the rows of one committed batch
 *  builds      one BuildMeta per built train/test dataset
 *  examples    a build's examples in shards of SHARD_SIZE, in the build's seeded order
 */
import { type DBSchema, type IDBPDatabase, openDB } from 'idb';
import type { CtdBuildStats, Example, PairBuildStats, Split } from './builder.ts';
import type { Association, EvidenceClass } from './ctd.ts';
import type { LabelScheme, PairFormat, PairLayout, PairRow } from './pairs.ts';
import type { BadRow } from './text.ts';

export const DATA_DB_NAME = 'qlora-lab-data';
const DB_VERSION = 1;

export type DatasetKind = 'ctd' | 'pairs';

/**
 * ingesting: a run is going on, or the page closed during one (resume it);
 * interrupted: cancelled or stopped by a full disk (resume it); failed: the file is broken
 * (what was committed stays usable); complete.
 */
export type IngestStatus = 'ingesting' | 'complete' | 'interrupted' | 'failed';

export interface IngestCounts {
  /** Data rows read: accepted + skipped + bad. */
  rowsRead: number;
  /** Rows that passed checks and evidence options. */
  accepted: number;
  /** Unique associations (CTD) or unique pairs stored. */
  stored: number;
  /** Accepted rows that repeated a stored association or pair (merged or dropped). */
  duplicates: number;
  /** Well-formed rows left out on purpose: CTD rows by the evidence options (inferred rows), NLI pairs labelled neutral. */
  skipped: number;
  bad: number;
}

export interface CtdStats {
  genes: number;
  diseases: number;
  /** Unique associations by evidence. */
  evidence: Record<EvidenceClass, number>;
}

export interface PairStats {
  format: PairFormat;
  layout: PairLayout;
  withNegatives: number;
  labelOne: number;
  labelZero: number;
  labelGraded: number;
}

export interface DatasetMeta {
  id: string;
  name: string;
  kind: DatasetKind;
  source: { name: string; size: number; lastModified: number };
  /** CTD evidence options; pair files: how labels read (absent: decided from the file, see pairs.ts). */
  options: { keepInferred: boolean; minInferenceScore: number | null; labels?: LabelScheme; scoreScale?: number };
  status: IngestStatus;
  /** Why the last run stopped early, for the user. */
  error?: string;
  /** Resume point: every record starting on an earlier line is committed. */
  nextLine: number;
  counts: IngestCounts;
  ctd?: CtdStats;
  pairs?: PairStats;
  /** The first bad rows, with line numbers. */
  badSamples: BadRow[];
  createdAt: number;
  updatedAt: number;
}

export interface GeneGroup {
  geneId: string;
  symbol: string;
  associations: Association[];
}

export interface CtdBlock {
  datasetId: string;
  seq: number;
  genes: GeneGroup[];
}

export interface PairChunkRecord {
  datasetId: string;
  seq: number;
  rows: PairRow[];
}

export interface BuildMeta {
  id: string;
  datasetId: string;
  kind: DatasetKind;
  name: string;
  stats: CtdBuildStats | PairBuildStats;
  /** Per split: examples, positives (label 1) and shards. */
  splits: Record<Split, { rows: number; positives: number; shards: number }>;
  createdAt: number;
}

export interface ExampleShard {
  buildId: string;
  split: Split;
  shard: number;
  examples: Example[];
}

interface DataSchema extends DBSchema {
  datasets: { key: string; value: DatasetMeta };
  ctdBlocks: { key: [string, number]; value: CtdBlock };
  pairChunks: { key: [string, number]; value: PairChunkRecord };
  builds: { key: string; value: BuildMeta; indexes: { byDataset: string } };
  examples: { key: [string, string, number]; value: ExampleShard };
}

export type DataDB = IDBPDatabase<DataSchema>;

export function openDataStore(name = DATA_DB_NAME): Promise<DataDB> {
  return openDB<DataSchema>(name, DB_VERSION, {
    upgrade(db) {
      db.createObjectStore('datasets', { keyPath: 'id' });
      db.createObjectStore('ctdBlocks', { keyPath: ['datasetId', 'seq'] });
      db.createObjectStore('pairChunks', { keyPath: ['datasetId', 'seq'] });
      db.createObjectStore('builds', { keyPath: 'id' }).createIndex('byDataset', 'datasetId');
      db.createObjectStore('examples', { keyPath: ['buildId', 'split', 'shard'] });
    },
  });
}

/** Every key [owner, ...] of one dataset or build (arrays sort after strings and numbers). */
export function ownedBy(...prefix: string[]): IDBKeyRange {
  return IDBKeyRange.bound(prefix, [...prefix, []]);
}

/** Visit every record of a store in a key range, one at a time. */
export async function eachRecord<S extends 'ctdBlocks' | 'pairChunks'>(db: DataDB, store: S, range: IDBKeyRange, visit: (value: DataSchema[S]['value']) => void): Promise<void> {
  let cursor = await db.transaction(store).store.openCursor(range);
  while (cursor) {
    visit(cursor.value);
    cursor = await cursor.continue();
  }
}

/** Transactions that only need to survive a page reload, not a power cut, skip the disk flush. */
export const RELAXED: IDBTransactionOptions = { durability: 'relaxed' };

export async function listDatasets(db: DataDB): Promise<DatasetMeta[]> {
  return (await db.getAll('datasets')).sort((a, b) => a.createdAt - b.createdAt);
}

export async function getDataset(db: DataDB, id: string): Promise<DatasetMeta | undefined> {
  return db.get('datasets', id);
}

export async function listBuilds(db: DataDB, datasetId?: string): Promise<BuildMeta[]> {
  const builds = datasetId === undefined ? await db.getAll('builds') : await db.getAllFromIndex('builds', 'byDataset', datasetId);
  return builds.sort((a, b) => a.createdAt - b.createdAt);
}

export async function deleteBuild(db: DataDB, id: string): Promise<void> {
  const tx = db.transaction(['builds', 'examples'], 'readwrite');
  await Promise.all([tx.objectStore('builds').delete(id), tx.objectStore('examples').delete(ownedBy(id)), tx.done]);
}

/** Delete a dataset, its rows and every build made from it. */
export async function deleteDataset(db: DataDB, id: string): Promise<void> {
  for (const build of await listBuilds(db, id)) await deleteBuild(db, build.id);
  const tx = db.transaction(['datasets', 'ctdBlocks', 'pairChunks'], 'readwrite');
  await Promise.all([
    tx.objectStore('datasets').delete(id),
    tx.objectStore('ctdBlocks').delete(ownedBy(id)),
    tx.objectStore('pairChunks').delete(ownedBy(id)),
    tx.done,
  ]);
}
