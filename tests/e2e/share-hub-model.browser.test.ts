/**
 * A share link whose model is on the Hugging Face Hub: before anything is downloaded or run, the
 * page shows the model, its commit and its download size; declining downloads nothing and opens
 * the demo; confirming downloads the model. The Hub is a local server in its URL layout, reached
 * through a route for huggingface.co.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { BrowserSession } from '../helpers/browser.ts';
import { type HubServer, folderContents, startHubServer } from '../helpers/hub-server.ts';
import { formatBytes } from '../../src/model/memory.ts';
import { defaultRunConfig } from '../../src/train/run-config.ts';
import type { RunConfig } from '../../src/train/run-config.ts';
import { readShareLink, shareLink } from '../../src/ui/share-link.ts';
import { DEMO_SETS } from '../../src/ui/demo-sets.ts';
import { openApp, openAppSession, screenshot } from './app.ts';

const REPO = 'test-org/tiny-bert';
const files = folderContents('tests/fixtures/bert/tiny');
let session: BrowserSession;
let hub: HubServer;
let config: RunConfig;
beforeAll(async () => {
  session = await openAppSession();
  hub = await startHubServer({ [REPO]: { main: files } });
  const base = defaultRunConfig(DEMO_SETS[0].dataRef('unset'));
  config = { ...base, model: { kind: 'hub', id: REPO, revision: 'main' } };
});
afterAll(async () => {
  await session?.close();
  await hub?.close();
});

async function openLink() {
  const context = await session.browser.newContext();
  await context.route('https://huggingface.co/**', async (route) => {
    const url = new URL(route.request().url());
    const response = await fetch(hub.baseUrl + url.pathname + url.search);
    await route.fulfill({ status: response.status, headers: Object.fromEntries(response.headers), body: Buffer.from(await response.arrayBuffer()) });
  });
  const link = new URL(shareLink(config, session.baseUrl + '/'));
  return openApp(session, link.pathname + link.hash, context);
}

it('shows the Hub model and its download size first, and downloads nothing when declined', async () => {
  const { page } = await openLink();
  const offer = page.getByRole('region', { name: 'Rerun a shared setup?' });
  const bytes = ['config.json', 'model.safetensors', 'tokenizer_config.json', 'vocab.txt'].reduce((n, f) => n + files[f].byteLength, 0);
  await offer.getByText(`${formatBytes(bytes)} to download from the Hugging Face Hub`).waitFor({ timeout: 120_000 });
  expect(await offer.textContent()).toContain(`commit ${hub.commit(REPO, 'main').slice(0, 10)}`);
  await screenshot(page, '18-share-link-hub-offer');
  expect(hub.requests).toEqual([`/api/models/${REPO}/revision/main`]);

  await offer.getByRole('button', { name: 'Not now, open the demo' }).click();
  await page.getByText(/Loaded demo-bert/).waitFor({ timeout: 120_000 });
  expect(new URL(page.url()).hash).toBe('');
  expect(hub.requests.filter((r) => r.includes('/resolve/'))).toEqual([]);
  await page.context().close();
}, 300_000);

it('downloads the model once the user confirms; a link made from it pins the commit', async () => {
  const { page } = await openLink();
  await page.getByRole('button', { name: 'Download and rerun' }).click();
  await page.getByRole('status').filter({ hasText: 'Opened from a share link' }).waitFor({ timeout: 120_000 });
  await expect.poll(() => hub.requests.filter((r) => r.includes('/resolve/')).length, { timeout: 120_000 }).toBe(4);
  // A link made from this setup pins the commit main resolved to, so it reruns on the same weights.
  const make = page.getByRole('button', { name: 'Make a share link' });
  await expect.poll(() => make.isEnabled(), { timeout: 120_000 }).toBe(true);
  await make.click();
  const pinned = readShareLink(await page.getByLabel('Share link').inputValue());
  expect(pinned?.model).toEqual({ kind: 'hub', id: REPO, revision: hub.commit(REPO, 'main') });
  await page.context().close();
}, 300_000);
