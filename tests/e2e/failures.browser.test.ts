/**
 * What goes wrong for real users: no WebGPU, broken files (data, model folder, adapter) that must
 * leave everything already stored in place, data text that must never become HTML, and no network
 * after the first visit.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_SCHEDULE } from '../../src/train/defaults.ts';
import type { BrowserSession } from '../helpers/browser.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { evaluatedRun, openAdvanced, openApp, openAppSession, screenshot, setFields, setQuickRun, storedRuns, waitForDemoReady, waitForRunState } from './app.ts';

describe('without WebGPU', () => {
  let session: BrowserSession;
  beforeAll(async () => {
    session = await openAppSession({ webgpu: false });
  });
  afterAll(async () => session?.close());

  it('explains what is missing and names the browsers that have WebGPU', async () => {
    const { page } = await openApp(session);
    const alert = page.getByRole('region', { name: 'Your GPU' }).getByRole('alert');
    await alert.waitFor({ timeout: 120_000 });
    // Chromium keeps navigator.gpu on secure pages even with WebGPU switched off: no adapter is what users see.
    expect(await alert.textContent()).toMatch(/WebGPU is not available|no GPU adapter was found/);
    const explanation = await page.getByText(/trains on your graphics card through WebGPU/).textContent();
    for (const browser of ['Chrome', 'Edge', 'Safari', 'Firefox']) expect(explanation).toContain(browser);
    await page.getByRole('heading', { name: 'Run history' }).waitFor();
    await screenshot(page, '13-no-webgpu');
  }, 300_000);
});

describe('with WebGPU', () => {
  let session: BrowserSession;
  beforeAll(async () => {
    session = await openAppSession();
  });
  afterAll(async () => session?.close());

  it('reports malformed files with a message and loses nothing already stored; data text is never HTML', async () => {
    const { page } = await openApp(session);
    await waitForDemoReady(page);
    await openAdvanced(page);
    const datasets = page.getByRole('table', { name: 'Datasets stored in this browser' });
    const storedBefore = await datasets.getByRole('row').count();
    const dataFile = page.getByLabel('CTD gene–disease file (CSV/TSV, .gz) or pair file (CSV, TSV, JSONL)');
    const dataAlert = page.getByRole('region', { name: 'Your data' }).getByRole('alert');

    // Not text at all.
    await dataFile.setInputFiles({ name: 'scan.csv', mimeType: 'text/csv', buffer: Buffer.from([0, 159, 146, 150, 0, 1, 2, 3, 255, 254, 10, 0, 0, 7]) });
    await dataAlert.waitFor({ timeout: 60_000 });
    expect(await dataAlert.textContent()).not.toBe('');
    expect(await datasets.getByRole('row').count()).toBe(storedBefore);
    await page.getByText(/^Training on Cardiology anchor\/paraphrase pairs/).waitFor();

    // Hostile text in a pair file: valid rows are kept, the bad one is reported, nothing is rendered as HTML.
    const hostile = [
      { anchor: '<img src=x onerror="globalThis.__injected = 1">Severe aortic stenosis.', positive: 'The aortic valve is severely narrowed.' },
      { anchor: 'Atrial fibrillation with rapid ventricular response.', positive: 'Fast, irregular heart rhythm from the atria.' },
      { anchor: '<script>globalThis.__injected = 2</script>anchor without a positive' },
      { anchor: 'No pericardial effusion.', positive: 'There is no fluid around the heart.' },
    ];
    await dataFile.setInputFiles({ name: 'hostile.jsonl', mimeType: 'application/jsonl', buffer: Buffer.from(hostile.map((r) => JSON.stringify(r)).join('\n')) });
    const row = datasets.getByRole('row').filter({ hasText: 'hostile.jsonl' });
    await row.waitFor({ timeout: 60_000 });
    await row.getByText('First bad rows').click();
    await row.getByText(/<script>globalThis.__injected = 2<\/script>/).waitFor();
    expect(await page.locator('main img, main script').count()).toBe(0);
    expect(await page.evaluate(() => (globalThis as { __injected?: number }).__injected)).toBeUndefined();

    // A model folder that is not a BERT: a message, the loaded model stays.
    const folder = tempDir('qlora-gpt2-');
    writeFileSync(join(folder, 'config.json'), JSON.stringify({ model_type: 'gpt2', architectures: ['GPT2Model'] }));
    writeFileSync(join(folder, 'model.safetensors'), Buffer.from([1, 2, 3]));
    const model = page.getByRole('region', { name: 'The model being trained' });
    await model.getByLabel('A model folder on this computer').check();
    await model.getByLabel('Folder with config.json, the weights and the tokenizer').setInputFiles(folder);
    await model.getByRole('button', { name: 'Load model' }).click();
    const modelAlert = model.getByRole('alert');
    await modelAlert.waitFor({ timeout: 60_000 });
    expect(await modelAlert.textContent()).toMatch(/^qlora-gpt2-\w+ \(local folder\) could not be loaded: .*model_type "gpt2".*not supported yet.*demo-bert \(bundled smoke-test model\) stays loaded\.$/s);
    await model.getByText(/^Loaded demo-bert/).waitFor();
    // The form is back on the model that is loaded, not on the one that failed.
    expect(await model.getByRole('radio', { name: /Bundled demo model/ }).isChecked()).toBe(true);

    // An adapter whose config is not JSON: a message, nothing stacked.
    await model.getByLabel('adapter_config.json and adapter_model.safetensors').setInputFiles([
      { name: 'adapter_config.json', mimeType: 'application/json', buffer: Buffer.from('{"peft_type": "LORA", r: 16') },
      { name: 'adapter_model.safetensors', mimeType: 'application/octet-stream', buffer: Buffer.from([9, 9, 9]) },
    ]);
    await model.getByText(/adapter_config\.json is not valid JSON/).waitFor({ timeout: 60_000 });
    expect(await model.getByText(/^Stacked underneath/).count()).toBe(0);
    await screenshot(page, '14-malformed-files');
  }, 600_000);

  it('builds the bundled CTD demo with the split and negatives chosen in the form', async () => {
    const { page } = await openApp(session);
    await waitForDemoReady(page);
    await openAdvanced(page);
    const data = page.getByRole('region', { name: 'Your data' });
    for (const [split, negatives] of [['random', 'hard'], ['entity', 'random']]) {
      await data.getByLabel('CTD split').selectOption(split);
      await data.getByLabel('CTD negatives').selectOption(negatives);
      await data.getByRole('button', { name: /^Use Mendelian gene–disease associations/ }).click();
      await data.getByText(new RegExp(`^Training on Mendelian gene–disease associations.* · ${negatives} negatives · ${split} split · seed`)).waitFor({ timeout: 60_000 });
    }
  }, 180_000);

  // Runs one after another on one page, as a user retries: its GPU kernels compile once.
  describe('run after run on one page', () => {
    let page: Page;
    beforeAll(async () => {
      ({ page } = await openApp(session));
      await waitForDemoReady(page);
    }, 300_000);

    it('run controls work from the keyboard: focus follows the run, and Cancel asks first', async () => {
      const focused = () => page.evaluate(() => document.activeElement?.textContent?.trim() ?? '');
      // The first Tab stop is the skip link to Start training.
      await page.keyboard.press('Tab');
      expect(await focused()).toBe('Skip to Start training');
      await page.keyboard.press('Enter');
      expect(await focused()).toBe('Start training');
      await setQuickRun(page);
      await setFields(page, { steps: 500 }); // long enough to still be running at the end
      await page.getByRole('button', { name: 'Start training' }).focus();
      await page.keyboard.press('Enter');
      await waitForRunState(page, 'training', 60_000);
      // Until the first step is done (kernels compiling) the page says so rather than showing dashes.
      await page.getByText(/Preparing the first step: the GPU compiles its kernels/).waitFor({ timeout: 10_000 });
      await expect.poll(focused).toBe('Pause');
      await page.keyboard.press('Enter');
      await waitForRunState(page, 'paused');
      await expect.poll(focused).toBe('Resume');
      await page.keyboard.press('Enter');
      await waitForRunState(page, 'training');
      await expect.poll(focused).toBe('Pause');
      await page.keyboard.press('Tab');
      expect(await focused()).toBe('Cancel');
      await page.keyboard.press('Enter');
      await page.getByText(/^Cancel this run\? Its last checkpoint/).waitFor();
      await expect.poll(focused).toBe('Keep training');
      await page.keyboard.press('Enter');
      await expect.poll(focused).toBe('Pause');
      expect(await page.locator('[data-run-state="training"]').count()).toBe(1);
      await page.getByRole('button', { name: 'Cancel' }).click();
      await page.getByRole('button', { name: 'Yes, cancel the run' }).click();
      await waitForRunState(page, 'cancelled');
      await expect.poll(focused).toBe('Start training');
    }, 300_000);

    it('stops a diverging run at its checkpoint and says so, keeping no diverged adapter', async () => {
      await setQuickRun(page);
      // At a learning rate of 1 the loss stays finite (embeddings are normalised) while the adapter explodes.
      await setFields(page, { learningRate: 1 });
      await page.getByRole('button', { name: 'Start training' }).click();
      await waitForRunState(page, 'failed');
      await page.getByText(/Training diverged at step 2: the update of encoder\.layer\.\d\.attention\.self\.(query|value) is .*× the size of the frozen weight/).first().waitFor();
      const [run] = await storedRuns(page);
      expect(run.status).toBe('failed');
      expect(run.error).toMatch(/^Training diverged at step 2: /);
    }, 300_000);

    it('stops training at a checkpoint the storage cannot hold, saying how much space it needs; the stored data stays', async () => {
      // Chromium 156 accepts CDP's Storage.overrideQuotaForOrigin but no longer enforces it on
      // IndexedDB writes (a 200 KB put succeeds under a quota 16 KB above usage), so the engine worker's
      // checkpoint writes fail the way a full disk makes them fail: with a QuotaExceededError.
      const engine = page.workers().find((w) => w.url().includes('engine.worker'));
      if (!engine) throw new Error(`no engine worker among ${page.workers().map((w) => w.url()).join(', ')}`);
      await engine.evaluate(() => {
        const put = IDBObjectStore.prototype.put;
        IDBObjectStore.prototype.put = function (this: IDBObjectStore, value: unknown, key?: IDBValidKey) {
          if (this.name === 'checkpoints') throw new DOMException('The quota has been exceeded.', 'QuotaExceededError');
          return put.call(this, value, key);
        };
      });
      await setQuickRun(page);
      await setFields(page, { learningRate: DEMO_SCHEDULE.learningRate }); // the demo's again, after the diverging run
      await page.getByRole('button', { name: 'Start training' }).click();
      await waitForRunState(page, 'training', 60_000); // the diverged run's message is gone
      const alert = page.getByRole('region', { name: 'Training' }).getByRole('alert');
      await alert.waitFor({ timeout: 300_000 });
      expect(await alert.textContent()).toMatch(/storage is full: saving the checkpoint of run .* at step \d+ needs about \d+(\.\d)? (KiB|MiB)/);
      await screenshot(page, '16-quota');
      expect(await page.getByRole('table', { name: 'Datasets stored in this browser' }).getByRole('row').filter({ hasText: 'complete' }).count()).toBe(2);
    }, 600_000);
  });
});

describe('offline after the first visit', () => {
  let session: BrowserSession;
  beforeAll(async () => {
    session = await openAppSession();
  });
  afterAll(async () => session?.close());

  it('works with the site unreachable: app, bundled model, stored data, training', async () => {
    const { page } = await openApp(session);
    await waitForDemoReady(page);
    await page.waitForFunction(() => navigator.serviceWorker.controller !== null, null, { timeout: 60_000 });
    // The network goes away where the app meets it: the site's server stops (Chromium builds differ
    // in whether Playwright's emulated offline mode reaches navigator.onLine and the service worker).
    await session.server.close();
    await expect(fetch(session.baseUrl)).rejects.toThrow();
    await page.reload();
    await waitForDemoReady(page);
    await setQuickRun(page);
    await setFields(page, { steps: 2 });
    await page.getByRole('button', { name: 'Start training' }).click();
    await waitForRunState(page, 'done');
    const run = await evaluatedRun(page);
    expect(run.history).toHaveLength(2);
    await screenshot(page, '15-offline');
  }, 600_000);
});
