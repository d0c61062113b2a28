import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildCtdDataset } from '../../src/data/builder.ts';
import type { CtdBuildStats } from '../../src/data/builder.ts';
import { parseCtd } from '../../src/data/ctd.ts';
import { GraphBuilder } from '../../src/data/graph.ts';
import type { BuildMeta, DatasetMeta } from '../../src/data/store.ts';
import type { IngestProgress } from '../../src/data/ingest.ts';
import type { BadRow } from '../../src/data/text.ts';
import type { ContrastivePair } from '../../src/data/batches.ts';
import { CTD_CURATED, fileStream } from '../data/streams.ts';
import { type DataPage, openDataPage } from '../data/pages.ts';
import { type BrowserSession, openBrowserSession } from '../helpers/browser.ts';

let session: BrowserSession;
let page: DataPage;
beforeAll(async () => {
  session = await openBrowserSession();
  page = await openDataPage(session, { 'CTD_curated_genes_diseases.csv': CTD_CURATED });
});
afterAll(async () => {
  await page?.close();
  await session?.close();
});

const CURATED_EVIDENCE = { markerMechanism: 31_986, therapeutic: 1_928, both: 308, inferred: 0 };

describe('CTD curated file → IndexedDB (headless Chromium, real IndexedDB)', () => {
  it('ingests 34,222 associations, 9,111 genes, 5,858 diseases; builds match the Node builder; batches cover each example once per epoch', async () => {
    const r = await page.run<{
      meta: DatasetMeta;
      seconds: number;
      progressCalls: number;
      random: CtdBuildStats;
      entity: CtdBuildStats;
      entitySplits: BuildMeta['splits'];
      epoch: Record<string, unknown> & { count: number; unique: number };
      contrastiveMissingNegatives: number;
      sentences: Array<{ text: string; label: number }>;
    }>('/tests/browser/pages/data-ctd.page.ts', { db: 'ctd-full' });
    expect(r.meta.status).toBe('complete');
    expect(r.meta.counts).toEqual({ rowsRead: 34_222, accepted: 34_222, stored: 34_222, duplicates: 0, skipped: 0, bad: 0 });
    expect(r.meta.ctd).toEqual({ genes: 9_111, diseases: 5_858, evidence: CURATED_EVIDENCE });
    expect(r.progressCalls).toBeGreaterThan(3);
    console.log(`curated CTD ingest in Chromium: ${r.seconds.toFixed(1)} s (${Math.round(34_222 / r.seconds)} rows/s)`);

    // The same graph built in Node (from the file) gives the same dataset, bit for bit.
    const graph = new GraphBuilder();
    for await (const c of parseCtd(await fileStream(CTD_CURATED))) for (const x of c.rows) graph.add(x.geneId, x.geneSymbol, x.diseaseId, x.diseaseName);
    const g = graph.finish();
    expect(r.random).toEqual(buildCtdDataset(g, { seed: 42, negatives: 'random', split: 'random' }).stats);
    expect(r.entity).toEqual(buildCtdDataset(g, { seed: 42, negatives: 'hard', split: 'entity' }).stats);
    expect(r.random.rows).toBe(68_444);
    expect(r.entity.overlap).toEqual({ genes: 0, diseases: 0, pairs: 0 });

    expect(r.epoch.count).toBe(r.random.train.rows);
    expect(r.epoch.unique).toBe(r.random.train.rows);
    expect(r.epoch).toMatchObject({ sameOrder: true, otherEpochDiffers: true, otherEpochSameSet: true, fullBatches: true });
    expect(r.contrastiveMissingNegatives).toBe(0);
    expect(r.sentences).toHaveLength(5);
    for (const s of r.sentences) expect(s.text).toMatch(/^.+ is associated with .+$/);
  });
});

interface Stored {
  blocks: number;
  associations: number;
  uniquePairs: number;
  genes: number;
  diseases: number;
}

/** The meta's counts agree with what the blocks hold. */
function consistent(meta: DatasetMeta, stored: Stored) {
  expect(stored.associations).toBe(meta.counts.stored);
  expect(stored.uniquePairs).toBe(meta.counts.stored);
  expect(stored.genes).toBe(meta.ctd!.genes);
  expect(stored.diseases).toBe(meta.ctd!.diseases);
}

const COMPLETE_COUNTS = { rowsRead: 34_222, accepted: 34_222, stored: 34_222, duplicates: 0, skipped: 0, bad: 0 };

describe('resume', () => {
  it('continues after a page reload from the last committed batch: no row lost, none twice', async () => {
    const started = await page.run<IngestProgress>('/tests/browser/pages/data-resume.page.ts', { db: 'reload', phase: 'start' });
    expect(started.batchesCommitted).toBeGreaterThanOrEqual(3);
    await page.reload(); // the ingest dies mid-batch
    const r = await page.run<{ before: DatasetMeta; storedBefore: Stored; after: DatasetMeta; storedAfter: Stored }>(
      '/tests/browser/pages/data-resume.page.ts',
      { db: 'reload', phase: 'resume' },
    );
    expect(r.before.status).toBe('ingesting');
    expect(r.before.counts.stored).toBeGreaterThan(0);
    expect(r.before.counts.stored).toBeLessThan(34_222);
    consistent(r.before, r.storedBefore);
    expect(r.after.status).toBe('complete');
    // A row read twice would show up as a duplicate; a row skipped, as a missing association.
    expect(r.after.counts).toEqual(COMPLETE_COUNTS);
    expect(r.after.ctd).toEqual({ genes: 9_111, diseases: 5_858, evidence: CURATED_EVIDENCE });
    consistent(r.after, r.storedAfter);
  });

  it('continues after a cancel', async () => {
    const r = await page.run<{ cancelled: DatasetMeta; storedCancelled: Stored; after: DatasetMeta; storedAfter: Stored }>(
      '/tests/browser/pages/data-resume.page.ts',
      { db: 'cancel', phase: 'cancel' },
    );
    expect(r.cancelled.status).toBe('interrupted');
    expect(r.cancelled.error).toMatch(/^Cancelled after \d+ rows; resume to continue\.$/);
    expect(r.cancelled.counts.stored).toBeGreaterThan(0);
    expect(r.cancelled.counts.stored).toBeLessThan(34_222);
    consistent(r.cancelled, r.storedCancelled);
    expect(r.after.status).toBe('complete');
    expect(r.after.counts).toEqual(COMPLETE_COUNTS);
    consistent(r.after, r.storedAfter);
  });
});

describe('bad input', () => {
  it('counts bad rows with line numbers and goes on; refuses a wrong format; keeps what a truncated gzip gave; dedupes pairs', async () => {
    const r = await page.run<{
      messy: DatasetMeta;
      messyStored: Stored;
      wrongFormat: { name: string; message: string };
      afterWrongFormat: number;
      truncated: { name: string; message: string };
      cutMeta: DatasetMeta;
      cutStored: Stored;
      pairs: DatasetMeta;
      build: BuildMeta;
      contrastive: ContrastivePair[];
      sentences: { name: string; message: string };
      tooFew: { name: string; message: string };
    }>('/tests/browser/pages/data-errors.page.ts', { db: 'errors' });
    expect(r.messy.status).toBe('complete');
    expect(r.messy.counts).toEqual({ rowsRead: 3005, accepted: 3001, stored: 3000, duplicates: 1, skipped: 0, bad: 4 });
    expect(r.messy.badSamples.map((b: BadRow) => [b.line, b.reason])).toEqual([
      [101, 'DiseaseID "NOT-AN-ID" is not a MESH: or OMIM: identifier'],
      [1501, 'expected 7 fields, found 3'],
      [2501, 'unterminated quoted field in column 3'],
      [2601, 'unknown DirectEvidence "maybe"'],
    ]);
    consistent(r.messy, r.messyStored);

    expect(r.wrongFormat.name).toBe('DataFormatError');
    expect(r.wrongFormat.message).toMatch(/^This is not a CTD gene–disease file: it has no CTD header.*first row has 2 fields/);
    expect(r.afterWrongFormat).toBe(1); // only the messy dataset: a wrong file leaves nothing behind

    expect(r.truncated.name).toBe('TruncatedInputError');
    expect(r.truncated.message).toMatch(/gzip data ends early or is corrupt/);
    expect(r.cutMeta.status).toBe('failed');
    expect(r.cutMeta.error).toMatch(/are kept\.\)$/);
    expect(r.cutMeta.counts.stored).toBeGreaterThan(2000);
    consistent(r.cutMeta, r.cutStored);

    expect(r.pairs.status).toBe('complete');
    expect(r.pairs.counts).toMatchObject({ rowsRead: 24, accepted: 23, stored: 22, duplicates: 1, bad: 1 });
    expect(r.pairs.pairs).toMatchObject({ format: 'jsonl', layout: 'triplets', withNegatives: 21 });
    expect(r.pairs.badSamples[0]).toMatchObject({ line: 4, reason: 'empty positive' });
    expect(r.build.splits.train.rows + r.build.splits.test.rows).toBe(22);
    expect(r.contrastive.length).toBe(r.build.splits.train.rows);
    expect(r.sentences.message).toMatch(/sentences view needs a CTD build/);
    expect(r.build.stats).toMatchObject({ rows: 22, duplicatesRemoved: 0, groups: 22 });
    expect(r.tooFew).toEqual({
      name: 'DatasetError',
      message: 'A dataset needs at least 2 rows to split; this one has 1. 1 bad row(s) were skipped: line 3: unterminated quoted field at the end of the file ("\\"syncope,fainting").',
    });
  });
});

describe('full disk', () => {
  it('stops with StorageFullError keeping whole batches, then resumes when space is back', async () => {
    const page = await openDataPage(session, { 'CTD_curated_genes_diseases.csv': CTD_CURATED });
    try {
      const full = await page.run<{ error: { name: string; message: string }; meta: DatasetMeta; stored: Stored }>('/tests/browser/pages/data-quota.page.ts', {
        db: 'quota',
        phase: 'fill',
      });
      expect(full.error.name).toBe('StorageFullError');
      expect(full.error.message).toMatch(/^Browser storage is full\. CTD_curated_genes_diseases\.csv stopped after \d+ rows/);
      expect(full.meta.status).toBe('interrupted');
      expect(full.meta.counts.stored).toBeGreaterThan(0);
      expect(full.meta.counts.stored).toBeLessThan(34_222);
      consistent(full.meta, full.stored);
      const resumed = await page.run<{ meta: DatasetMeta; stored: Stored }>('/tests/browser/pages/data-quota.page.ts', { db: 'quota', phase: 'resume' });
      expect(resumed.meta.counts).toEqual(COMPLETE_COUNTS);
      consistent(resumed.meta, resumed.stored);
    } finally {
      await page.close();
    }
  });
});

describe('ingest worker (comlink)', () => {
  it('ingests the bundled demo sets from their URLs, builds them, lists and deletes', async () => {
    const page = await openDataPage(session);
    try {
      const r = await page.run<{
        mendelian: DatasetMeta;
        evalSet: DatasetMeta;
        train: DatasetMeta;
        ctdBuild: BuildMeta;
        pairBuild: BuildMeta;
        wrongKind: string;
        progress: number;
        listed: string[];
        afterDelete: string[];
        builds: number;
        cancelIdle: boolean;
      }>('/tests/browser/pages/data-worker.page.ts');
      expect(r.mendelian).toMatchObject({ kind: 'ctd', status: 'complete', counts: { stored: 92, bad: 0 } });
      expect(r.progress).toBeGreaterThan(0);
      expect(r.evalSet).toMatchObject({ kind: 'pairs', status: 'complete', counts: { stored: 150, bad: 0 }, pairs: { layout: 'labelled', labelOne: 50, labelZero: 100 } });
      expect(r.train).toMatchObject({ kind: 'pairs', status: 'complete', counts: { stored: 240, bad: 0 }, pairs: { layout: 'triplets', withNegatives: 240 } });
      expect((r.ctdBuild.stats as CtdBuildStats).overlap).toEqual({ genes: 0, diseases: 0, pairs: 0 });
      expect(r.pairBuild.splits.test.rows).toBe(48);
      expect(r.wrongKind).toMatch(/is a pairs dataset, not ctd/);
      expect(r.listed).toEqual(['eval', 'mendelian', 'train']);
      expect(r.afterDelete).toEqual(['mendelian', 'train']);
      expect(r.builds).toBe(2);
      expect(r.cancelIdle).toBe(false);
    } finally {
      await page.close();
    }
  });
});
