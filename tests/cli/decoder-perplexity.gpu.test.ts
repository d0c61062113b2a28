/**
 * The clinical two-adapter recipe with the CLI on the tiny decoder: a domain adapter trained with
 * next-token loss on a folder of notes (`train --objective causal-lm --notes`, some documents held
 * out), and `eval --notes` reporting the held-out notes' perplexity before and after; then a task adapter trained on labelled statements
 * over the frozen domain adapter (`train --objective statements --stack domain`), evaluated with
 * and without the domain adapter under it (perplexity and zero-shot statement accuracy). The figures are the library's (textLosses on the same adapters), the columns
 * of one eval agree with another's where they name the same model. (Refusals of the options:
 * decoder-eval.gpu.test.ts.)
 */
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { readDecoderAdapterDir } from '../../src/cli/decoder.ts';
import { readNoteDocuments } from '../../src/cli/note-files.ts';
import { splitDocuments } from '../../src/data/notes.ts';
import type { BeforeAfterResult, MetricComparison } from '../../src/eval/before-after.ts';
import { perplexity, textLosses } from '../../src/eval/perplexity.ts';
import { openDecoderModel } from '../../src/model/decoder-checkpoint.ts';
import { createDecoderAdapter } from '../../src/model/decoder-lora.ts';
import { DecoderModel } from '../../src/model/decoder.ts';
import { localDirSource } from '../../src/model/node-files.ts';
import { loraConfigOf } from '../../src/model/peft-files.ts';
import { gpuEngine } from '../helpers/gpu.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { writeTinyDecoder } from '../helpers/tiny-decoder.ts';

const run = promisify(execFile);
const BIN = join(import.meta.dirname, '..', '..', 'bin', 'qlora-lab.js');
const cli = (args: string[]) => run('node', [BIN, ...args], { env: { ...process.env, QLORA_LAB_CACHE: tempDir('qll-cache-') } });

const NOTES = [
  'Patient seen in clinic with heart failure. On furosemide, oedema better.',
  'Review of atrial fibrillation. Rate controlled on bisoprolol.',
  'Chest pain on exertion, relieved by rest. Plan: exercise test.',
  'Heart failure clinic: weight stable, breathing better, furosemide the same.',
  'New atrial fibrillation on the ECG. Started apixaban and bisoprolol.',
  'Angina stable on the current plan. Review in clinic in three months.',
  'Oedema of both ankles, heart failure likely. Echo requested.',
  'Palpitations at night, ECG shows atrial fibrillation. Rate control started.',
  'Heart failure review: oedema better on furosemide.',
  'Atrial fibrillation clinic, rate controlled, ECG today.',
  'Chest pain at rest, ECG and troponin planned.',
  'Seen in clinic: breathing better, plan the same.',
];
/** A third of the 12 notes held out, by whole documents. */
const SPLIT = ['--held-out', '0.3', '--held-out-seed', '1'];
const TASK = [
  'Furosemide treats heart failure\ttrue',
  'Bisoprolol controls atrial fibrillation\ttrue',
  'Apixaban prevents stroke in atrial fibrillation\ttrue',
  'An exercise test looks for angina\ttrue',
  'Furosemide treats a broken wrist\tfalse',
  'Bisoprolol cures hay fever\tfalse',
  'Apixaban treats tooth decay\tfalse',
  'An exercise test looks for a skin rash\tfalse',
];
const TRAIN = ['--base', 'f32', '--r', '4', '--alpha', '8', '--epochs', '8', '--batch-size', '4', '--lr', '0.03', '--warmup-ratio', '0', '--seed', '2'];

function lines(dir: string, name: string, texts: string[]): string {
  const path = join(dir, name);
  writeFileSync(path, `${texts.join('\n')}\n`);
  return path;
}

type Report = BeforeAfterResult & { max_length: number; stack?: string[]; texts: { document: string; tokens: number; base_loss: number; adapted_loss: number }[] };

async function evaluate(dir: string, name: string, args: string[]): Promise<{ report: Report; ppl: MetricComparison; metric: (key: string) => MetricComparison; stdout: string; stderr: string }> {
  const out = join(dir, `${name}.json`);
  const { stdout, stderr } = await cli(['eval', ...args, '--base', 'f32', '--resamples', '50', '--out', out]);
  const report = JSON.parse(readFileSync(out, 'utf8')) as Report;
  const metric = (key: string) => report.metrics.find((m) => m.key === key) ?? expect.fail(`${name}: no ${key}`);
  return { report, ppl: metric('perplexity'), metric, stdout, stderr };
}

/** The held-out perplexity the library gives with these adapter folders stacked in order. */
async function libraryPerplexity(model: string, adapterDirs: string[], texts: string[]): Promise<number> {
  const files = await openDecoderModel(localDirSource(model));
  const engine = await gpuEngine();
  const decoder = await DecoderModel.create(engine, files.config, files.weights, { quantization: 'f32' });
  for (const dir of adapterDirs) {
    const peft = await readDecoderAdapterDir(dir, files.config);
    decoder.adapters.push(createDecoderAdapter(engine, files.config, loraConfigOf(peft), peft.tensors, false));
  }
  const losses = await textLosses(decoder, files.tokenizer, texts, { maxLength: 128 });
  decoder.destroy();
  return perplexity(losses);
}

describe('the two-adapter recipe on the command line', () => {
  it('trains a domain adapter on notes, a statement task adapter on top, and reports perplexity and statement accuracy with and without the stack', async () => {
    const dir = tempDir('qll-two-adapters-');
    const model = writeTinyDecoder(dir, { seed: 6 });
    const notes = join(dir, 'notes');
    mkdirSync(notes);
    NOTES.forEach((text, i) => writeFileSync(join(notes, `note-${String(i).padStart(2, '0')}.txt`), `${text}\n`));
    const { heldOut } = splitDocuments(await readNoteDocuments(notes), 0.3, 1);
    const heldOutTexts = heldOut.map((d) => d.text);
    const domain = join(dir, 'domain');
    const task = join(dir, 'task');
    const { stderr: domainLog } = await cli(['train', '--model', model, '--notes', notes, ...SPLIT, '--max-length', '48', '--objective', 'causal-lm', '--out', domain, ...TRAIN]);
    expect(domainLog).toContain(`notes: 8 documents in 15 sequences of at most 48 tokens; 4 held out (${heldOut.map((d) => d.name).join(', ')})`);
    expect(domainLog).toContain('15 texts, 32 steps of 4');

    // The domain adapter on held-out notes: the library's figures, and a lower perplexity.
    const domainEval = await evaluate(dir, 'domain', ['--model', model, '--notes', notes, ...SPLIT, '--adapter', domain]);
    expect(domainEval.stdout).toMatch(/Perplexity \(held-out texts\) \*\s+4 /);
    expect(domainEval.stdout).toContain('Intervals: 95% percentile bootstrap, 50 paired resamples, seed 0.');
    expect(domainEval.report.max_length).toBe(128); // the default 512, cut to the model's positions
    expect(domainEval.report.texts.map((t) => t.document)).toEqual(heldOut.map((d) => d.name));
    const plain = await libraryPerplexity(model, [], heldOutTexts);
    const adapted = await libraryPerplexity(model, [domain], heldOutTexts);
    expect(domainEval.ppl.base.value).toBeCloseTo(plain, 3);
    expect(domainEval.ppl.adapted.value).toBeCloseTo(adapted, 3);
    expect(domainEval.ppl.adapted.value).toBeLessThan(0.9 * domainEval.ppl.base.value);
    expect(domainEval.ppl.change.high).toBeLessThan(0);
    const total = domainEval.report.texts.reduce((s, t) => ({ tokens: s.tokens + t.tokens, loss: s.loss + t.base_loss }), { tokens: 0, loss: 0 });
    expect(Math.exp(total.loss / total.tokens)).toBeCloseTo(domainEval.ppl.base.value, 9);

    // A task adapter on labelled statements over the frozen domain adapter.
    const statements = lines(dir, 'task.tsv', TASK);
    const { stderr: taskLog } = await cli(['train', '--model', model, '--data', statements, '--objective', 'statements', '--stack', domain, '--out', task, ...TRAIN]);
    expect(taskLog).toContain('8 statements, 16 steps of 4');
    const losses = taskLog.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l).loss as number);
    expect(losses).toHaveLength(16);
    expect(losses[15]).toBeLessThan(losses[0] - 0.1);

    // With the domain adapter under the task adapter: "base" is then base + domain, the domain eval's adapted model.
    const stacked = await evaluate(dir, 'stacked', ['--model', model, '--notes', notes, ...SPLIT, '--statements', statements, '--stack', domain, '--adapter', task]);
    expect(stacked.report.metrics.map((m) => m.key)).toEqual(['zero_shot_accuracy', 'zero_shot_auroc', 'perplexity']);
    expect(stacked.stderr).toContain(`base: the model with ${domain} stacked; adapted: with ${task} on top`);
    expect(stacked.report.stack).toEqual([domain]);
    expect(stacked.ppl.base.value).toBeCloseTo(domainEval.ppl.adapted.value, 4);
    expect(stacked.ppl.adapted.value).toBeCloseTo(await libraryPerplexity(model, [domain, task], heldOutTexts), 3);
    // The task adapter without the domain adapter under it: another model, measured from the plain base.
    const alone = await evaluate(dir, 'alone', ['--model', model, '--notes', notes, ...SPLIT, '--statements', statements, '--adapter', task]);
    expect(alone.ppl.base.value).toBeCloseTo(domainEval.ppl.base.value, 4);
    expect(Math.abs(alone.ppl.adapted.value - stacked.ppl.adapted.value)).toBeGreaterThan(1e-2);
    // The statement training separates its statements, with or without the domain adapter under it.
    for (const run of [stacked, alone]) expect(run.metric('zero_shot_auroc').adapted.value).toBeGreaterThan(run.metric('zero_shot_auroc').base.value + 0.2);
  }, 600_000);

});
