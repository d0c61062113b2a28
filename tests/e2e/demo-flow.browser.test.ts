/**
 * The guided flow end to end in headless Chromium (SwiftShader WebGPU), as a first visit follows it:
 * the bundled demo model and the demo preset's data load by themselves (1 Choose data), the demo
 * preset trains in the engine worker with no main-thread task over 50 ms (2 Train), and the run is
 * evaluated with a visible before/after change, explored and exported (3 See what changed); the
 * exports are what other tools read (PEFT key names, a merged BertModel equal to base + scale·B·A).
 * At each stage: axe (0 violations), no sideways scrolling, a screenshot checked not to be blank.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { unzipSync } from 'fflate';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { loraScale } from '../../src/model/lora.ts';
import { readPeftAdapter } from '../../src/model/peft-files.ts';
import { parseSafetensors, readSafetensorsHeader } from '../../src/model/safetensors.ts';
import { DEMO_SCHEDULE } from '../../src/train/defaults.ts';
import type { BrowserSession } from '../helpers/browser.ts';
import {
  axeViolations,
  evaluatedRun,
  longTasks,
  now,
  openApp,
  openBuiltAppSession,
  overflowAtWidths,
  runDoneAt,
  screenshot,
  setFields,
  setQuickRun,
  storedRuns,
  waitForCheckpoint,
  waitForDemoReady,
  watchRunDone,
  waitForRunState,
} from './app.ts';

// The production build, as users get it: what the build ships is checked against what the flow loads.
const DIST = 'test-output/dist-demo-flow';
let session: BrowserSession & { requests: string[] };
beforeAll(async () => {
  session = await openBuiltAppSession(DIST);
}, 300_000);
afterAll(async () => session?.close());

async function download(page: Page, button: string, name: RegExp): Promise<Record<string, Uint8Array>> {
  const [file] = await Promise.all([page.waitForEvent('download', { timeout: 120_000 }), page.getByRole('button', { name: button }).click()]);
  expect(file.suggestedFilename()).toMatch(name);
  return unzipSync(new Uint8Array(readFileSync(await file.path())));
}

/** The checks every stage of the guided flow passes: axe, no sideways scrolling, a screenshot that is not blank. */
async function checkStage(page: Page, stage: string, shot: string): Promise<void> {
  await screenshot(page, shot);
  expect(await axeViolations(page), `accessibility violations ${stage}`).toEqual([]);
  expect(await overflowAtWidths(page), `horizontal scroll ${stage}`).toEqual([]);
}

it('walks the guided flow on the demo preset: choose data, train, see a clear change; explores and exports', async () => {
  const { page, errors } = await openApp(session);
  await waitForDemoReady(page);
  // The first screen: what the tool does for a clinician, three steps, the demo preset chosen, every hyperparameter tucked away.
  await page.getByText(/^Teach a medical text-search model your own vocabulary/).waitFor();
  expect(await page.getByRole('navigation', { name: 'Steps' }).getByRole('link').allTextContents()).toEqual(['Choose data', 'Train', 'See what changed']);
  expect(await page.getByRole('radio', { name: 'Demo: see a change in about a minute' }).isChecked()).toBe(true);
  expect(await page.locator('details.advanced').count()).toBeGreaterThanOrEqual(3);
  expect(await page.locator('details.advanced[open]').count()).toBe(0);
  expect(await page.getByRole('spinbutton').count(), 'number fields outside the Advanced settings drawers').toBe(0);
  await checkStage(page, 'at step 1 (the demo chosen)', '01-choose-data');

  await page.getByRole('button', { name: 'Start training' }).click();
  await waitForRunState(page, 'training', 60_000);
  const started = await now(page);
  await watchRunDone(page);
  await waitForCheckpoint(page, DEMO_SCHEDULE.checkpointEvery);
  // The stage's checks lay out, paint and scan the whole page on the main thread: the test's own work, not the app's.
  const shotStart = await now(page);
  await checkStage(page, 'at step 2 (training)', '02-training');
  const shotEnd = await now(page);
  const finished = await runDoneAt(page);
  const tasks = [...(await longTasks(page, started, shotStart)), ...(await longTasks(page, shotEnd, finished))];
  console.log(
    `main-thread long tasks while training (${((finished - started - (shotEnd - shotStart)) / 1000).toFixed(1)} s observed, from ${started.toFixed(0)} to ${finished.toFixed(0)} ms): ` +
      `${tasks.length}${tasks.length ? ` ${JSON.stringify(tasks)}` : ''}`,
  );

  await page.getByRole('table', { name: /Base vs adapted model/ }).waitFor({ timeout: 300_000 });
  const [run] = await storedRuns(page);
  expect(run.status).toBe('done');
  expect(run.history.map((s) => s.step)).toEqual(Array.from({ length: DEMO_SCHEDULE.steps }, (_, i) => i + 1));
  expect(run.history.every((s) => Number.isFinite(s.loss) && s.loss > 0)).toBe(true);
  expect(Object.keys(run.metrics ?? {})).toContain('cardio_separation');
  // The memory plan is shown with the estimate, and the measured peak beside it once training ran.
  const trainDrawer = page.locator('details.advanced', { hasText: 'GPU memory estimate' });
  await trainDrawer.locator('summary').click();
  const planText = (await trainDrawer.getByText(/goes through the model/).textContent({ timeout: 10_000 })) ?? '';
  expect(planText.replace(/\s+/g, ' ')).toMatch(/The whole batch goes through the model at once; every layer keeps its activations\./);
  await expect.poll(() => trainDrawer.getByRole('row', { name: /Measured peak while training/ }).count()).toBe(1);
  await trainDrawer.locator('summary').click();
  // The demo preset is tuned to show a change: the separation's interval excludes zero, and the page says so in plain words.
  const headline = await page.getByTestId('headline').textContent();
  expect(headline).toMatch(/^Cardiology separation/);
  expect(headline).toMatch(/a clear increase of \+0\.\d{3} \(95% interval \+0\.\d{3} to \+0\.\d{3}, which excludes zero\)/);
  await checkStage(page, 'at step 3 (evaluated)', '03-evaluated');

  await page.getByRole('button', { name: 'Draw the maps' }).click();
  await expect.poll(() => page.getByRole('figure', { name: /t-SNE map/ }).count(), { timeout: 300_000 }).toBe(2);
  await screenshot(page, '04-maps');
  // Each map is reachable by keyboard and readable as a table.
  const firstMap = page.getByRole('figure', { name: /t-SNE map/ }).first();
  expect(await firstMap.locator('canvas').getAttribute('tabindex')).toBe('0');
  await firstMap.getByText('The points as a table').click();
  // The table is rendered on the details' toggle event, a task after the click.
  await expect.poll(() => firstMap.locator('tbody tr').count(), { timeout: 10_000 }).toBeGreaterThan(10);

  await page.getByLabel('Find the evaluation texts nearest to').fill('aortic valve stenosis');
  await page.getByRole('button', { name: 'Search' }).click();
  const adaptedList = page.getByRole('list', { name: 'Nearest under the adapted model' });
  await expect.poll(() => adaptedList.getByRole('listitem').count(), { timeout: 60_000 }).toBe(5);
  expect(await page.getByRole('list', { name: 'Nearest under the base model' }).getByRole('listitem').count()).toBe(5);
  // Demo numbers never appear without the demo notice.
  expect(await page.getByRole('region', { name: 'Ask both models — nearest texts' }).getByText(/^The bundled demo model has random weights/).count()).toBe(1);
  await checkStage(page, 'at step 3 (mapped and explored, a run in the history)', '05-explore');

  // PEFT adapter: PEFT's key names and shapes, readable by the PEFT reader.
  const adapterZip = await download(page, 'PEFT adapter (zip)', /^demo-bert-run-[\w-]+-adapter-peft\.zip$/);
  expect(Object.keys(adapterZip).sort()).toEqual(['README.md', 'adapter_config.json', 'adapter_model.safetensors', 'qlora_lab.json']);
  expect(new TextDecoder().decode(adapterZip['README.md'])).toContain('The bundled demo model has random weights');
  expect(JSON.parse(new TextDecoder().decode(adapterZip['qlora_lab.json']))).toMatchObject({ base_model: 'demo-bert', pooling: 'mean', normalize: true, max_seq_length: 64 });
  const keys = readSafetensorsHeader(adapterZip['adapter_model.safetensors']).entries.map((e) => e.name);
  expect(keys.length).toBeGreaterThan(0);
  for (const key of keys) expect(key).toMatch(/^base_model\.model\.encoder\.layer\.\d+\.attention\.self\.(query|value)\.lora_[AB]\.weight$/);
  const adapter = readPeftAdapter({ 'adapter_config.json': adapterZip['adapter_config.json'], 'adapter_model.safetensors': adapterZip['adapter_model.safetensors'] });
  expect(adapter.config).toMatchObject({ r: 16, loraAlpha: 32, targetModules: ['query', 'value'], baseModelNameOrPath: 'demo-bert' });
  const config = JSON.parse(new TextDecoder().decode(adapterZip['adapter_config.json']));
  expect(config).toMatchObject({ peft_type: 'LORA', task_type: 'FEATURE_EXTRACTION' });

  // Merged model: a sentence-transformers folder whose query weight is base + scale·B·A.
  const merged = await download(page, 'Merged model (zip)', /^demo-bert-run-[\w-]+-merged-model\.zip$/);
  expect(Object.keys(merged)).toEqual(
    expect.arrayContaining(['config.json', 'model.safetensors', 'tokenizer_config.json', 'modules.json', '1_Pooling/config.json', 'sentence_bert_config.json', 'config_sentence_transformers.json']),
  );
  expect(JSON.parse(new TextDecoder().decode(merged['1_Pooling/config.json']))).toMatchObject({ pooling_mode_mean_tokens: true, pooling_mode_cls_token: false });
  const mergedWeights = parseSafetensors(merged['model.safetensors']).tensors;
  const baseWeights = parseSafetensors(new Uint8Array(readFileSync('public/models/demo-bert/model.safetensors'))).tensors;
  const module = 'encoder.layer.1.attention.self.query';
  const w0 = baseWeights.get(`${module}.weight`)!;
  const w1 = mergedWeights.get(`${module}.weight`)!;
  const a = adapter.tensors.get(`${module}.lora_A`)!;
  const b = adapter.tensors.get(`${module}.lora_B`)!;
  const scale = loraScale({ r: 16, alpha: 32, rslora: false });
  const [out, inF] = w0.shape;
  let maxError = 0;
  let maxDelta = 0;
  for (let o = 0; o < out; o++) {
    for (let i = 0; i < inF; i++) {
      let delta = 0;
      for (let k = 0; k < 16; k++) delta += b.data[o * 16 + k] * a.data[k * inF + i];
      maxDelta = Math.max(maxDelta, Math.abs(scale * delta));
      maxError = Math.max(maxError, Math.abs(w0.data[o * inF + i] + scale * delta - w1.data[o * inF + i]));
    }
  }
  expect(maxDelta).toBeGreaterThan(0); // training moved B away from its zero init
  expect(maxError).toBeLessThan(1e-6);

  // The run for sentence-transformers: the rows it fed (steps × batch), its test rows, run.json, train.py.
  const runExport = await download(page, 'Run for sentence-transformers (zip)', /^demo-bert-run-[\w-]+-run-sentence-transformers\.zip$/);
  expect(Object.keys(runExport).sort()).toEqual(['README.md', 'requirements.txt', 'run.json', 'test.jsonl', 'train.jsonl', 'train.py']);
  expect(new TextDecoder().decode(runExport['train.jsonl']).trim().split('\n')).toHaveLength(DEMO_SCHEDULE.steps * DEMO_SCHEDULE.batchSize);
  expect(JSON.parse(new TextDecoder().decode(runExport['run.json']))).toMatchObject({ model: { name_or_path: 'demo-bert', kind: 'bundled' }, steps: DEMO_SCHEDULE.steps, batch_size: DEMO_SCHEDULE.batchSize });

  // Embeddings for the Projector: one metadata row per vector.
  const tsv = await download(page, 'Embeddings, adapted (TSV, zip)', /^demo-bert-run-[\w-]+-embeddings-adapted\.zip$/);
  const vectors = new TextDecoder().decode(tsv['vectors.tsv']).trim().split('\n');
  const metadata = new TextDecoder().decode(tsv['metadata.tsv']).trim().split('\n');
  expect(metadata.length).toBe(vectors.length + 1); // a header row: text, label
  expect(vectors[0].split('\t').length).toBe(64);
  await screenshot(page, '06-exported');
  expect(errors.filter((e) => e.startsWith('pageerror'))).toEqual([]);
  expect(tasks, 'main-thread tasks over 50 ms while training').toEqual([]);

  // Every large file of the build was loaded by this flow: nothing heavy ships that the app never uses.
  // The demo decoder belongs to the decoder flow, which loads it (answers.browser.test.ts).
  const files = (dir: string): string[] => readdirSync(dir).flatMap((f) => (statSync(join(dir, f)).isDirectory() ? files(join(dir, f)) : [join(dir, f)]));
  const unused = files(DIST)
    .filter((f) => statSync(f).size > 64 * 1024)
    .map((f) => `/${relative(DIST, f)}`)
    .filter((path) => !path.startsWith('/models/demo-decoder/') && !session.requests.includes(path));
  expect(unused, 'build files over 64 KB that the demo flow never requested').toEqual([]);
}, 900_000);

it('redraws a t-SNE map of the evaluation texts at each checkpoint when asked; a later visit opens the run without evaluating again', async () => {
  const { page } = await openApp(session);
  await waitForDemoReady(page);
  // Two steps, a checkpoint after each: a map at step 1, then redrawn at step 2.
  await setQuickRun(page);
  await setFields(page, { steps: 2, checkpointEvery: 1 });
  await page.getByLabel(/Redraw a t-SNE map of the evaluation texts at every checkpoint/).check();
  await page.getByRole('button', { name: 'Start training' }).click();
  await page.getByRole('heading', { name: "The adapted model's map at step 1" }).waitFor({ timeout: 300_000 });
  await page.getByRole('region', { name: 'Training' }).getByRole('figure', { name: /t-SNE map/ }).waitFor();
  await screenshot(page, '18-live-map');
  await waitForRunState(page, 'done');
  await page.getByRole('heading', { name: "The adapted model's map at step 2" }).waitFor({ timeout: 120_000 });
  const run = await evaluatedRun(page);

  // On a later visit, Open in the run history shows the stored evaluation as it was, without
  // embedding again; the search embeds on first use.
  await page.reload();
  await waitForDemoReady(page);
  await page.getByRole('table', { name: /^Runs in this browser/ }).getByRole('button', { name: 'Open' }).click();
  const table = page.getByRole('table', { name: /Base vs adapted model/ });
  await table.waitFor({ timeout: 60_000 });
  // Evaluating again would have rewritten the stored record.
  expect((await storedRuns(page))[0].updatedAt).toBe(run.updatedAt);
  const separation = run.metrics!.cardio_separation;
  expect(await table.locator('tbody tr').filter({ has: page.locator('summary', { hasText: /^Cardiology separation$/ }) }).textContent()).toContain(separation.after.toFixed(3));
  await page.getByLabel('Find the evaluation texts nearest to').fill('aortic valve stenosis');
  await page.getByRole('button', { name: 'Search' }).click();
  await expect.poll(() => page.getByRole('list', { name: 'Nearest under the adapted model' }).getByRole('listitem').count(), { timeout: 120_000 }).toBe(5);
}, 600_000);
