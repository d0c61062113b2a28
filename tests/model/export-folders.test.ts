/**
 * The exports other tools load: an adapter folder (PEFT files + qlora_lab.json) written by the
 * function CLI train and the app use, and the sentence-transformers folder `qlora-lab merge` makes
 * from it, read back by an independent plain-torch reader (tests/fixtures/check_st_folder.py).
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type AdapterSettings, adapterFolder, readAdapterSettings } from '../../src/model/adapter-settings.ts';
import { parseBertConfig } from '../../src/model/config.ts';
import { FIXTURES, fixtureModelDir, readFixtureAdapter, readSafetensorsFile } from '../helpers/fixtures.ts';
import { readSafetensorsHeader } from '../../src/model/safetensors.ts';
import { assertPythonTorch, runPython, skipWithoutPythonTorch } from '../helpers/python.ts';
import { tempDir } from '../helpers/temp-dir.ts';

const TINY = fixtureModelDir('tiny');
const TINY_CONFIG = parseBertConfig(JSON.parse(readFileSync(join(TINY, 'config.json'), 'utf8')));

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, ['bin/qlora-lab.js', ...args], { encoding: 'utf8' });
  return { status: r.status, stderr: r.stderr };
}

/** The tiny fixture's adapter_init (every linear, r 4, B random) as an adapter folder trained with `sentence`. */
function writeAdapter(dir: string, sentence: AdapterSettings['sentence']): AdapterSettings {
  const adapter = readFixtureAdapter('tiny');
  const settings: AdapterSettings = { baseModel: TINY, revision: 'abc123', quantization: 'nf4', sentence, trainArgs: ['--model', TINY, '--data', '/data/pairs.csv'] };
  const files = adapterFolder({ ...adapter, config: { ...adapter.config, baseModelNameOrPath: TINY, revision: 'abc123' } }, TINY_CONFIG, settings);
  mkdirSync(dir, { recursive: true });
  for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), content);
  return settings;
}

function merge(adapter: string, ...options: string[]): string {
  const merged = join(tempDir('qll-merged-'), 'merged');
  const r = cli('merge', '--model', TINY, '--adapter', adapter, '--out', merged, ...options);
  expect(r.stderr).toMatch(/a sentence-transformers folder/);
  expect(r.status).toBe(0);
  return merged;
}

function check(adapter: string, merged: string): { problems: string[]; merged_vs_adapter: number; embeddings: number[][] } {
  assertPythonTorch();
  const r = runPython([join(FIXTURES, 'check_st_folder.py'), '--base', TINY, '--adapter', adapter, '--merged', merged, '--batch', join(TINY, 'batch.safetensors')]);
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  return JSON.parse(r.stdout);
}

describe('adapter folder', () => {
  it('holds PEFT files whose adapter_config.json has no qlora-lab fields, and a side file that reads back', () => {
    const dir = join(tempDir('qll-adapter-'), 'adapter');
    const settings = writeAdapter(dir, { pooling: 'cls', normalize: false, maxLength: 48, prompts: { query: 'query: ', passage: '' } });
    expect(readdirSync(dir).sort()).toEqual(['adapter_config.json', 'adapter_model.safetensors', 'qlora_lab.json']);
    const config = JSON.parse(readFileSync(join(dir, 'adapter_config.json'), 'utf8'));
    expect(config).toMatchObject({ base_model_name_or_path: TINY, revision: 'abc123' });
    expect(Object.keys(config)).not.toContain('pooling');
    expect(readAdapterSettings(readFileSync(join(dir, 'qlora_lab.json'), 'utf8'), 'qlora_lab.json')).toEqual(settings);
  });

  it('refuses a side file with a pooling the engine does not have, naming the file and the field', () => {
    const text = JSON.stringify({ format: 'qlora-lab adapter settings', version: 1, base_model: 'x', revision: null, quantization: 'nf4', pooling: 'attention', normalize: true, max_seq_length: 0, prompts: { query: '' } });
    expect(() => readAdapterSettings(text, 'a/qlora_lab.json')).toThrow(
      'a/qlora_lab.json:\n  pooling must be one of cls, mean, max, mean-sqrt-len, weighted-mean, last-token (got "attention")\n  max_seq_length must be an integer ≥ 2 (got 0)\n  prompts must be {"query": text, "passage": text} (got {"query":""})',
    );
    expect(() => readAdapterSettings('{}', 'b.json')).toThrow('b.json is not a qlora-lab adapter settings file');
  });
});

describe('qlora-lab merge writes a complete sentence-transformers folder', () => {
  it('with the weights, the pooler, the tokenizer and the modules of the adapter it merged', () => {
    const adapter = join(tempDir('qll-adapter-'), 'adapter');
    writeAdapter(adapter, { pooling: 'mean', normalize: true, maxLength: 128, prompts: { query: 'query: ', passage: 'passage: ' } });
    const merged = merge(adapter);
    const files = readdirSync(merged, { recursive: true }).map(String).sort();
    expect(files).toEqual(['1_Pooling', '1_Pooling/config.json', 'config.json', 'config_sentence_transformers.json', 'model.safetensors', 'modules.json', 'sentence_bert_config.json', 'tokenizer_config.json', 'vocab.txt']);
    expect(JSON.parse(readFileSync(join(merged, 'modules.json'), 'utf8')).map((m: { type: string }) => m.type)).toEqual([
      'sentence_transformers.models.Transformer',
      'sentence_transformers.models.Pooling',
      'sentence_transformers.models.Normalize',
    ]);
    // max_seq_length is capped by the model's 64 positions; the prompts travel to sentence-transformers.
    expect(JSON.parse(readFileSync(join(merged, 'sentence_bert_config.json'), 'utf8'))).toEqual({ max_seq_length: 64, do_lower_case: false });
    expect(JSON.parse(readFileSync(join(merged, 'config_sentence_transformers.json'), 'utf8')).prompts).toEqual({ query: 'query: ', passage: 'passage: ' });
    const weights = readSafetensorsFile(join(merged, 'model.safetensors'));
    expect(weights.get('pooler.dense.weight')!.data).toEqual(readSafetensorsFile(join(TINY, 'model.safetensors')).get('pooler.dense.weight')!.data);
  });

  it('flags given to merge override what the adapter was trained with', () => {
    const adapter = join(tempDir('qll-adapter-'), 'adapter');
    writeAdapter(adapter, { pooling: 'mean', normalize: true, maxLength: 32, prompts: { query: '', passage: '' } });
    const merged = merge(adapter, '--pooling', 'cls', '--no-normalize', '--max-length', '16');
    expect(JSON.parse(readFileSync(join(merged, '1_Pooling/config.json'), 'utf8'))).toMatchObject({ pooling_mode_cls_token: true, pooling_mode_mean_tokens: false });
    expect(JSON.parse(readFileSync(join(merged, 'modules.json'), 'utf8'))).toHaveLength(2);
    expect(JSON.parse(readFileSync(join(merged, 'sentence_bert_config.json'), 'utf8')).max_seq_length).toBe(16);
    expect(cli('merge', '--model', TINY, '--adapter', adapter, '--out', merged, '--normalize', '--no-normalize').stderr).toContain('--normalize and --no-normalize contradict each other: give one');
  });

  it.skipIf(skipWithoutPythonTorch)('mean + Normalize: plain torch reads the folder and gets the fixture reference embeddings', () => {
    const adapter = join(tempDir('qll-adapter-'), 'adapter');
    writeAdapter(adapter, { pooling: 'mean', normalize: true, maxLength: 64, prompts: { query: '', passage: '' } });
    const merged = merge(adapter);
    const result = check(adapter, merged);
    expect(result.problems).toEqual([]);
    expect(result.merged_vs_adapter).toBeLessThan(1e-5);
    // The fixture's reference: base + adapter_init unmerged, mean pooling, L2-normalised, in float64.
    const reference = readSafetensorsFile(join(TINY, 'reference', 'f32.safetensors')).get('embedding.anchor')!;
    const got = result.embeddings.flat();
    expect(got).toHaveLength(reference.data.length);
    expect(Math.max(...got.map((v, i) => Math.abs(v - reference.data[i])))).toBeLessThan(1e-5);
  });

  it.skipIf(skipWithoutPythonTorch)('CLS without normalisation: the folder and the adapter give the same embeddings', () => {
    const adapter = join(tempDir('qll-adapter-'), 'adapter');
    writeAdapter(adapter, { pooling: 'cls', normalize: false, maxLength: 64, prompts: { query: '', passage: '' } });
    const result = check(adapter, merge(adapter));
    expect(result.problems).toEqual([]);
    expect(result.merged_vs_adapter).toBeLessThan(1e-5);
    // Not normalised: CLS vectors of a random BERT are far from unit length.
    expect(Math.abs(Math.hypot(...result.embeddings[0]) - 1)).toBeGreaterThan(0.1);
  });

  it.skipIf(skipWithoutPythonTorch)('the reader catches a folder that disagrees with its adapter', () => {
    const adapter = join(tempDir('qll-adapter-'), 'adapter');
    writeAdapter(adapter, { pooling: 'mean', normalize: true, maxLength: 64, prompts: { query: '', passage: '' } });
    const result = check(adapter, merge(adapter, '--pooling', 'cls'));
    expect(result.problems).toEqual([expect.stringMatching(/^the merged folder declares \{'pooling': 'cls'.* the adapter was trained with \{'pooling': 'mean'/)]);
    expect(result.merged_vs_adapter).toBeGreaterThan(1e-3);
  });
});

describe('exports on another encoder family', () => {
  it('DistilBERT: the adapter folder and the merged sentence-transformers folder use DistilBERT\'s own class, keys and names', () => {
    const base = fixtureModelDir('distilbert');
    const config = parseBertConfig(JSON.parse(readFileSync(join(base, 'config.json'), 'utf8')));
    const adapter = readFixtureAdapter('distilbert', 'adapter_init', config);
    const dir = join(tempDir('qll-adapter-'), 'adapter');
    const settings: AdapterSettings = { baseModel: base, quantization: 'f32', sentence: { pooling: 'cls', normalize: false, maxLength: 512, prompts: { query: 'query: ', passage: '' } } };
    mkdirSync(dir, { recursive: true });
    for (const [name, content] of Object.entries(adapterFolder(adapter, config, settings))) writeFileSync(join(dir, name), content);
    expect(JSON.parse(readFileSync(join(dir, 'adapter_config.json'), 'utf8')).target_modules).toEqual(['q_lin', 'k_lin', 'v_lin', 'out_lin', 'lin1', 'lin2']);
    const merged = join(tempDir('qll-merged-'), 'merged');
    const r = cli('merge', '--model', base, '--adapter', dir, '--out', merged);
    expect(r.stderr).toMatch(/a sentence-transformers folder \(cls pooling, max length 512\)/);
    expect(r.status).toBe(0);
    expect(JSON.parse(readFileSync(join(merged, 'config.json'), 'utf8'))).toMatchObject({ architectures: ['DistilBertModel'], model_type: 'distilbert', dim: 32, n_layers: 3 });
    const keys = readSafetensorsHeader(new Uint8Array(readFileSync(join(merged, 'model.safetensors')))).entries.map((e) => e.name);
    expect(keys).toContain('transformer.layer.2.ffn.lin2.weight');
    expect(keys.filter((k) => k.includes('token_type') || k.startsWith('encoder.'))).toEqual([]);
    // max_seq_length capped at DistilBERT's 64 positions; the module files as for BERT.
    expect(JSON.parse(readFileSync(join(merged, 'sentence_bert_config.json'), 'utf8'))).toEqual({ max_seq_length: 64, do_lower_case: false });
    expect(JSON.parse(readFileSync(join(merged, '1_Pooling/config.json'), 'utf8'))).toMatchObject({ pooling_mode_cls_token: true, word_embedding_dimension: 32 });
  });
});
