/**
 * A decoder LLM chosen from the Hugging Face Hub is checked before download: only its file list and
 * config.json are fetched, and the page shows the download size, the memory plan and whether it
 * fits this device. One too large for the memory budget is refused with the plan and what would fit,
 * and none of its weights are requested even when Load is pressed; a small one fits; a share link
 * that reruns a statements run on the large one is refused the same way. The Hub is a local server
 * in its URL layout, reached through a route for huggingface.co.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { BrowserSession } from '../helpers/browser.ts';
import { type HubServer, folderContents, startHubServer } from '../helpers/hub-server.ts';
import { writeTinyDecoder } from '../helpers/tiny-decoder.ts';
import { DECODER_PRESETS } from '../../src/model/decoder-fit.ts';
import { formatBytes } from '../../src/model/memory.ts';
import { RUN_CONFIG_VERSION } from '../../src/train/run-config.ts';
import type { StatementRunConfig } from '../../src/train/shared-run.ts';
import { shareLink } from '../../src/ui/share-link.ts';
import { openAdvanced, openApp, openAppSession, screenshot } from './app.ts';

const LARGE = 'test-org/phi3-mini-config';
const TINY = 'test-org/tiny-llama';
const phi3 = DECODER_PRESETS.find((p) => p.id === 'unsloth/Phi-3-mini-4k-instruct-bnb-4bit')!;
// Phi-3 mini's config with stand-in files: the check must judge it from config.json alone.
const large = { 'config.json': JSON.stringify(phi3.config), 'tokenizer.json': '{}', 'model.safetensors': 'stand-in weights, never to be requested' };
let session: BrowserSession;
let hub: HubServer;
let tiny: Record<string, Uint8Array>;
beforeAll(async () => {
  session = await openAppSession();
  // Read into memory, so the folder goes at once (tempDir's cleanup needs a test).
  const dir = mkdtempSync(join(tmpdir(), 'qlora-tiny-decoder-'));
  tiny = folderContents(writeTinyDecoder(dir));
  rmSync(dir, { recursive: true, force: true });
  hub = await startHubServer({ [LARGE]: { main: large }, [TINY]: { main: tiny } });
});
afterAll(async () => {
  await session?.close();
  await hub?.close();
});

const fileRequests = (repo: string) => hub.requests.filter((r) => r.startsWith(`/${repo}/resolve/`)).map((r) => r.slice(r.lastIndexOf('/') + 1));

/** A browser context whose requests to huggingface.co go to the local Hub. */
async function hubContext() {
  const context = await session.browser.newContext({ viewport: { width: 1200, height: 900 } });
  await context.route('https://huggingface.co/**', async (route) => {
    const url = new URL(route.request().url());
    const response = await fetch(hub.baseUrl + url.pathname + url.search);
    await route.fulfill({ status: response.status, headers: Object.fromEntries(response.headers), body: Buffer.from(await response.arrayBuffer()) });
  });
  return context;
}

it('refuses a decoder too large for the budget before any weight is requested, and shows a small one fits', async () => {
  const { page, context } = await openApp(session, '/', await hubContext());
  await page.getByText(/^Loaded demo-bert/).waitFor({ timeout: 240_000 });
  await openAdvanced(page);
  const model = page.getByRole('region', { name: 'The model being trained' });
  await model.getByLabel('Hugging Face Hub').check();
  const fit = model.getByRole('region', { name: 'Before download' });

  await model.getByLabel('Repository id').fill(LARGE);
  await fit.getByText('Does not fit this device').waitFor({ timeout: 120_000 });
  const refused = (await fit.textContent()) ?? '';
  expect(refused).toContain('a mistral decoder (32 layers, hidden size 3072');
  expect(refused).toMatch(/memory plan: .*over the 1\.5 GiB budget even so/);
  expect(refused).toMatch(/Training 8 sequences of 256 tokens per step needs about [\d.]+ GiB of GPU memory even with the smallest layout, more than the 1\.5 GiB budget\./);
  expect(refused).toMatch(/What would fit: the smaller preset [\w. -]+ at 256 tokens/);
  expect(refused).toContain('Nothing has been downloaded');
  await screenshot(page, '30-decoder-too-large');
  // Pressing Load is refused too: still nothing but config.json was fetched.
  await model.getByRole('button', { name: 'Load model' }).click();
  await page.waitForTimeout(1000);
  expect(await model.getByText(/^Loaded demo-bert/).count()).toBe(1);
  expect(fileRequests(LARGE)).toEqual(['config.json']);

  await model.getByLabel('Repository id').fill(TINY);
  await fit.getByText('Fits this device').waitFor({ timeout: 120_000 });
  const bytes = ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'generation_config.json', 'model.safetensors'].reduce((n, f) => n + (tiny[f]?.byteLength ?? 0), 0);
  const fits = (await fit.textContent()) ?? '';
  expect(fits).toContain(`${formatBytes(bytes)} to download`);
  expect(fits).toContain('Training 8 sequences of 128 tokens per step');
  expect(fits).toMatch(/memory plan: .* of a 1\.5 GiB budget/);
  expect(fileRequests(TINY)).toEqual(['config.json']);
  await context.close();
}, 400_000);

it('refuses a share link whose decoder does not fit, with the plan, before anything is downloaded', async () => {
  const statements: StatementRunConfig = {
    v: RUN_CONFIG_VERSION,
    kind: 'decoder-statements',
    model: { kind: 'hub', id: LARGE, revision: 'main' },
    quantization: 'nf4',
    data: { source: { kind: 'demo', id: 'mendelian-gene-disease' }, fingerprint: '0123456789abcdef' },
    split: 'random',
    steps: 6,
    batchSize: 8,
    learningRate: 0.01,
    seed: 1,
  };
  const requestsBefore = fileRequests(LARGE).length;
  const link = new URL(shareLink(statements, session.baseUrl + '/'));
  const { page, context } = await openApp(session, link.pathname + link.hash, await hubContext());
  const offer = page.getByRole('region', { name: 'Rerun a shared setup?' });
  await offer.getByText('Does not fit this device').waitFor({ timeout: 120_000 });
  const shown = (await offer.textContent())!.replace(/\s+/g, ' ');
  expect(shown).toMatch(/Training 8 sequences of 256 tokens per step — memory plan: .*over the 1\.5 GiB budget even so/);
  expect(shown).toMatch(/What would fit: the smaller preset [\w. -]+ at 256 tokens/);
  expect(await page.getByRole('alert').filter({ hasText: "This link's decoder" }).textContent()).toMatch(
    new RegExp(`^This link's decoder ${LARGE}@main does not fit this device, so it will not be downloaded: Training 8 sequences`),
  );
  expect(await offer.getByRole('button', { name: /rerun$/i }).isDisabled()).toBe(true);
  expect(fileRequests(LARGE).slice(requestsBefore)).toEqual(['config.json']);
  await context.close();
}, 200_000);
