/**
 * The CTD LLM study in the app, on the bundled demo decoder and the bundled Mendelian set (CTD
 * layout): the step's memory plan is shown before training and the measured peak after its first
 * step; the statements train a QLoRA adapter in the worker with the loss streamed and no
 * main-thread task over 50 ms; the zero-shot accuracy and AUROC table before/after is what the
 * library computes in Node from the same statements, base and exported adapter, followed by the
 * embedding metrics and a t-SNE map per model coloured by true / false or by disease; the exported zip is
 * a PEFT CAUSAL_LM folder of the study's preset, and the merged model's zip is the library's merge
 * of the base and that adapter, byte for byte, and loads back; the adapted answer is the library's
 * answer with that adapter; the run's share link, opened in a fresh browser context, reruns it with
 * identical losses.
 */
import { readFileSync } from 'node:fs';
import { unzipSync, strFromU8, strToU8 } from 'fflate';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { AnswersRequest } from '../../src/app/protocol.ts';
import { encodeStudyStatements } from '../../src/app/statement-run.ts';
import { parseCtd } from '../../src/data/ctd.ts';
import { GraphBuilder } from '../../src/data/graph.ts';
import { buildCtdStatements } from '../../src/data/statements.ts';
import { formatInterval } from '../../src/eval/format.ts';
import { METRIC_HELP } from '../../src/eval/help.ts';
import { statementComparisons } from '../../src/eval/statement-accuracy.ts';
import { openDecoderModel } from '../../src/model/decoder-checkpoint.ts';
import { createDecoderAdapter } from '../../src/model/decoder-lora.ts';
import { mergedDecoderFolder } from '../../src/model/decoder-merge.ts';
import { readDecoderPeftAdapter } from '../../src/model/decoder-peft.ts';
import { allLinearTargets } from '../../src/model/decoder-weights.ts';
import { DecoderModel } from '../../src/model/decoder.ts';
import { fileMapSource } from '../../src/model/file-source.ts';
import { localDirSource } from '../../src/model/node-files.ts';
import { type PeftAdapterFiles, loraConfigOf } from '../../src/model/peft-files.ts';
import { scoreStatements } from '../../src/model/statement-score.ts';
import type { StatementRunConfig } from '../../src/train/shared-run.ts';
import { readShareLink, shareLink } from '../../src/ui/share-link.ts';
import type { BrowserSession } from '../helpers/browser.ts';
import { gpuEngine } from '../helpers/gpu.ts';
import { libraryAnswer } from '../helpers/library-answer.ts';
import { fileStream } from '../data/streams.ts';
import { axeViolations, longTasks, now, openApp, openAppSession, overflowAtWidths, screenshot } from './app.ts';

const FOLDER = 'public/models/demo-decoder';
const RUN = { steps: 6, batchSize: 8, learningRate: 1e-2, seed: 1 };
const SAMPLED: AnswersRequest = { prompt: 'CFTR is associated with', chat: true, maxNewTokens: 10, temperature: 0.8, topP: 0.9, seed: 5 };

let session: BrowserSession;
beforeAll(async () => {
  session = await openAppSession();
});
afterAll(async () => session?.close());

/**
 * The library's zero-shot scoring of the held-out statements in Node: the base's margins at once
 * (while the browser trains), then the comparisons with an adapter's margins.
 */
async function libraryStudy() {
  const graph = new GraphBuilder();
  for await (const chunk of parseCtd(await fileStream('public/data/mendelian-gene-disease.csv'))) for (const r of chunk.rows) graph.add(r.geneId, r.geneSymbol, r.diseaseId, r.diseaseName);
  const files = await openDecoderModel(localDirSource(FOLDER));
  const test = encodeStudyStatements(files, buildCtdStatements(graph.finish(), 'random', RUN.seed).test, 'held-out', 'demo-decoder');
  const engine = await gpuEngine();
  const model = await DecoderModel.create(engine, files.config, files.weights, { quantization: 'nf4' });
  const margins = async () => (await scoreStatements(model, test.encoded, { padId: files.tokenizer.padId })).map((s) => s.margin);
  const before = await margins();
  return {
    config: files.config,
    test,
    async compareWith(adapter: PeftAdapterFiles) {
      const peft = readDecoderPeftAdapter(adapter, files.config);
      model.adapters = [createDecoderAdapter(engine, files.config, { ...loraConfigOf(peft), dropout: 0 }, peft.tensors, false)];
      const after = await margins();
      model.adapters[0].release();
      model.destroy();
      return statementComparisons(before, after, test.labels, { seed: RUN.seed });
    },
  };
}

it('trains the demo decoder on CTD statements, shows zero-shot accuracy before/after, answers with the adapter, exports it and reruns it from a share link', async () => {
  const library = libraryStudy();
  const { page, errors } = await openApp(session);
  await page.getByText(/^Loaded demo-bert/).waitFor({ timeout: 240_000 });
  const answers = page.getByRole('region', { name: /^Answers side by side/ });
  await answers.getByRole('button', { name: 'Load the demo decoder' }).click();
  await page.getByText(/^Decoder for the answers side by side: demo-decoder/).waitFor({ timeout: 120_000 });

  const study = page.getByRole('region', { name: /^CTD statements/ });
  await study.getByRole('button', { name: 'Add the bundled Mendelian gene–disease set' }).click();
  await expect.poll(() => study.getByLabel('CTD gene–disease data').locator('option:checked').textContent(), { timeout: 60_000 }).toMatch(/^Mendelian gene–disease/);
  await study.getByLabel('How the held-out statements are kept apart').selectOption('random');
  await study.locator('details.advanced summary').click();
  // The bundled decoder gets the demo schedule (CTD_STUDY_DEMO_SCHEDULE: 8 steps at 1e-2).
  expect([await study.getByLabel('Training steps').inputValue(), await study.getByLabel('Peak learning rate').inputValue()]).toEqual(['8', '0.01']);
  await study.getByLabel('Training steps').fill(String(RUN.steps));
  await study.getByLabel('Statements per step').fill(String(RUN.batchSize));
  await study.getByLabel('Peak learning rate').fill(String(RUN.learningRate));
  await study.getByLabel(/^Seed/).fill(String(RUN.seed));

  // The step's memory plan under the app's budget (1.5 GiB), shown before training; the measured peak joins it after the first step.
  await expect
    .poll(() => study.getByTestId('study-plan').textContent(), { timeout: 60_000 })
    .toMatch(/memory plan: the whole step in one micro-batch, no checkpointing, f32 embeddings and head; estimate [\d.]+ [KM]iB of a 1\.5 GiB budget/);
  const from = await now(page);
  await study.getByRole('button', { name: 'Train on CTD statements' }).click();
  await study.getByText(/^Step 1 of 6, loss \d/).waitFor({ timeout: 120_000 });
  expect(await study.getByTestId('study-peak').textContent()).toMatch(/^[\d.]+ [KM]iB$/);
  // Training ends where the adapted model's scoring begins: no long task on the page until then.
  await study.getByText(/^Scoring the held-out statements with the adapted model/).waitFor({ timeout: 120_000 });
  expect(await longTasks(page, from, await now(page))).toEqual([]);
  const done = study.getByTestId('study-done');
  await done.waitFor({ timeout: 120_000 });
  const summary = (await done.textContent())!.replace(/\s+/g, ' ');
  expect(summary).toMatch(/^Trained 6 of 6 steps on \d+ statements, random 80\/20 split; \d+ held out; \d+ left out as longer than the decoder's positions\. Loss \d\.\d{4} → \d\.\d{4}\.$/);

  // The export: PEFT's CAUSAL_LM folder of the study's preset.
  const [file] = await Promise.all([page.waitForEvent('download', { timeout: 60_000 }), study.getByRole('button', { name: 'Download the adapter (PEFT, CAUSAL_LM)' }).click()]);
  expect(file.suggestedFilename()).toBe('demo-decoder-ctd-statements-adapter-peft.zip');
  const zipped = unzipSync(new Uint8Array(readFileSync(await file.path())));
  expect(Object.keys(zipped).sort()).toEqual(['adapter_config.json', 'adapter_model.safetensors']);
  const adapter = { 'adapter_config.json': strFromU8(zipped['adapter_config.json']), 'adapter_model.safetensors': zipped['adapter_model.safetensors'] };
  const peftConfig = JSON.parse(adapter['adapter_config.json']);
  expect(peftConfig).toMatchObject({ task_type: 'CAUSAL_LM', peft_type: 'LORA', r: 16, lora_alpha: 32 });

  // The merged model: what the library's merge (qlora-lab merge's) makes of the base and that adapter, loading without PEFT.
  const [mergedFile] = await Promise.all([page.waitForEvent('download', { timeout: 60_000 }), study.getByRole('button', { name: 'Export merged model' }).click()]);
  expect(mergedFile.suggestedFilename()).toBe('demo-decoder-ctd-statements-merged.zip');
  const merged = unzipSync(new Uint8Array(readFileSync(await mergedFile.path())));
  const baseFiles = await openDecoderModel(localDirSource(FOLDER));
  const peft = readDecoderPeftAdapter(adapter, baseFiles.config);
  const expected = await mergedDecoderFolder(baseFiles, [{ config: loraConfigOf(peft), tensors: peft.tensors, source: 'the exported adapter' }]);
  expect(Object.keys(merged).sort()).toEqual(Object.keys(expected).sort());
  for (const [name, content] of Object.entries(expected)) expect(merged[name], name).toEqual(typeof content === 'string' ? strToU8(content) : content);
  const reread = await openDecoderModel(fileMapSource(new Map(Object.entries(merged).map(([name, bytes]) => [name, new Blob([bytes as Uint8Array<ArrayBuffer>])]))));
  expect((await reread.weights.readLayer(0)).size).toBeGreaterThan(0);

  // The table is the library's before/after on the same held-out statements.
  const { config, test, compareWith } = await library;
  const comparisons = await compareWith(adapter);
  expect([...peftConfig.target_modules].sort()).toEqual([...allLinearTargets(config)].sort());
  expect(summary).toContain(`; ${test.encoded.length} held out`);
  const table = study.getByRole('table');
  for (const m of comparisons) {
    const row = table.getByRole('row').filter({ has: page.getByText(METRIC_HELP[m.key].name, { exact: false }) });
    const cells = await row.getByRole('cell').allTextContents();
    expect(cells, m.key).toEqual([String(m.n), formatInterval(m.base), formatInterval(m.adapted), formatInterval(m.change, true)]);
  }

  // The encoder's embedding metrics follow, and a map per model coloured by true / false.
  for (const key of ['kg_separation', 'probe_accuracy', 'silhouette'] as const) await expect.poll(() => table.getByText(METRIC_HELP[key].name, { exact: false }).count()).toBeGreaterThan(0);
  const maps = study.locator('figure.scatter[data-drawn="true"]');
  await expect.poll(() => maps.count(), { timeout: 60_000 }).toBe(2);
  expect(await study.getByRole('list', { name: 'Colour key' }).first().textContent()).toMatch(/false statement.*true statement|true statement.*false statement/s);
  await study.getByLabel('Colour the points by').selectOption('disease');
  await expect.poll(() => study.getByRole('list', { name: 'Colour key' }).first().textContent()).not.toMatch(/true statement/);
  await screenshot(page, '31-ctd-statements');
  expect(await axeViolations(page)).toEqual([]);
  expect(await overflowAtWidths(page)).toEqual([]);

  // The adapted answers come from the trained adapter.
  await answers.getByText(/^Adapted answers use the adapter trained on CTD statements: LoRA r16 α32/).waitFor();
  await answers.getByLabel('Prompt').fill(SAMPLED.prompt);
  const drawer = answers.locator('details.advanced');
  await drawer.locator('summary').click();
  await answers.getByLabel('Most new tokens').fill(String(SAMPLED.maxNewTokens));
  await answers.getByLabel(/^Temperature/).fill(String(SAMPLED.temperature));
  await answers.getByLabel(/^Top-p/).fill(String(SAMPLED.topP));
  await answers.getByLabel(/^Seed/).fill(String(SAMPLED.seed));
  await answers.getByRole('button', { name: 'Generate' }).click();
  for (const pane of ['Base model', 'Adapted model']) {
    await expect.poll(() => answers.locator(`[aria-label^="${pane}"] [data-answer-end]`).getAttribute('data-answer-end'), { timeout: 120_000 }).not.toBe('generating');
  }
  const engine = await gpuEngine();
  const expectedBase = await libraryAnswer(engine, FOLDER, { ...SAMPLED, quantization: 'nf4' });
  const expectedAdapted = await libraryAnswer(engine, FOLDER, { ...SAMPLED, quantization: 'nf4', adapter });
  expect(expectedAdapted.text, 'the trained adapter changes the answer').not.toBe(expectedBase.text);
  expect(await answers.getByTestId('answer-base').textContent()).toBe(expectedBase.text);
  expect(await answers.getByTestId('answer-adapted').textContent()).toBe(expectedAdapted.text);
  expect(errors).toEqual([]);

  // The run's share link, opened in a fresh context (no stored data, nothing loaded), says what it
  // will run, waits for confirmation and reruns it: every loss identical (toEqual compares numbers with Object.is).
  const losses: number[] = JSON.parse((await done.getAttribute('data-losses'))!);
  expect(losses).toHaveLength(RUN.steps);
  await study.getByRole('button', { name: 'Make a share link' }).click();
  const link = new URL(await study.getByLabel('Share link').inputValue());
  const other = await openApp(session, link.pathname + link.hash);
  const offer = other.page.getByRole('region', { name: 'Rerun a shared setup?' });
  expect((await offer.textContent())!.replace(/\s+/g, ' ')).toMatch(
    /demo-decoder \(bundled smoke-test model\): nothing to download.*CTD statements from Mendelian gene–disease associations \(CTD layout\) \(bundled demo set\); random 80\/20 split\..*6 steps of 8 statements at a peak learning rate of 0\.01, seed 1/,
  );
  await offer.getByRole('button', { name: 'Rerun' }).click();
  // Every loss is in once the adapted model's scoring begins; what follows is the first run's code, checked above.
  const rerun = other.page.getByRole('region', { name: /^CTD statements/ });
  await rerun.getByText(/^Scoring the held-out statements with the adapted model/).waitFor({ timeout: 300_000 });
  expect(JSON.parse((await rerun.locator('[data-losses]').getAttribute('data-losses'))!)).toEqual(losses);
  expect(other.errors).toEqual([]);
  await other.context.close();

  // The same run on a file of the sender's: the receiver is asked for it, and another file is refused by fingerprint before any training.
  const sent = readShareLink(link.href) as StatementRunConfig;
  const fileLink = new URL(shareLink({ ...sent, data: { ...sent.data, source: { kind: 'file', name: 'my-ctd.csv' } } }, link.href));
  const third = await openApp(session, fileLink.pathname + fileLink.hash);
  await third.page.getByRole('region', { name: 'Rerun a shared setup?' }).getByRole('button', { name: 'Rerun' }).click();
  await third.page.getByText('The shared configuration trains on your file my-ctd.csv').waitFor({ timeout: 120_000 });
  const fewer = readFileSync('public/data/mendelian-gene-disease.csv', 'utf8').split('\n').slice(0, 60).join('\n');
  await third.page.getByLabel('CTD gene–disease file (CSV/TSV, .gz) or pair file (CSV, TSV, JSONL)').setInputFiles({ name: 'my-ctd.csv', mimeType: 'text/csv', buffer: Buffer.from(fewer) });
  const refusal = third.page.getByRole('region', { name: /^CTD statements/ }).getByRole('alert');
  await refusal.waitFor({ timeout: 120_000 });
  expect(await refusal.textContent()).toMatch(new RegExp(`^These are not the statements the link was made with: my-ctd\\.csv builds statements with fingerprint [0-9a-f]{16}, the link expects ${sent.data.fingerprint}\\.`));
  await third.page.getByText('The shared configuration trains on your file my-ctd.csv').waitFor();
  expect(third.errors).toEqual([]);
  await third.context.close();
}, 900_000);
