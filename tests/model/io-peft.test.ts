import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadModelFiles } from '../../src/model/checkpoint.ts';
import { parseBertConfig } from '../../src/model/config.ts';
import { fileMapSource } from '../../src/model/file-source.ts';
import { checkAdapter } from '../../src/model/adapter-check.ts';
import { type PeftAdapter, loraConfigOf, peftConfigOf, readPeftAdapter, writeBertCheckpoint, writePeftAdapter } from '../../src/model/peft-files.ts';
import { parseSafetensors, readSafetensorsHeader, writeSafetensors } from '../../src/model/safetensors.ts';
import type { HostTensor } from '../../src/model/state-dict.ts';

// Adapters written in PEFT's layout by the fixture script (tests/fixtures/make_fixtures.py).
const TINY = 'tests/fixtures/bert/tiny';
const config = parseBertConfig(JSON.parse(readFileSync(`${TINY}/config.json`, 'utf8')));
const fixtureFiles = (dir: string) => ({
  'adapter_config.json': readFileSync(`${dir}/adapter_config.json`, 'utf8'),
  'adapter_model.safetensors': new Uint8Array(readFileSync(`${dir}/adapter_model.safetensors`)),
});

/** A small adapter on query/value of 2 layers (hidden 32), deterministic values. */
function smallAdapter(r = 2): PeftAdapter {
  const tensors = new Map<string, HostTensor>();
  for (const layer of [0, 1]) {
    for (const module of ['attention.self.query', 'attention.self.value']) {
      const name = `encoder.layer.${layer}.${module}`;
      tensors.set(`${name}.lora_A`, { shape: [r, 32], data: Float32Array.from({ length: r * 32 }, (_, i) => Math.sin(i + layer)) });
      tensors.set(`${name}.lora_B`, { shape: [32, r], data: Float32Array.from({ length: 32 * r }, (_, i) => Math.cos(i * 0.5)) });
    }
  }
  return {
    config: { r, loraAlpha: 16, loraDropout: 0.05, targetModules: ['query', 'value'], useRslora: true, baseModelNameOrPath: 'BAAI/bge-small-en-v1.5', revision: 'abc123' },
    tensors,
  };
}

/** Re-encode an adapter_model.safetensors with renamed keys. */
function renamed(file: Uint8Array, rename: (key: string) => string, extra: [string, HostTensor][] = []): Uint8Array {
  const { tensors } = parseSafetensors(file);
  return writeSafetensors(new Map([...[...tensors].map(([k, t]) => [rename(k), t] as [string, HostTensor]), ...extra]));
}

describe('PEFT adapter files', () => {
  it('reads the fixture adapters (PEFT names, r 4, every linear of 2 layers) and checks them against the base', () => {
    const adapter = readPeftAdapter(fixtureFiles(`${TINY}/adapter_init`));
    checkAdapter(config, adapter, 'adapter_init', { pooler: true });
    expect(adapter.config).toEqual({
      r: 4,
      loraAlpha: 8,
      loraDropout: 0,
      targetModules: ['query', 'key', 'value', 'attention.output.dense', 'intermediate.dense', 'output.dense'],
      useRslora: false,
      baseModelNameOrPath: 'tests/fixtures/bert/tiny',
    });
    expect(adapter.tensors.size).toBe(2 * 6 * 2);
    expect(adapter.tensors.get('encoder.layer.1.intermediate.dense.lora_A')?.shape).toEqual([4, 32]);
    expect(adapter.tensors.get('encoder.layer.1.intermediate.dense.lora_B')?.shape).toEqual([64, 4]);
    expect(adapter.tensors.get('encoder.layer.0.output.dense.lora_A')?.shape).toEqual([4, 64]);
    expect(readPeftAdapter(fixtureFiles(`${TINY}/adapter_init_rslora`)).config.useRslora).toBe(true);
  });

  it('writes what PEFT writes: the same tensor names, order, shapes and bytes as the fixture adapter', () => {
    const fixture = fixtureFiles(`${TINY}/adapter_init`);
    const written = writePeftAdapter(readPeftAdapter(fixture), config)['adapter_model.safetensors'];
    const ours = readSafetensorsHeader(written);
    const theirs = readSafetensorsHeader(fixture['adapter_model.safetensors']);
    expect(ours.entries).toEqual(theirs.entries);
    expect(ours.metadata).toEqual({ format: 'pt' });
    expect(written.subarray(ours.dataStart)).toEqual(fixture['adapter_model.safetensors'].subarray(theirs.dataStart));
  });

  it('writes every adapter_config.json field PEFT expects and round-trips the adapter', () => {
    const adapter = smallAdapter();
    const files = writePeftAdapter(adapter, config);
    expect(JSON.parse(files['adapter_config.json'])).toEqual({
      peft_type: 'LORA',
      task_type: 'FEATURE_EXTRACTION',
      base_model_name_or_path: 'BAAI/bge-small-en-v1.5',
      revision: 'abc123',
      r: 2,
      lora_alpha: 16,
      lora_dropout: 0.05,
      target_modules: ['query', 'value'],
      use_rslora: true,
      bias: 'none',
      fan_in_fan_out: false,
      inference_mode: true,
      modules_to_save: null,
      init_lora_weights: true,
      layers_to_transform: null,
    });
    const names = readSafetensorsHeader(files['adapter_model.safetensors']).entries.map((e) => e.name);
    expect(names.slice(0, 4)).toEqual([
      'base_model.model.encoder.layer.0.attention.self.query.lora_A.weight',
      'base_model.model.encoder.layer.0.attention.self.query.lora_B.weight',
      'base_model.model.encoder.layer.0.attention.self.value.lora_A.weight',
      'base_model.model.encoder.layer.0.attention.self.value.lora_B.weight',
    ]);
    const back = readPeftAdapter(files);
    expect(back.config).toEqual(adapter.config);
    expect([...back.tensors.keys()].sort()).toEqual([...adapter.tensors.keys()].sort());
    for (const [name, t] of adapter.tensors) expect(back.tensors.get(name), name).toEqual(t);
  });

  // What PEFT, transformers' PEFT integration (also behind sentence-transformers' add_adapter) and
  // get_peft_model around a whole SentenceTransformer write; see PEFT_KEY in peft-files.ts. The part
  // naming the wrapped model's BertModel is kept (PEFT matched target_modules under it) and written back.
  const keyForms: [string, (module: string, ab: string) => string, string][] = [
    ['PeftModel over BertModel', (m, ab) => `base_model.model.${m}.lora_${ab}.weight`, ''],
    ['PeftModel over a BertFor… task model', (m, ab) => `base_model.model.bert.${m}.lora_${ab}.weight`, 'bert.'],
    ['transformers / sentence-transformers add_adapter', (m, ab) => `${m}.lora_${ab}.weight`, ''],
    ['transformers add_adapter on a task model', (m, ab) => `bert.${m}.lora_${ab}.weight`, 'bert.'],
    ['get_peft_model around a SentenceTransformer (auto_model)', (m, ab) => `base_model.model.0.auto_model.${m}.lora_${ab}.weight`, '0.auto_model.'],
    ['get_peft_model around a SentenceTransformer 5 (model)', (m, ab) => `base_model.model.0.model.${m}.lora_${ab}.weight`, '0.model.'],
    ['a raw state dict with the adapter name', (m, ab) => `base_model.model.${m}.lora_${ab}.default.weight`, ''],
    ['no prefix, with the adapter name', (m, ab) => `${m}.lora_${ab}.default.weight`, ''],
  ];
  it('maps a trained LoRA config to PEFT fields and back through the files (the one mapping the app and the CLI use)', () => {
    const lora = { r: 2, alpha: 16, dropout: 0.05, rslora: true, targetModules: ['query', 'value'] };
    const peft = peftConfigOf(lora, { id: 'BAAI/bge-small-en-v1.5', revision: 'abc123' });
    expect(peft).toEqual(smallAdapter().config);
    expect(peftConfigOf(lora, { id: 'demo-bert' })).not.toHaveProperty('revision');
    const back = readPeftAdapter(writePeftAdapter({ config: peft, tensors: smallAdapter().tensors }, config));
    expect(loraConfigOf(back)).toMatchObject(lora);
  });

  it.each(keyForms)('reads tensor names written by %s and writes them back as PeftModel would', (_, form, prefix) => {
    const adapter = smallAdapter();
    const files = writePeftAdapter(adapter, config);
    const ours = (key: string) => /^base_model\.model\.(.+)\.lora_([AB])\.weight$/.exec(key) as RegExpExecArray;
    const theirs = renamed(files['adapter_model.safetensors'], (k) => form(ours(k)[1], ours(k)[2]));
    const back = readPeftAdapter({ ...files, 'adapter_model.safetensors': theirs });
    expect(back.config.modulePrefix ?? '').toBe(prefix);
    checkAdapter(config, back, 'adapter', { pooler: true }); // target_modules still select its modules under the prefix
    expect([...back.tensors.keys()].sort()).toEqual([...adapter.tensors.keys()].sort());
    for (const [name, t] of adapter.tensors) expect(back.tensors.get(name), name).toEqual(t);
    const names = (file: Uint8Array) => readSafetensorsHeader(file).entries.map((e) => e.name);
    const expected = names(files['adapter_model.safetensors']).map((k) => k.replace('base_model.model.', `base_model.model.${prefix}`));
    expect(names(writePeftAdapter(back, config)['adapter_model.safetensors'])).toEqual(expected);
  });

  it('refuses a module named twice under two forms, and names of other models with an example of the expected name', () => {
    const files = writePeftAdapter(smallAdapter(), config);
    const query = parseSafetensors(files['adapter_model.safetensors']).tensors.get('base_model.model.encoder.layer.0.attention.self.query.lora_A.weight')!;
    const twice = renamed(files['adapter_model.safetensors'], (k) => k, [['encoder.layer.0.attention.self.query.lora_A.weight', query]]);
    expect(() => readPeftAdapter({ ...files, 'adapter_model.safetensors': twice })).toThrow(/holds encoder\.layer\.0\.attention\.self\.query\.lora_A twice/);
    const roberta = renamed(files['adapter_model.safetensors'], (k) => k.replace('base_model.model.', 'base_model.model.roberta.'));
    expect(() => readPeftAdapter({ ...files, 'adapter_model.safetensors': roberta })).toThrow(
      /expected names like base_model\.model\.encoder\.layer\.0\.attention\.self\.query\.lora_A\.weight or encoder\.layer\.0\.attention\.self\.query\.lora_A\.weight.*base_model\.model\.roberta\.encoder\.layer\.0\.attention\.self\.query\.lora_A\.weight/,
    );
    const otherName = renamed(files['adapter_model.safetensors'], (k) => k.replace('.weight', '.my_adapter.weight'));
    expect(() => readPeftAdapter({ ...files, 'adapter_model.safetensors': otherName })).toThrow(/lora_A\.my_adapter\.weight/);
    const mixed = renamed(files['adapter_model.safetensors'], (k) => (k.includes('layer.1.') ? k.replace('base_model.model.', 'bert.') : k));
    expect(() => readPeftAdapter({ ...files, 'adapter_model.safetensors': mixed })).toThrow(/mixes names from differently wrapped models \(prefixes "", "bert\."\)/);
  });

  it('names unknown keys, missing halves, rank mismatches and uncovered modules', () => {
    const files = writePeftAdapter(smallAdapter(), config);
    const base = files['adapter_model.safetensors'];
    const t = (shape: number[]): HostTensor => ({ shape, data: new Float32Array(shape[0] * shape[1]) });
    const withExtra = renamed(base, (k) => k, [
      ['base_model.model.classifier.weight', t([2, 32])],
      ['base_model.model.encoder.layer.0.attention.self.query.lora_embedding_A', t([2, 2])],
    ]);
    expect(() => readPeftAdapter({ ...files, 'adapter_model.safetensors': withExtra })).toThrow(
      /not LoRA weights of BERT's linear layers.*: base_model\.model\.classifier\.weight, base_model\.model\.encoder\.layer\.0\.attention\.self\.query\.lora_embedding_A$/,
    );
    const noB = renamed(base, (k) => k.replace('layer.1.attention.self.value.lora_B', 'layer.1.intermediate.dense.lora_B'));
    expect(() => readPeftAdapter({ ...files, 'adapter_model.safetensors': noB })).toThrow(
      /encoder\.layer\.1\.attention\.self\.value: has lora_A but no lora_B[\s\S]*encoder\.layer\.1\.intermediate\.dense: has lora_B but no lora_A/,
    );
    const r3 = JSON.stringify({ ...JSON.parse(files['adapter_config.json']), r: 3 });
    expect(() => readPeftAdapter({ ...files, 'adapter_config.json': r3 })).toThrow(/lora_A \[2, 32\] \/ lora_B \[32, 2\] do not have rank r = 3/);
    const narrow = JSON.stringify({ ...JSON.parse(files['adapter_config.json']), target_modules: ['query'] });
    expect(() => readPeftAdapter({ ...files, 'adapter_config.json': narrow })).toThrow(/attention\.self\.value: not covered by target_modules \["query"\]/);
  });

  const unsupported: [string, Record<string, unknown>, RegExp][] = [
    ['another PEFT method', { peft_type: 'IA3' }, /peft_type "IA3" \(only "LORA"\) is not supported yet/],
    ['DoRA', { use_dora: true }, /DoRA \(use_dora\) is not supported yet/],
    ['layers_to_transform', { layers_to_transform: [0], layers_pattern: 'layer' }, /layers_to_transform \(\[0\]\) is not supported yet/],
    ['exclude_modules', { exclude_modules: ['pooler.dense'] }, /exclude_modules \(\["pooler\.dense"\]\) is not supported yet/],
    ['a regex JavaScript cannot read', { target_modules: '(?P<name>query)' }, /target_modules "\(\?P<name>query\)" is not a regular expression this app can read/],
    ['fan_in_fan_out', { fan_in_fan_out: true }, /fan_in_fan_out is not supported yet/],
    ['trained biases', { bias: 'lora_only' }, /bias "lora_only"/],
    ['rank_pattern', { rank_pattern: { query: 8 } }, /per-module rank_pattern/],
    ['modules_to_save', { modules_to_save: ['classifier'] }, /modules_to_save is not supported yet/],
    ['bad dropout', { lora_dropout: 1.5 }, /lora_dropout must be in \[0, 1\), got 1\.5/],
    ['bad r', { r: 0 }, /r must be a positive integer, got 0/],
  ];
  it.each(unsupported)('refuses an adapter_config.json with %s', (_, patch, message) => {
    const files = writePeftAdapter(smallAdapter(), config);
    const json = JSON.stringify({ ...JSON.parse(files['adapter_config.json']), ...patch });
    expect(() => readPeftAdapter({ ...files, 'adapter_config.json': json })).toThrow(message);
  });

  it('refuses to write an adapter with a tensor outside BERT\'s linears', () => {
    const adapter = smallAdapter();
    adapter.tensors.set('encoder.layer.0.attention.self.rotary.lora_A', { shape: [2, 32], data: new Float32Array(64) });
    expect(() => writePeftAdapter(adapter, config)).toThrow(/encoder\.layer\.0\.attention\.self\.rotary\.lora_A: not "<BERT linear module>\.lora_A"/);
  });
});

describe('merged-model export', () => {
  it('writes config.json + model.safetensors that load back as the same BertModel', async () => {
    const model = await loadModelFiles(
      fileMapSource(new Map(['config.json', 'model.safetensors', 'vocab.txt'].map((n) => [n, new Blob([readFileSync(`${TINY}/${n}`)])]))),
    );
    const files = writeBertCheckpoint(model.config, model.weights);
    const json = JSON.parse(files['config.json']);
    expect(json).toMatchObject({ architectures: ['BertModel'], model_type: 'bert', hidden_size: 32, intermediate_size: 64, initializer_range: 0.1, torch_dtype: 'float32' });
    const reloaded = await loadModelFiles(
      fileMapSource(
        new Map<string, Blob>([
          ['config.json', new Blob([files['config.json']])],
          ['model.safetensors', new Blob([files['model.safetensors'] as Uint8Array<ArrayBuffer>])],
          ['vocab.txt', new Blob([readFileSync(`${TINY}/vocab.txt`)])],
        ]),
      ),
    );
    expect({ ...reloaded.config, raw: null }).toEqual({ ...model.config, raw: null });
    expect(readSafetensorsHeader(files['model.safetensors']).metadata).toEqual({ format: 'pt' });
    for (const [name, t] of model.weights) expect(reloaded.weights.get(name), name).toEqual(t);
  });

  it('refuses weights that do not match the config', () => {
    const weights = new Map([['embeddings.word_embeddings.weight', { shape: [120, 32], data: new Float32Array(120 * 32) }]]);
    expect(() => writeBertCheckpoint(config, weights)).toThrow(/missing \(36\)/);
  });
});
