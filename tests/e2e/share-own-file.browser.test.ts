/**
 * A share link whose data is the sender's own file: the receiver is asked for the file, a
 * different file is refused by fingerprint, and the right one reruns the configuration. The
 * fingerprint in the link is computed here in Node by the data layer's own parser and builder, so
 * the test also checks that Node and the browser build the same dataset from the same bytes.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { buildPairDataset } from '../../src/data/builder.ts';
import { type PairRow, parsePairs } from '../../src/data/pairs.ts';
import { type RunConfig, defaultRunConfig } from '../../src/train/run-config.ts';
import { shareLink } from '../../src/ui/share-link.ts';
import type { BrowserSession } from '../helpers/browser.ts';
import { openApp, openAppSession, screenshot, storedRuns, waitForRunState } from './app.ts';

const lines = readFileSync('public/data/cardiology-train.jsonl', 'utf8').trim().split('\n');
const ownFile = Buffer.from(`${lines.slice(0, 24).join('\n')}\n`);
const otherFile = Buffer.from(`${lines.slice(24, 48).join('\n')}\n`);

async function fingerprint(bytes: Buffer, seed: number, testFraction: number): Promise<string> {
  const rows: PairRow[] = [];
  let layout: 'triplets' | 'labelled' = 'triplets';
  for await (const chunk of parsePairs(new Blob([new Uint8Array(bytes)]).stream() as ReadableStream<Uint8Array>)) {
    rows.push(...chunk.rows);
    layout = chunk.header.layout;
  }
  return buildPairDataset(rows, layout, { seed, testFraction }).stats.fingerprint;
}

let session: BrowserSession;
let config: RunConfig;
beforeAll(async () => {
  session = await openAppSession();
  const base = defaultRunConfig({ source: { kind: 'file', name: 'my-pairs.jsonl' }, build: { kind: 'pairs', testFraction: 0.25 }, fingerprint: 'unset', evaluation: { kind: 'test-split' } });
  config = {
    ...base,
    train: { ...base.train, steps: 2, batchSize: 8, checkpointEvery: 2, warmupSteps: 1 },
    data: { ...base.data, fingerprint: await fingerprint(ownFile, base.seeds.data, 0.25) },
  };
});
afterAll(async () => session?.close());

it('asks for the sender’s file, refuses another one, and reruns with the right one', async () => {
  const link = new URL(shareLink(config, session.baseUrl + '/'));
  const { page } = await openApp(session, link.pathname + link.hash);
  await page.getByRole('region', { name: 'Rerun a shared setup?' }).getByRole('button', { name: 'Rerun' }).click();
  await page.getByText('The shared configuration trains on your file my-pairs.jsonl').waitFor({ timeout: 120_000 });
  const dataFile = page.getByLabel('CTD gene–disease file (CSV/TSV, .gz) or pair file (CSV, TSV, JSONL)');

  await dataFile.setInputFiles({ name: 'my-pairs.jsonl', mimeType: 'application/jsonl', buffer: otherFile });
  await page.getByText(/This is not the data the link was made with/).waitFor({ timeout: 120_000 });
  expect(await storedRuns(page)).toEqual([]);
  await screenshot(page, '17-share-link-wrong-file');

  await dataFile.setInputFiles({ name: 'my-pairs.jsonl', mimeType: 'application/jsonl', buffer: ownFile });
  await waitForRunState(page, 'done');
  const [run] = await storedRuns(page);
  expect(run.config).toEqual(config);
  expect(run.history).toHaveLength(2);
}, 600_000);
