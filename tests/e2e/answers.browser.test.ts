/**
 * Answers side by side in the app: the bundled demo decoder loads beside the demo encoder and says
 * what it is; a prompt generates from the base alone (no adapter yet, and the page says so), then
 * from base and adapter together, each pane's text equal to what the library generates in Node from
 * the same files, prompt and seed; Stop ends both answers; no main-thread task over 50 ms meanwhile,
 * no accessibility violation and no sideways scrolling.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { AnswersRequest } from '../../src/app/protocol.ts';
import { parseDecoderConfig } from '../../src/model/decoder-config.ts';
import type { BrowserSession } from '../helpers/browser.ts';
import { gpuEngine } from '../helpers/gpu.ts';
import { libraryAnswer } from '../helpers/library-answer.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { tinyDecoderAdapterFiles } from '../helpers/tiny-decoder.ts';
import { axeViolations, longTasks, now, openApp, openAppSession, overflowAtWidths, screenshot } from './app.ts';

const FOLDER = 'public/models/demo-decoder';
const SAMPLED: AnswersRequest = { prompt: 'the aortic valve is', chat: true, maxNewTokens: 10, temperature: 0.8, topP: 0.9, seed: 5 };
/** Greedy and long: Stop comes long before the end. */
const LONG: AnswersRequest = { ...SAMPLED, maxNewTokens: 80, temperature: 0, topP: 1 };

let session: BrowserSession;
beforeAll(async () => {
  session = await openAppSession();
});
afterAll(async () => session?.close());

it('loads the demo decoder, answers side by side as the library does, and stops', async () => {
  const dir = join(tempDir('qll-answers-'), 'tiny-adapter');
  mkdirSync(dir);
  const adapter = tinyDecoderAdapterFiles(parseDecoderConfig(JSON.parse(readFileSync(`${FOLDER}/config.json`, 'utf8'))), 7);
  const adapterPaths = Object.entries(adapter).map(([name, content]) => {
    writeFileSync(join(dir, name), content);
    return join(dir, name);
  });
  const engine = await gpuEngine();
  const expectedBase = await libraryAnswer(engine, FOLDER, { ...SAMPLED, quantization: 'nf4' });
  const expectedAdapted = await libraryAnswer(engine, FOLDER, { ...SAMPLED, quantization: 'nf4', adapter });
  expect(expectedAdapted.text).not.toBe(expectedBase.text);
  const long = await libraryAnswer(engine, FOLDER, { ...LONG, quantization: 'nf4' });
  expect(long.tokens, 'the greedy answer must not end before Stop').toBe(LONG.maxNewTokens);

  const { page, errors } = await openApp(session);
  await page.getByText(/^Loaded demo-bert/).waitFor({ timeout: 240_000 });
  const section = page.getByRole('region', { name: /^Answers side by side/ });
  await section.getByRole('button', { name: 'Load the demo decoder' }).click();
  await page
    .getByText('Decoder for the answers side by side: demo-decoder (bundled smoke-test model): a Llama decoder LLM, 2 layers, hidden 32, 32,928 parameters, NF4.')
    .waitFor({ timeout: 120_000 });
  await section.getByText(/random weights: its answers are noise/).waitFor();
  await section.getByText('No adapter yet: the base model answers alone.').waitFor();

  const fill = async (r: AnswersRequest) => {
    await section.getByLabel('Prompt').fill(r.prompt);
    const drawer = section.locator('details.advanced');
    if ((await drawer.getAttribute('open')) === null) await drawer.locator('summary').click();
    await section.getByLabel('Most new tokens').fill(String(r.maxNewTokens));
    await section.getByLabel(/^Temperature/).fill(String(r.temperature));
    await section.getByLabel(/^Top-p/).fill(String(r.topP));
    await section.getByLabel(/^Seed/).fill(String(r.seed));
  };
  const base = section.getByTestId('answer-base');
  const adapted = section.getByTestId('answer-adapted');
  const ended = (pane: string) => section.locator(`[aria-label^="${pane}"] [data-answer-end]`);

  // No adapter: the base answers alone.
  await fill(SAMPLED);
  await section.getByRole('button', { name: 'Generate' }).click();
  await expect.poll(() => ended('Base model').getAttribute('data-answer-end'), { timeout: 120_000 }).not.toBe('generating');
  expect(await base.textContent()).toBe(expectedBase.text);
  expect(await adapted.count()).toBe(0);

  // With the adapter: both panes, streamed together, each as the library generates it.
  await section.getByLabel(/^adapter_config\.json and adapter_model\.safetensors/).setInputFiles(adapterPaths);
  await section.getByText(/^Adapted answers use adapter_config\.json: /).waitFor({ timeout: 60_000 });
  const from = await now(page);
  await section.getByRole('button', { name: 'Generate' }).click();
  for (const pane of ['Base model', 'Adapted model']) await expect.poll(() => ended(pane).getAttribute('data-answer-end'), { timeout: 120_000 }).not.toBe('generating');
  expect(await base.textContent()).toBe(expectedBase.text);
  expect(await adapted.textContent()).toBe(expectedAdapted.text);
  expect(await longTasks(page, from, await now(page))).toEqual([]);
  await screenshot(page, '30-answers-side-by-side');
  expect(await axeViolations(page)).toEqual([]);
  expect(await overflowAtWidths(page)).toEqual([]);

  // Stop ends both answers early; what they show is the start of the full answer.
  await fill(LONG);
  await section.getByRole('button', { name: 'Generate' }).click();
  await expect.poll(async () => ((await base.textContent()) ?? '').length, { timeout: 120_000 }).toBeGreaterThan(1);
  await section.getByRole('button', { name: 'Stop' }).click();
  for (const pane of ['Base model', 'Adapted model']) await expect.poll(() => ended(pane).getAttribute('data-answer-end'), { timeout: 60_000 }).toBe('stopped');
  const stopped = ((await base.textContent()) ?? '').replace(/\uFFFD$/, '');
  expect(long.text.startsWith(stopped)).toBe(true);
  expect(stopped.length).toBeLessThan(long.text.length);
  expect(await section.getByRole('button', { name: 'Generate' }).isEnabled()).toBe(true);
  expect(errors).toEqual([]);
}, 600_000);
