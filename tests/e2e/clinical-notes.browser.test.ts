/**
 * The clinical two-adapter flow in the app, on the bundled demo decoder: a dozen short notes picked
 * (and a non-UTF-8 file dropped, refused by name), a domain adapter trained in the worker with no
 * main-thread task over 50 ms, the held-out notes' perplexity table equal to the library's figures
 * in Node from the exported adapter; then a task adapter on a few labelled statements over the
 * frozen domain adapter, its with/without-domain table equal to the library's from both exports;
 * the run's share link (names and fingerprints, never the notes' text), opened in a fresh context,
 * refuses a changed note by name and, given the same files, reruns both adapters with identical losses.
 */
import { readFileSync } from 'node:fs';
import { strFromU8, unzipSync } from 'fflate';
import type { Locator, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { noteMaxLength } from '../../src/app/clinical-run.ts';
import { encodeStudyStatements } from '../../src/app/statement-run.ts';
import { parseStatementLines, splitLabelledStatements } from '../../src/data/labelled-statements.ts';
import { decodeNoteFiles, splitDocuments } from '../../src/data/notes.ts';
import type { MetricComparison } from '../../src/eval/before-after.ts';
import { formatInterval } from '../../src/eval/format.ts';
import { METRIC_HELP } from '../../src/eval/help.ts';
import { perplexityComparison, textLosses } from '../../src/eval/perplexity.ts';
import { statementComparisons } from '../../src/eval/statement-accuracy.ts';
import { openDecoderModel } from '../../src/model/decoder-checkpoint.ts';
import { createDecoderAdapter } from '../../src/model/decoder-lora.ts';
import { readDecoderPeftAdapter } from '../../src/model/decoder-peft.ts';
import { DecoderModel } from '../../src/model/decoder.ts';
import { localDirSource } from '../../src/model/node-files.ts';
import { type PeftAdapterFiles, loraConfigOf } from '../../src/model/peft-files.ts';
import { scoreStatements } from '../../src/model/statement-score.ts';
import type { ClinicalRunConfig } from '../../src/train/shared-run.ts';
import { readShareLink } from '../../src/ui/share-link.ts';
import type { BrowserSession } from '../helpers/browser.ts';
import { gpuEngine } from '../helpers/gpu.ts';
import { axeViolations, longTasks, now, openApp, openAppSession, overflowAtWidths, screenshot } from './app.ts';

const FOLDER = 'public/models/demo-decoder';
const RUN = { heldOutShare: 0.25, seed: 1, steps: 4, learningRate: 1e-2 };
const NOTES = [
  'Heart failure clinic. Furosemide, oedema better.',
  'Atrial fibrillation, rate controlled on bisoprolol.',
  'Chest pain on exertion. Plan: exercise test.',
  'Weight stable, breathing better, furosemide the same.',
  'New atrial fibrillation. Started apixaban.',
  'Angina stable. Review in three months.',
  'Ankle oedema, heart failure likely. Echo requested.',
  'Palpitations at night, ECG shows atrial fibrillation.',
  'Heart failure review: oedema better.',
  'Atrial fibrillation clinic, ECG today.',
  'Chest pain at rest, troponin planned.',
  'Seen in clinic, plan the same.',
].map((text, i) => ({ name: `note-${String(i).padStart(2, '0')}.txt`, mimeType: 'text/plain', buffer: Buffer.from(`${text}\n`) }));
const TASK = [
  'Furosemide treats heart failure\ttrue',
  'Bisoprolol controls atrial fibrillation\ttrue',
  'Apixaban prevents stroke\ttrue',
  'An exercise test looks for angina\ttrue',
  'Furosemide treats a broken wrist\tfalse',
  'Bisoprolol cures hay fever\tfalse',
  'Apixaban treats tooth decay\tfalse',
  'An exercise test looks for a rash\tfalse',
].join('\n');

let session: BrowserSession;
beforeAll(async () => {
  session = await openAppSession();
});
afterAll(async () => session?.close());

/** The library's figures in Node on the same notes and statements: the base's held-out losses at once, then each table from the exported adapters. */
async function libraryFigures() {
  const files = await openDecoderModel(localDirSource(FOLDER));
  const engine = await gpuEngine();
  const model = await DecoderModel.create(engine, files.config, files.weights, { quantization: 'nf4' });
  const documents = decodeNoteFiles(NOTES.map((n) => ({ name: n.name, bytes: new Uint8Array(n.buffer) })));
  const heldOut = splitDocuments(documents, RUN.heldOutShare, RUN.seed).heldOut;
  const losses = () => textLosses(model, files.tokenizer, heldOut.map((d) => d.text), { maxLength: noteMaxLength(files) });
  const before = await losses();
  const frozen = (adapter: PeftAdapterFiles) => {
    const peft = readDecoderPeftAdapter(adapter, files.config);
    return createDecoderAdapter(engine, files.config, { ...loraConfigOf(peft), dropout: 0 }, peft.tensors, false);
  };
  const bootstrap = { seed: RUN.seed };
  return {
    heldOut: heldOut.map((d) => d.name),
    async domainTable(domain: PeftAdapterFiles): Promise<MetricComparison[]> {
      model.adapters = [frozen(domain)];
      const after = await losses();
      model.adapters[0].release();
      return [perplexityComparison(before, after, bootstrap)];
    },
    async taskTable(domain: PeftAdapterFiles, task: PeftAdapterFiles): Promise<MetricComparison[]> {
      const test = encodeStudyStatements(files, splitLabelledStatements(parseStatementLines(TASK, 'task.tsv'), RUN.heldOutShare, RUN.seed).heldOut, 'held-out', 'demo-decoder');
      const [d, t] = [frozen(domain), frozen(task)];
      const margins = async () => (await scoreStatements(model, test.encoded, { padId: files.tokenizer.padId })).map((s) => s.margin);
      model.adapters = [t];
      const without = await margins();
      model.adapters = [d, t];
      const withDomain = await margins();
      d.release();
      t.release();
      model.destroy();
      return statementComparisons(without, withDomain, test.labels, bootstrap);
    },
  };
}

/** The adapter zip the button downloads, as PEFT's two files. */
async function downloadAdapter(page: Page, button: Locator, filename: string): Promise<PeftAdapterFiles> {
  const [file] = await Promise.all([page.waitForEvent('download', { timeout: 60_000 }), button.click()]);
  expect(file.suggestedFilename()).toBe(filename);
  const zipped = unzipSync(new Uint8Array(readFileSync(await file.path())));
  expect(Object.keys(zipped).sort()).toEqual(['adapter_config.json', 'adapter_model.safetensors']);
  const adapter = { 'adapter_config.json': strFromU8(zipped['adapter_config.json']), 'adapter_model.safetensors': zipped['adapter_model.safetensors'] };
  expect(JSON.parse(adapter['adapter_config.json'])).toMatchObject({ task_type: 'CAUSAL_LM', peft_type: 'LORA', r: 16, lora_alpha: 32 });
  return adapter;
}

/** Each metric's row of the table in `where` is the library's comparison, formatted. */
async function expectTable(page: Page, where: Locator, comparisons: MetricComparison[]): Promise<void> {
  for (const m of comparisons) {
    const row = where.getByRole('row').filter({ has: page.getByText(METRIC_HELP[m.key].name, { exact: false }) });
    expect(await row.getByRole('cell').allTextContents(), m.key).toEqual([String(m.n), formatInterval(m.base), formatInterval(m.adapted), formatInterval(m.change, true)]);
  }
}

it('trains a domain adapter on dropped notes, then a task adapter over it, with the library’s tables', async () => {
  const library = libraryFigures();
  const { page, errors } = await openApp(session);
  await page.getByText(/^Loaded demo-bert/).waitFor({ timeout: 240_000 });
  await page.getByRole('region', { name: /^Answers side by side/ }).getByRole('button', { name: 'Load the demo decoder' }).click();
  await page.getByText(/^Decoder for the answers side by side: demo-decoder/).waitFor({ timeout: 120_000 });

  const clinical = page.getByRole('region', { name: /^Clinical notes/ });
  await expect.poll(() => clinical.getByText('Your notes never leave this computer').count()).toBe(1);
  await clinical.getByLabel('Choose note files').setInputFiles(NOTES);
  await expect.poll(() => clinical.getByTestId('clinical-notes-count').textContent()).toMatch(/^12 note documents added, \d+ characters\.$/);
  // A Latin-1 file dropped on the zone is refused by name; the notes stay.
  const drop = await page.evaluateHandle(() => {
    const data = new DataTransfer();
    data.items.add(new File([new Uint8Array([0x63, 0x61, 0x66, 0xe9])], 'latin1.txt', { type: 'text/plain' }));
    return data;
  });
  await clinical.getByRole('group', { name: /^Drop a folder or files of notes/ }).dispatchEvent('drop', { dataTransfer: drop });
  await expect.poll(() => clinical.getByRole('alert').textContent()).toContain('latin1.txt is not UTF-8 text: save it as UTF-8 (plain text) and add it again');
  expect(await clinical.getByTestId('clinical-notes-count').textContent()).toMatch(/^12 note documents/);

  await clinical.locator('details.advanced summary').click();
  // The bundled decoder gets the demo schedule, as the CTD statements run does.
  expect([await clinical.getByLabel('Training steps (each adapter)').inputValue(), await clinical.getByLabel('Peak learning rate').inputValue(), await clinical.getByLabel(/^Share held out/).inputValue()]).toEqual(['8', '0.01', '0.2']);
  await clinical.getByLabel(/^Share held out/).fill(String(RUN.heldOutShare));
  await clinical.getByLabel(/^Seed/).fill(String(RUN.seed));
  await clinical.getByLabel('Training steps (each adapter)').fill(String(RUN.steps));
  await clinical.getByLabel('Peak learning rate').fill(String(RUN.learningRate));

  const from = await now(page);
  await clinical.getByRole('button', { name: 'Train the domain adapter on these notes' }).click();
  await clinical.getByText(/^Training the domain adapter: step [1-4] of 4, loss \d/).waitFor({ timeout: 120_000 });
  const domainDone = clinical.getByTestId('domain-done');
  await domainDone.waitFor({ timeout: 120_000 });
  // No long task on the page while the worker trained and measured, the results drawn included.
  expect(await longTasks(page, from, await now(page))).toEqual([]);
  const figures = await library;
  expect((await domainDone.textContent())!.replace(/\s+/g, ' ')).toMatch(
    new RegExp(`^Trained 4 of 4 steps on 9 notes in 9 sequences of at most 128 tokens; 3 held out \\(${figures.heldOut.join(', ').replace(/\./g, '\\.')}\\)\\. Loss \\d\\.\\d{4} → \\d\\.\\d{4}\\.$`),
  );
  const domain = await downloadAdapter(page, clinical.getByRole('button', { name: 'Download the domain adapter (PEFT, CAUSAL_LM)' }), 'demo-decoder-clinical-domain-adapter-peft.zip');
  await expectTable(page, clinical.getByTestId('domain-metrics'), await figures.domainTable(domain));

  await clinical.getByLabel(/^A file of labelled statements/).setInputFiles({ name: 'task.tsv', mimeType: 'text/plain', buffer: Buffer.from(TASK) });
  await clinical.getByText('task.tsv: 8 statements (4 true).').waitFor();
  await clinical.getByRole('button', { name: 'Train the task adapter on these statements' }).click();
  const taskDone = clinical.getByTestId('task-done');
  await taskDone.waitFor({ timeout: 180_000 });
  expect((await taskDone.textContent())!.replace(/\s+/g, ' ')).toMatch(/^Trained 4 of 4 steps on 6 statements; 2 held out\. Loss \d\.\d{4} → \d\.\d{4}\.$/);
  const taskTable = clinical.getByTestId('task-metrics');
  expect(await taskTable.getByRole('columnheader').allTextContents()).toEqual(['Metric', 'n', 'Task adapter alone [95% CI]', 'Domain + task adapter [95% CI]', 'Change [95% CI]']);
  const task = await downloadAdapter(page, clinical.getByRole('button', { name: 'Download the task adapter (PEFT, CAUSAL_LM)' }), 'demo-decoder-clinical-task-adapter-peft.zip');
  await expectTable(page, taskTable, await figures.taskTable(domain, task));
  await screenshot(page, '32-clinical-notes');
  expect(await axeViolations(page)).toEqual([]);
  expect(await overflowAtWidths(page)).toEqual([]);
  expect(errors).toEqual([]);

  // The share link names the files and fingerprints them; no note's text is in it.
  const losses = async (where: Locator) => ({ domain: JSON.parse((await where.getByTestId('domain-done').getAttribute('data-losses'))!), task: JSON.parse((await where.getByTestId('task-done').getAttribute('data-losses'))!) });
  const sentLosses = await losses(clinical);
  expect(sentLosses.task).toHaveLength(RUN.steps);
  await clinical.getByRole('button', { name: 'Make a share link' }).click();
  const link = new URL(await clinical.getByLabel('Share link').inputValue());
  const sent = readShareLink(link.href) as ClinicalRunConfig;
  expect(sent).toMatchObject({ kind: 'decoder-clinical', model: { kind: 'bundled', id: 'demo-decoder' }, task: { kind: 'file', name: 'task.tsv' }, ...RUN });
  expect(sent.notes.map((n) => n.name)).toEqual(NOTES.map((n) => n.name));
  for (const note of NOTES) expect(JSON.stringify(sent)).not.toContain(note.buffer.toString().trim());

  // Opened in a fresh context: it says what it runs and which files it needs, then waits for them.
  const other = await openApp(session, link.pathname + link.hash);
  const offer = other.page.getByRole('region', { name: 'Rerun a shared setup?' });
  expect((await offer.textContent())!.replace(/\s+/g, ' ')).toMatch(
    /demo-decoder \(bundled smoke-test model\): nothing to download.*Your notes: the 12 files note-00\.txt, .*never leave this computer\. Labelled statements: your file task\.tsv .*4 steps each at a peak learning rate of 0\.01, seed 1, 0\.25 held out/,
  );
  await offer.getByRole('button', { name: 'Rerun' }).click();
  const rerun = other.page.getByRole('region', { name: /^Clinical notes/ });
  const panel = rerun.getByRole('group', { name: 'Rerun the shared clinical run' });
  await panel.waitFor({ timeout: 120_000 });
  // A note whose text differs is refused by its name before any training.
  await rerun.getByLabel('Choose note files').setInputFiles([...NOTES.slice(0, -1), { ...NOTES.at(-1)!, buffer: Buffer.from('Seen in clinic, plan changed.\n') }]);
  await panel.getByLabel('The labelled statements file task.tsv').setInputFiles({ name: 'task.tsv', mimeType: 'text/plain', buffer: Buffer.from(TASK) });
  await panel.getByRole('button', { name: 'Rerun both adapters' }).click();
  await expect
    .poll(() => rerun.getByText(/^These are not the notes/).textContent(), { timeout: 60_000 })
    .toMatch(new RegExp(`^These are not the notes the link was made with: note-11\\.txt is not the note the link was made with: its text has fingerprint [0-9a-f]{16}, the link expects ${sent.notes.at(-1)!.fingerprint}\\.`));
  expect(await rerun.getByTestId('domain-done').count()).toBe(0);
  // The same files: both adapters rerun with every loss identical (toEqual compares numbers with Object.is).
  await rerun.getByRole('button', { name: 'Remove all notes' }).click();
  await rerun.getByLabel('Choose note files').setInputFiles(NOTES);
  await panel.getByRole('button', { name: 'Rerun both adapters' }).click();
  await rerun.getByTestId('task-done').waitFor({ timeout: 180_000 });
  expect(await losses(rerun)).toEqual(sentLosses);
  expect(other.errors).toEqual([]);
  await other.context.close();
}, 600_000);
