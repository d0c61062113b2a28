/**
 * Streaming ingest of a CTD or pair file into IndexedDB.
 *
 * Rows are committed in batches; each batch's transaction also writes the dataset's resume point
 * (the line after the batch's last record) and its counts, so whatever happens — cancel, a page
 * reload, a full disk, a truncated file — the store holds whole batches and the counts that match
 * them, and `resumeIngest` carries on from the next line. While one batch commits the next is
 * parsed. Memory stays flat in the number of rows: a batch, and the sets of gene and disease ids
 * seen (bounded by the vocabulary, not the file).
 */
import { type Association, type CtdRow, associationOf, evidenceClass, looksLikeCtd, mergeRow, parseCtd } from './ctd.ts';
import { DataFormatError, DatasetError, StorageFullError, TruncatedInputError } from './errors.ts';
import { ContentHash } from './hash.ts';
import { type LabelScheme, type PairRow, parsePairs } from './pairs.ts';
import { type IngestSource, openText } from './source.ts';
import {
  type DataDB,
  type DatasetKind,
  type DatasetMeta,
  type CtdBlock,
  type GeneGroup,
  type IngestCounts,
  RELAXED,
  deleteDataset,
  getDataset,
  eachRecord,
  ownedBy,
} from './store.ts';
import { type BadRow, peek } from './text.ts';

const BAD_SAMPLES = 20;
/**
 * Rows per transaction. Measured with bench/ingest.ts (headless Chromium, 1M CTD-format rows):
 * 1000-row batches were the fastest of 1000, 2000, 5000 and 20000 and kept the JS heap lowest
 * (about 40 MB against 70-140 MB).
 */
const DEFAULT_BATCH_ROWS = 1000;

export interface IngestProgress {
  datasetId: string;
  /** Source bytes read (compressed bytes for .gz) and the source size (0 if unknown). */
  bytesRead: number;
  totalBytes: number;
  /** Data rows read in this run. */
  rowsRead: number;
  rowsPerSecond: number;
  /** Seconds left at the current byte rate; null while unknown. */
  etaSeconds: number | null;
  /** Committed counts of the dataset (all runs). */
  counts: IngestCounts;
  batchesCommitted: number;
}

export interface RunOptions {
  /** Rows per transaction (default 1000; a batch ends at a chunk boundary, so it may be a little larger). */
  batchRows?: number;
  signal?: AbortSignal;
  onProgress?: (progress: IngestProgress) => void;
}

export interface IngestOptions extends RunOptions {
  /** The new dataset's id (default: a random UUID); lets the caller cancel before the run ends. */
  datasetId?: string;
  name?: string;
  /** 'auto' (default) recognises CTD files by their header. */
  kind?: 'auto' | DatasetKind;
  /** CTD: keep inferred rows (default: DirectEvidence rows only)... */
  keepInferred?: boolean;
  /** ...whose InferenceScore is at least this. */
  minInferenceScore?: number;
  /** Pair files: how numeric labels read, and the top of their score range (see PairOptions; kept for resuming). */
  labels?: LabelScheme;
  scoreScale?: number;
}

const zeroCounts = (): IngestCounts => ({ rowsRead: 0, accepted: 0, stored: 0, duplicates: 0, skipped: 0, bad: 0 });

/** Ingest a file as a new dataset. Resolves with its final meta (status complete, or interrupted when cancelled). */
export async function ingest(db: DataDB, source: IngestSource, options: IngestOptions = {}): Promise<DatasetMeta> {
  const id = options.datasetId ?? crypto.randomUUID();
  if (await getDataset(db, id)) throw new DatasetError(`A dataset with id ${id} exists already; use resumeIngest to continue it.`);
  const counter = { bytes: 0 };
  const opened = await openText(source, (n) => (counter.bytes += n));
  const { head, stream } = await peek(opened.stream, 4096);
  const kind = options.kind && options.kind !== 'auto' ? options.kind : looksLikeCtd(new TextDecoder().decode(head)) ? 'ctd' : 'pairs';
  const now = Date.now();
  const meta: DatasetMeta = {
    id,
    name: options.name ?? source.name,
    kind,
    source: { name: source.name, size: source.size, lastModified: source.lastModified },
    options: {
      keepInferred: options.keepInferred ?? false,
      minInferenceScore: options.minInferenceScore ?? null,
      ...(options.labels !== undefined ? { labels: options.labels } : {}),
      ...(options.scoreScale !== undefined ? { scoreScale: options.scoreScale } : {}),
    },
    status: 'ingesting',
    nextLine: 0,
    counts: zeroCounts(),
    ...(kind === 'ctd' ? { ctd: { genes: 0, diseases: 0, evidence: { markerMechanism: 0, therapeutic: 0, both: 0, inferred: 0 } } } : {}),
    badSamples: [],
    createdAt: now,
    updatedAt: now,
  };
  await db.put('datasets', meta);
  return run(db, meta, source, stream, counter, false, options);
}

/**
 * Continue a dataset whose ingest stopped (page closed, cancelled, disk full) from its last
 * committed batch. `source` must be the same file.
 */
export async function resumeIngest(db: DataDB, datasetId: string, source: IngestSource, options: RunOptions = {}): Promise<DatasetMeta> {
  const meta = await getDataset(db, datasetId);
  if (!meta) throw new DatasetError(`No dataset ${datasetId} to resume.`);
  if (meta.status === 'complete') return meta;
  const s = meta.source;
  if (s.name !== source.name || s.size !== source.size || (s.lastModified && source.lastModified && s.lastModified !== source.lastModified)) {
    throw new DatasetError(
      `${source.name} (${source.size} bytes) is not the file this dataset was reading: ${s.name} (${s.size} bytes). Choose that file to resume.`,
    );
  }
  const counter = { bytes: 0 };
  const opened = await openText(source, (n) => (counter.bytes += n));
  return run(db, { ...meta, status: 'ingesting' }, source, opened.stream, counter, true, options);
}

/** What a batch adds to the committed counts. */
interface Batch {
  rows: unknown[];
  counts: IngestCounts;
  bad: BadRow[];
  nextLine: number;
}

async function run(
  db: DataDB,
  start: DatasetMeta,
  source: IngestSource,
  stream: ReadableStream<Uint8Array>,
  counter: { bytes: number },
  resuming: boolean,
  options: RunOptions,
): Promise<DatasetMeta> {
  const batchRows = options.batchRows ?? DEFAULT_BATCH_ROWS;
  let meta = start;
  let batches = 0;
  let rowsRead = 0;
  const began = performance.now();
  const writer = meta.kind === 'ctd' ? new CtdWriter(db, meta.id) : new PairWriter(db, meta.id);
  if (resuming) await writer.resume();

  const progress = () => {
    const seconds = (performance.now() - began) / 1000;
    const byteRate = counter.bytes / Math.max(seconds, 1e-3);
    options.onProgress?.({
      datasetId: meta.id,
      bytesRead: counter.bytes,
      totalBytes: source.size,
      rowsRead,
      rowsPerSecond: rowsRead / Math.max(seconds, 1e-3),
      etaSeconds: source.size > 0 && counter.bytes > 0 ? Math.max(0, (source.size - counter.bytes) / byteRate) : null,
      counts: meta.counts,
      batchesCommitted: batches,
    });
  };
  const commit = async (batch: Batch) => {
    meta = await writer.commit(meta, batch);
    batches++;
    progress();
  };

  let pending: Batch = { rows: [], counts: zeroCounts(), bad: [], nextLine: meta.nextLine };
  let inflight: Promise<void> = Promise.resolve();
  const chunks =
    meta.kind === 'ctd'
      ? parseCtd(stream, { keepInferred: meta.options.keepInferred, minInferenceScore: meta.options.minInferenceScore ?? undefined, skipBeforeLine: meta.nextLine })
      : parsePairs(stream, { skipBeforeLine: meta.nextLine, labels: meta.options.labels, scoreScale: meta.options.scoreScale });
  let cancelled = false;
  try {
    for await (const chunk of chunks) {
      if ('header' in chunk) (writer as PairWriter).header = chunk.header;
      const skipped = 'skipped' in chunk ? chunk.skipped : 0;
      const read = chunk.rows.length + chunk.bad.length + skipped;
      rowsRead += read;
      pending.rows.push(...chunk.rows);
      pending.bad.push(...chunk.bad);
      pending.counts.rowsRead += read;
      pending.counts.accepted += chunk.rows.length;
      pending.counts.skipped += skipped;
      pending.counts.bad += chunk.bad.length;
      pending.nextLine = chunk.nextLine;
      if (options.signal?.aborted) {
        cancelled = true;
        break;
      }
      if (pending.rows.length >= batchRows) {
        await inflight;
        inflight = commit(pending);
        inflight.catch(() => {}); // handled where it is awaited; this keeps it from counting as unhandled meanwhile
        pending = { rows: [], counts: zeroCounts(), bad: [], nextLine: pending.nextLine };
      }
    }
    await inflight;
    if (cancelled) {
      await stream.cancel().catch(() => {});
      meta = { ...meta, status: 'interrupted', error: `Cancelled after ${meta.counts.rowsRead} rows; resume to continue.`, updatedAt: Date.now() };
      await db.put('datasets', meta);
      return meta;
    }
    await commit(pending);
    meta = { ...meta, status: 'complete', error: undefined, updatedAt: Date.now() };
    await db.put('datasets', meta);
    return meta;
  } catch (e) {
    await inflight.catch(() => {});
    throw await stopped(db, meta, batches, e);
  }
}

/** Record why a run stopped and return the error to raise; a wrong file that committed nothing leaves no dataset. */
async function stopped(db: DataDB, meta: DatasetMeta, batches: number, e: unknown): Promise<Error> {
  if ((e as Error)?.name === 'QuotaExceededError') {
    e = new StorageFullError(
      `Browser storage is full. ${meta.name} stopped after ${meta.counts.rowsRead} rows (${meta.counts.stored} stored); ` +
        'what was stored is kept. Free space (delete datasets or builds) and resume.',
    );
  }
  const error = e instanceof Error ? e : new Error(String(e));
  if (batches === 0 && meta.counts.rowsRead === 0 && error instanceof DataFormatError) {
    await deleteDataset(db, meta.id);
    return error;
  }
  const status = error instanceof DataFormatError || error instanceof TruncatedInputError ? 'failed' : 'interrupted';
  const kept = `${meta.counts.stored} rows read before line ${meta.nextLine} are kept`;
  try {
    await db.put('datasets', { ...meta, status, error: `${error.message} (${kept}.)`, updatedAt: Date.now() });
  } catch {
    // The disk may be too full even for this; the dataset then stays 'ingesting' and can be resumed.
  }
  return error;
}

function withCounts(meta: DatasetMeta, batch: Batch, extra: Partial<IngestCounts>): DatasetMeta {
  const c = meta.counts;
  const b = batch.counts;
  return {
    ...meta,
    nextLine: batch.nextLine,
    counts: {
      rowsRead: c.rowsRead + b.rowsRead,
      accepted: c.accepted + b.accepted,
      skipped: c.skipped + b.skipped,
      bad: c.bad + b.bad,
      stored: c.stored + (extra.stored ?? 0),
      duplicates: c.duplicates + (extra.duplicates ?? 0),
    },
    badSamples: meta.badSamples.length >= BAD_SAMPLES ? meta.badSamples : [...meta.badSamples, ...batch.bad].slice(0, BAD_SAMPLES),
    updatedAt: Date.now(),
  };
}

interface Writer {
  resume(): Promise<void>;
  commit(meta: DatasetMeta, batch: Batch): Promise<DatasetMeta>;
}

/** CTD rows → one block per batch (see store.ts), merging duplicates into their associations. */
class CtdWriter implements Writer {
  /** The blocks holding each stored gene's associations; the diseases stored. Bounded by the vocabulary, not the rows. */
  private blocksOf = new Map<string, number[]>();
  private diseases = new Set<string>();
  private seq = 0;
  /** The last block written, kept so that a gene running on into the next batch needs no read. */
  private last: CtdBlock | null = null;

  constructor(
    private db: DataDB,
    private datasetId: string,
  ) {}

  /** Rebuild the gene → blocks map from what earlier runs committed. */
  async resume(): Promise<void> {
    await eachRecord(this.db, 'ctdBlocks', ownedBy(this.datasetId), (block) => {
      for (const group of block.genes) {
        this.blocksOf.set(group.geneId, [...(this.blocksOf.get(group.geneId) ?? []), block.seq]);
        for (const a of group.associations) this.diseases.add(a.diseaseId);
      }
      this.seq = block.seq + 1;
    });
  }

  async commit(meta: DatasetMeta, batch: Batch): Promise<DatasetMeta> {
    const byGene = new Map<string, CtdRow[]>();
    for (const r of batch.rows as CtdRow[]) {
      let list = byGene.get(r.geneId);
      if (!list) byGene.set(r.geneId, (list = []));
      list.push(r);
    }
    const tx = this.db.transaction(['datasets', 'ctdBlocks'], 'readwrite', RELAXED);
    const store = tx.objectStore('ctdBlocks');
    // Earlier blocks of these genes (for dedupe): the cached last block, the others read.
    const needed = new Set([...byGene.keys()].flatMap((g) => this.blocksOf.get(g) ?? []));
    const last = this.last;
    const toRead = [...needed].filter((seq) => seq !== last?.seq);
    const earlier = new Map<number, CtdBlock>(last && needed.has(last.seq) ? [[last.seq, last]] : []);
    for (const [k, block] of (await Promise.all(toRead.map((seq) => store.get([this.datasetId, seq])))).entries()) {
      if (!block) throw new DatasetError(`Dataset ${meta.name} lost block ${toRead[k]} of its stored rows; delete it and ingest again.`);
      earlier.set(block.seq, block);
    }
    const stored = new Map<string, { association: Association; seq: number }[]>();
    for (const block of earlier.values()) {
      for (const group of block.genes) {
        if (!byGene.has(group.geneId)) continue;
        const list = stored.get(group.geneId) ?? [];
        for (const association of group.associations) list.push({ association, seq: block.seq });
        stored.set(group.geneId, list);
      }
    }
    const evidence = { ...meta.ctd!.evidence };
    let added = 0;
    let duplicates = 0;
    let newGenes = 0;
    let newDiseases = 0;
    const changed = new Set<number>(); // earlier blocks that a duplicate merged into
    const groups: GeneGroup[] = [];
    for (const [geneId, rows] of byGene) {
      const index = new Map((stored.get(geneId) ?? []).map((x) => [x.association.diseaseId, x]));
      const group: GeneGroup = { geneId, symbol: rows[0].geneSymbol, associations: [] };
      for (const row of rows) {
        const hit = index.get(row.diseaseId);
        if (hit) {
          evidence[evidenceClass(hit.association.evidence)]--;
          mergeRow(hit.association, row);
          evidence[evidenceClass(hit.association.evidence)]++;
          if (hit.seq >= 0) changed.add(hit.seq);
          duplicates++;
          continue;
        }
        const association = associationOf(row);
        group.associations.push(association);
        index.set(row.diseaseId, { association, seq: -1 });
        evidence[evidenceClass(row.evidence)]++;
        added++;
        if (!this.diseases.has(row.diseaseId)) {
          this.diseases.add(row.diseaseId);
          newDiseases++;
        }
      }
      if (group.associations.length > 0) groups.push(group);
      if (!this.blocksOf.has(geneId)) newGenes++;
    }
    const next: DatasetMeta = {
      ...withCounts(meta, batch, { stored: added, duplicates }),
      ctd: { genes: meta.ctd!.genes + newGenes, diseases: meta.ctd!.diseases + newDiseases, evidence },
    };
    const block: CtdBlock = { datasetId: this.datasetId, seq: this.seq, genes: groups };
    const writes: Promise<unknown>[] = [...changed].map((seq) => store.put(earlier.get(seq)!));
    if (groups.length > 0) writes.push(store.put(block));
    writes.push(tx.objectStore('datasets').put(next));
    // A failed commit ends the run (and this writer), so nothing here needs rolling back.
    await Promise.all([...writes, tx.done]);
    if (groups.length > 0) {
      for (const group of groups) this.blocksOf.set(group.geneId, [...(this.blocksOf.get(group.geneId) ?? []), this.seq]);
      this.last = block;
      this.seq++;
    }
    return next;
  }
}

function pairKey(row: PairRow): number {
  const h = new ContentHash();
  if (row.kind === 'triplet') h.update(row.anchor).update(row.positive).update(row.negatives.join('\u0001'));
  else h.update(row.textA).update(row.textB).update(String(row.label));
  return h.number();
}

/**
 * Pair rows → one record per batch. Duplicates (same texts, negatives and label) are dropped using a
 * set of 53-bit content hashes: one number a row (tens of bytes in a Set), and about a 1 in 20,000
 * chance of one false duplicate in a million rows. Pair files are small next to CTD's, so that set
 * is acceptable; CTD ingest keeps no per-row state.
 */
class PairWriter implements Writer {
  header?: { format: 'csv' | 'tsv' | 'jsonl'; layout: 'triplets' | 'labelled' };
  private seen = new Set<number>();
  private seq = 0;

  constructor(
    private db: DataDB,
    private datasetId: string,
  ) {}

  async resume(): Promise<void> {
    await eachRecord(this.db, 'pairChunks', ownedBy(this.datasetId), (chunk) => {
      for (const row of chunk.rows) this.seen.add(pairKey(row));
      this.seq = chunk.seq + 1;
    });
  }

  async commit(meta: DatasetMeta, batch: Batch): Promise<DatasetMeta> {
    const unique: PairRow[] = [];
    const stats = meta.pairs ?? { format: this.header!.format, layout: this.header!.layout, withNegatives: 0, labelOne: 0, labelZero: 0, labelGraded: 0 };
    const next = { ...stats };
    for (const row of batch.rows as PairRow[]) {
      const key = pairKey(row);
      if (this.seen.has(key)) continue;
      this.seen.add(key);
      unique.push(row);
      if (row.kind === 'triplet') next.withNegatives += row.negatives.length > 0 ? 1 : 0;
      else if (row.label === 1) next.labelOne++;
      else if (row.label === 0) next.labelZero++;
      else next.labelGraded++;
    }
    const updated: DatasetMeta = { ...withCounts(meta, batch, { stored: unique.length, duplicates: batch.rows.length - unique.length }), pairs: next };
    const tx = this.db.transaction(['datasets', 'pairChunks'], 'readwrite', RELAXED);
    const writes: Promise<unknown>[] = [tx.objectStore('datasets').put(updated)];
    if (unique.length > 0) writes.push(tx.objectStore('pairChunks').put({ datasetId: this.datasetId, seq: this.seq, rows: unique }));
    await Promise.all([...writes, tx.done]);
    if (unique.length > 0) this.seq++;
    return updated;
  }
}
