/**
 * Runs exported for sentence-transformers + PEFT: `qlora-lab export-run` (from train's options or
 * from a train adapter folder) and the app's export, checked by running the exported train.py's
 * --dry-run with Debian's /usr/bin/python3 and comparing its resolved configuration with the run's.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { describe, expect, it } from 'vitest';
import { readAdapterDir, readAdapterSettingsFile } from '../../src/cli/encoder.ts';
import { readPairFile } from '../../src/cli/pair-file.ts';
import { TRAIN_OPTIONS, TrainingOrder, trainPlan } from '../../src/cli/train-options.ts';
import { adapterFolder } from '../../src/model/adapter-settings.ts';
import { parseBertConfig } from '../../src/model/config.ts';
import { NO_SENTENCE_CONFIG } from '../../src/model/sentence-config.ts';
import { defaultRunConfig } from '../../src/train/run-config.ts';
import { appRunExport, runExportFiles } from '../../src/train/run-export.ts';
import { FIXTURES, fixtureModelDir, readFixtureAdapter, readSafetensorsFile } from '../helpers/fixtures.ts';
import { assertPythonTorch, runPython, skipWithoutPythonTorch } from '../helpers/python.ts';
import { tempDir } from '../helpers/temp-dir.ts';

const TINY = fixtureModelDir('tiny');

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, ['bin/qlora-lab.js', ...args], { encoding: 'utf8' });
  return { status: r.status, stderr: r.stderr };
}

function exportRun(...args: string[]): string {
  const out = join(tempDir('qll-export-'), 'run');
  const r = cli('export-run', ...args, '--out', out);
  expect(r.stderr).toMatch(/rows written to/);
  expect(r.status).toBe(0);
  return out;
}

function dryRun(dir: string, env: Record<string, string> = {}, ...args: string[]) {
  const r = spawnSync('/usr/bin/python3', [join(dir, 'train.py'), '--dry-run', ...args], { encoding: 'utf8', env: { PATH: process.env.PATH, ...env } });
  return { status: r.status, stderr: r.stderr, config: r.status === 0 ? JSON.parse(r.stdout) : null };
}

/** 21 anchor/positive/negative rows. */
function pairFile(): string {
  const path = join(tempDir('qll-pairs-'), 'pairs.csv');
  const rows = Array.from({ length: 21 }, (_, i) => `heart ${i} disease,cardiac ${i} illness,lung ${i} therapy`);
  writeFileSync(path, `anchor,positive,negative\n${rows.join('\n')}\n`);
  return path;
}

const jsonl = (path: string) => readFileSync(path, 'utf8').trim().split('\n').map((line) => JSON.parse(line));

const TRAIN_ARGS = (data: string) => [
  '--model', TINY, '--data', data, '--base', 'f32', '--pooling', 'cls', '--no-normalize', '--max-length', '32',
  '--r', '8', '--alpha', '16', '--lora-dropout', '0.05', '--rslora', '--targets', 'query,key,dense',
  '--scale', '30', '--symmetric', '--epochs', '2', '--batch-size', '4', '--grad-accum', '2', '--lr', '1e-4',
  '--warmup-ratio', '0.25', '--weight-decay', '0.02', '--max-grad-norm', '0', '--hidden-dropout', '0.05', '--seed', '7',
  '--prompt-query', 'query: ',
]; // prettier-ignore

describe('qlora-lab export-run', () => {
  it("writes the run's rows in feed order and a train.py whose dry run resolves to the run's configuration", async () => {
    const data = pairFile();
    const out = exportRun(...TRAIN_ARGS(data));
    expect(readdirSync(out).sort()).toEqual(['README.md', 'requirements.txt', 'run.json', 'train.jsonl', 'train.py']);
    // 21 rows → 2 steps of 2 × 4 per epoch, 2 epochs: 32 rows, exactly what train feeds, in its order.
    const rows = jsonl(join(out, 'train.jsonl'));
    const { values } = parseArgs({ args: TRAIN_ARGS(data), options: TRAIN_OPTIONS });
    const pairs = await readPairFile(data);
    const fed = new TrainingOrder(pairs.examples, trainPlan(values, pairs)).all();
    expect(rows).toEqual(fed.map((e) => ({ anchor: (e as { anchor: string }).anchor, positive: (e as { positive: string }).positive, negative_1: (e as { negatives: string[] }).negatives[0] })));
    for (const epoch of [rows.slice(0, 16), rows.slice(16)]) expect(new Set(epoch.map((r) => r.anchor)).size).toBe(16); // each epoch without repeats
    expect(rows.slice(0, 16)).not.toEqual(rows.slice(16)); // and reshuffled

    const { status, stderr, config } = dryRun(out);
    expect(stderr).toBe('');
    expect(status).toBe(0);
    expect(config).toEqual({
      model: TINY,
      revision: null,
      quantization: 'f32',
      pooling: 'cls',
      pooling_mode: 'cls',
      include_prompt: true,
      do_lower_case: false,
      normalize: false,
      max_seq_length: 32,
      // The query prompt before the anchors only: the run embedded positives and negatives as passages, with no prompt.
      prompts: { query: 'query: ', passage: '' },
      column_prompts: { anchor: 'query: ' },
      lora: { r: 8, lora_alpha: 16, lora_dropout: 0.05, use_rslora: true, target_modules: ['query', 'key', 'dense'] },
      loss: { name: 'MultipleNegativesSymmetricRankingLoss', scale: 30, gather_across_devices: false },
      learning_rate: 1e-4,
      lr_scheduler_type: 'linear',
      warmup_steps: 1,
      weight_decay: 0.02,
      max_grad_norm: null,
      adam_beta1: 0.9,
      adam_beta2: 0.999,
      adam_epsilon: 1e-8,
      hidden_dropout: 0.05,
      max_steps: 4,
      global_batch_size: 4,
      per_device_batch_size: 4,
      world_size: 1,
      gradient_accumulation_steps: 2,
      seed: 7,
      train_file: join(out, 'train.jsonl'),
      train_rows: 32,
      columns: ['anchor', 'positive', 'negative_1'],
      output_dir: join(out, 'adapter'),
    });
  });

  it('splits the batch over torchrun/accelerate processes, gathering negatives across them, and caches large batches', () => {
    const out = exportRun(...TRAIN_ARGS(pairFile()));
    const two = dryRun(out, { WORLD_SIZE: '2' }).config;
    expect(two).toMatchObject({ world_size: 2, per_device_batch_size: 2, global_batch_size: 4, loss: { name: 'MultipleNegativesSymmetricRankingLoss', gather_across_devices: true } });
    const cached = dryRun(out, {}, '--mini-batch-size', '2').config;
    expect(cached.loss).toEqual({ name: 'CachedMultipleNegativesSymmetricRankingLoss', scale: 30, mini_batch_size: 2, gather_across_devices: false });
    const three = dryRun(out, { WORLD_SIZE: '3' });
    expect(three.status).toBe(2);
    expect(three.stderr).toBe('train.py: the run used batches of 4 rows, which do not split evenly over 3 processes; use a divisor of 4\n');
  });

  it('rebuilds the same export from an adapter folder written by train, and refuses changed data', () => {
    const data = pairFile();
    const direct = exportRun(...TRAIN_ARGS(data));
    const adapter = join(tempDir('qll-adapter-'), 'adapter');
    const peft = readFixtureAdapter('tiny');
    const files = adapterFolder(peft, parseBertConfig(JSON.parse(readFileSync(join(TINY, 'config.json'), 'utf8'))), {
      baseModel: TINY,
      quantization: 'f32',
      sentence: { pooling: 'cls', normalize: false, maxLength: 32, prompts: { query: 'query: ', passage: '' } },
      trainArgs: [...TRAIN_ARGS(data), '--out', adapter],
      dataSha256: createHash('sha256').update(readFileSync(data)).digest('hex'),
    });
    mkdirSync(adapter);
    for (const [name, content] of Object.entries(files)) writeFileSync(join(adapter, name), content);
    const fromAdapter = exportRun('--from', adapter);
    for (const name of ['run.json', 'train.jsonl', 'train.py']) expect(readFileSync(join(fromAdapter, name), 'utf8')).toBe(readFileSync(join(direct, name), 'utf8'));

    expect(cli('export-run', '--from', adapter, '--seed', '3', '--out', join(tempDir('qll-x-'), 'x')).stderr).toContain(`--from takes the run's settings from ${adapter}: give no train option with it`);
    writeFileSync(data, `${readFileSync(data, 'utf8')}one more,row here,and a negative\n`);
    expect(cli('export-run', '--from', adapter, '--out', join(tempDir('qll-x-'), 'x')).stderr).toContain(`${data} has changed since the run (its SHA-256 differs)`);
    expect(cli('export-run', '--from', TINY, '--out', join(tempDir('qll-x-'), 'x')).stderr).toContain(`--from ${TINY}: it has no qlora_lab.json with the run's arguments`);
  });

  it('exports labelled pairs for CosineSimilarityLoss, and refuses rows with different numbers of negatives or a --stack', () => {
    const dir = tempDir('qll-pairs-');
    const labelled = join(dir, 'labelled.csv');
    writeFileSync(labelled, `text_a,text_b,label,category\n${Array.from({ length: 8 }, (_, i) => `a ${i},b ${i},${i % 2},similar`).join('\n')}\n`);
    const out = exportRun('--model', TINY, '--data', labelled, '--batch-size', '4');
    expect(jsonl(join(out, 'train.jsonl'))[0]).toEqual({ text_a: expect.any(String), text_b: expect.any(String), label: expect.any(Number) });
    expect(dryRun(out).config).toMatchObject({ loss: { name: 'CosineSimilarityLoss' }, columns: ['text_a', 'text_b', 'label'], max_steps: 2 });

    const uneven = join(dir, 'uneven.jsonl');
    const rows = Array.from({ length: 8 }, (_, i) => ({ anchor: `q ${i}`, positive: `p ${i}`, negatives: i === 5 ? ['n', 'm'] : ['n'] }));
    writeFileSync(uneven, rows.map((r) => JSON.stringify(r)).join('\n'));
    const r = cli('export-run', '--model', TINY, '--data', uneven, '--batch-size', '8', '--seed', '1', '--out', join(dir, 'x'));
    expect(r.stderr).toMatch(new RegExp(`^qlora-lab export-run: ${uneven}: row \\d+ of the training rows has (2|1) negatives but row 1 has (1|2): sentence-transformers needs the same number of negatives in every row\\n$`));
    expect(cli('export-run', '--model', TINY, '--data', uneven, '--stack', TINY, '--out', join(dir, 'x')).stderr).toContain('a run with --stack cannot be exported yet');
  });

  it.skipIf(skipWithoutPythonTorch)("train.py's adapter imports back: the CLI reads it against the base and merges it", () => {
    assertPythonTorch();
    const targets = 'query,key,value,attention.output.dense,intermediate.dense,output.dense';
    const out = exportRun('--model', TINY, '--data', pairFile(), '--batch-size', '4', '--r', '4', '--alpha', '8', '--lora-dropout', '0', '--targets', targets, '--max-length', '48');
    const adapter = join(tempDir('qll-py-adapter-'), 'adapter');
    const saved = runPython([join(FIXTURES, 'save_exported_adapter.py'), out, join(TINY, 'adapter_init'), adapter]);
    expect(saved.stderr).toBe(`adapter written to ${adapter}\n`);
    expect(readdirSync(adapter).sort()).toEqual(['adapter_config.json', 'adapter_model.safetensors', 'qlora_lab.json']);
    const merged = join(tempDir('qll-merged-'), 'merged');
    const r = cli('merge', '--model', TINY, '--adapter', adapter, '--out', merged);
    expect(r.stderr).toContain('mean pooling, normalised, max length 48');
    expect(r.status).toBe(0);
  });

  it.skipIf(skipWithoutPythonTorch)("the saved adapter keeps every LoRA tensor but the pooler's, under PEFT's names", async () => {
    assertPythonTorch();
    const out = exportRun('--model', TINY, '--data', pairFile(), '--batch-size', '4', '--r', '4', '--alpha', '8', '--targets', 'query,key,value,dense');
    const adapter = join(tempDir('qll-py-adapter-'), 'adapter');
    runPython([join(FIXTURES, 'save_exported_adapter.py'), out, join(TINY, 'adapter_init'), adapter]);
    const tiny = parseBertConfig(JSON.parse(readFileSync(join(TINY, 'config.json'), 'utf8')));
    const peft = await readAdapterDir(adapter, { config: tiny, weights: readSafetensorsFile(join(TINY, 'model.safetensors')) });
    expect(peft.tensors.size).toBe(readFixtureAdapter('tiny').tensors.size);
    expect([...peft.tensors.keys()].some((k) => k.startsWith('pooler.'))).toBe(false);
    expect(peft.config).toMatchObject({ r: 4, loraAlpha: 8, targetModules: ['query', 'key', 'value', 'dense'], baseModelNameOrPath: TINY });
    expect((await readAdapterSettingsFile(adapter))?.sentence).toEqual({ pooling: 'mean', normalize: true, maxLength: 128, prompts: { query: '', passage: '' } });
  });
});

describe("the app's run export", () => {
  const demo = defaultRunConfig({
    source: { kind: 'demo', id: 'cardio' },
    build: { kind: 'pairs', testFraction: 0.2 },
    fingerprint: 'f00d',
    evaluation: { kind: 'test-split' },
  });
  const config = {
    ...demo,
    model: { kind: 'hub' as const, id: 'BAAI/bge-small-en-v1.5', revision: 'main' },
    train: { ...demo.train, steps: 3, batchSize: 2, gradientAccumulation: 2 },
    prompts: { query: 'query: ', passage: 'passage: ' },
  };
  // A base folder that lower-cases texts and leaves the prompt out of the pooling.
  const TEXT = { config: parseBertConfig(JSON.parse(readFileSync(join(TINY, 'config.json'), 'utf8'))), sentence: { ...NO_SENTENCE_CONFIG, lowercase: true, includePrompt: false } };
  const rows = Array.from({ length: 12 }, (_, i) => ({ anchor: `q${i}`, positive: `p${i}`, negatives: [] }));

  it("resolves to the RunConfig's model commit, pooling, LoRA, loss, schedule and seeds", () => {
    const dir = tempDir('qll-app-export-');
    const files = runExportFiles(appRunExport('run-1', config, '0123abcd', TEXT), rows, [{ textA: 'x', textB: 'y', label: 1, group: 'similar' }]);
    for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), content);
    expect(jsonl(join(dir, 'test.jsonl'))).toEqual([{ text_a: 'x', text_b: 'y', label: 1, category: 'similar' }]);
    expect(jsonl(join(dir, 'train.jsonl'))[0]).toEqual({ anchor: 'q0', positive: 'p0' });
    const resolved = dryRun(dir).config;
    const t = config.train;
    expect(resolved).toMatchObject({
      model: 'BAAI/bge-small-en-v1.5',
      revision: '0123abcd',
      quantization: config.quantization,
      pooling: config.pooling,
      pooling_mode: config.pooling,
      include_prompt: false,
      do_lower_case: true,
      normalize: config.normalize,
      max_seq_length: config.maxLength,
      prompts: config.prompts,
      column_prompts: { anchor: 'query: ', positive: 'passage: ' },
      lora: { r: config.lora.r, lora_alpha: config.lora.alpha, lora_dropout: config.lora.dropout, use_rslora: config.lora.rslora, target_modules: config.lora.targetModules },
      loss: { name: 'MultipleNegativesRankingLoss', scale: 20 },
      learning_rate: t.learningRate,
      warmup_steps: t.warmupSteps,
      weight_decay: t.weightDecay,
      max_grad_norm: t.maxGradNorm,
      adam_beta1: t.beta1,
      adam_beta2: t.beta2,
      adam_epsilon: t.eps,
      hidden_dropout: t.hiddenDropout,
      max_steps: 3,
      global_batch_size: 2,
      gradient_accumulation_steps: 2,
      seed: config.seeds.train,
      columns: ['anchor', 'positive'],
      train_rows: 12,
    });
    expect(JSON.parse(readFileSync(join(dir, 'run.json'), 'utf8')).seeds).toEqual(config.seeds);
  });

  it('needs every row the run fed, and a run without a frozen adapter', () => {
    expect(() => runExportFiles(appRunExport('run-1', config, null, TEXT), rows.slice(1), null)).toThrow('the run fed 12 examples (3 steps × 2 × 2), but 11 were given');
    expect(() => appRunExport('run-1', { ...config, frozenAdapter: { name: 'domain', fingerprint: 'ab' } }, null, TEXT)).toThrow('frozen adapter domain');
  });
});
