import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type AdapterTensors, checkAdapter } from '../../src/model/adapter-check.ts';
import { type BertConfig, parseBertConfig } from '../../src/model/config.ts';
import { type LoraConfig, type TrainingLoraConfig, initLoraTensors } from '../../src/model/lora.ts';
import { mergeAdapters } from '../../src/model/merge.ts';
import { fixtureModelDir, readFixtureAdapter, readSafetensorsFile } from '../helpers/fixtures.ts';

const configOf = (model: 'tiny' | 'odd'): BertConfig => parseBertConfig(JSON.parse(readFileSync(join(fixtureModelDir(model), 'config.json'), 'utf8')));
const tiny = configOf('tiny'); // hidden 32, intermediate 64, 2 layers, with a pooler
const odd = configOf('odd'); // hidden 72, intermediate 200, 3 layers, with a pooler

const QV: TrainingLoraConfig = { r: 2, alpha: 4, dropout: 0, rslora: false, targetModules: ['query', 'value'] };

/** A query/value adapter of rank 2 initialised for `bert`, B filled so that a merge changes the weights. */
function adapterFor(bert: BertConfig, lora: TrainingLoraConfig = QV): { config: LoraConfig; tensors: Map<string, { shape: number[]; data: Float32Array }> } {
  const tensors = initLoraTensors(bert, lora, 7, { pooler: true });
  for (const [name, t] of tensors) if (name.endsWith('lora_B')) t.data.fill(0.01);
  return { config: lora, tensors };
}

const check = (adapter: AdapterTensors, base = { pooler: true }) => () => checkAdapter(tiny, adapter, 'adapter my-adapter', base);

describe('checkAdapter', () => {
  it('accepts an adapter made for the base, and the fixture adapter', () => {
    expect(check(adapterFor(tiny))).not.toThrow();
    expect(check(adapterFor(tiny, { ...QV, r: 3, targetModules: ['dense'] }))).not.toThrow();
    expect(check(readFixtureAdapter('tiny'))).not.toThrow();
  });

  it('refuses an adapter for another hidden size, naming each misfit and what this model has', () => {
    expect(check(adapterFor(odd))).toThrow(
      'adapter my-adapter has 5 problems:\n' +
        '  encoder.layer.2.*: the base model has only 2 layers\n' +
        '  encoder.layer.0.attention.self.query: lora_A [2, 72] / lora_B [72, 2] do not fit the base weight [32, 32] (expected [2, 32] / [32, 2])\n',
    );
    expect(check(adapterFor(odd))).toThrow(/\nThis model has hidden_size 32, intermediate_size 64 and 2 layers: was the adapter trained for another one\?$/);
    const ffn = adapterFor(odd, { ...QV, targetModules: ['intermediate.dense'] });
    ffn.tensors.forEach((_, name) => name.startsWith('encoder.layer.2.') && ffn.tensors.delete(name));
    expect(check(ffn)).toThrow(/do not fit the base weight \[64, 32\] \(expected \[2, 32\] \/ \[64, 2\]\)/);
  });

  it('refuses tensors whose rank is not the config\'s r', () => {
    const adapter = adapterFor(tiny);
    expect(check({ ...adapter, config: { ...QV, r: 4 } })).toThrow(/encoder\.layer\.0\.attention\.self\.query: lora_A \[2, 32\] \/ lora_B \[32, 2\] do not have rank r = 4/);
  });

  it('refuses a module with lora_A but no lora_B', () => {
    const adapter = adapterFor(tiny);
    adapter.tensors.delete('encoder.layer.1.attention.self.value.lora_B');
    expect(check(adapter)).toThrow('adapter my-adapter: encoder.layer.1.attention.self.value: has lora_A but no lora_B');
  });

  it('refuses a target with neither half', () => {
    const adapter = adapterFor(tiny);
    adapter.tensors.delete('encoder.layer.0.attention.self.query.lora_A');
    adapter.tensors.delete('encoder.layer.0.attention.self.query.lora_B');
    expect(check(adapter)).toThrow('adapter my-adapter: encoder.layer.0.attention.self.query: target_modules names it but the adapter has neither lora_A nor lora_B');
  });

  it('refuses a tensor that is not a LoRA half of a BERT linear, and a module target_modules does not cover', () => {
    const rotary = adapterFor(tiny);
    rotary.tensors.set('encoder.layer.0.attention.self.rotary.lora_A', { shape: [2, 32], data: new Float32Array(64) });
    expect(check(rotary)).toThrow('adapter my-adapter: encoder.layer.0.attention.self.rotary.lora_A: not "<BERT linear module>.lora_A" or ".lora_B"');
    const uncovered = adapterFor(tiny);
    expect(check({ ...uncovered, config: { ...QV, targetModules: ['query'] } })).toThrow(/encoder\.layer\.0\.attention\.self\.value: not covered by target_modules \["query"\]/);
  });

  it('refuses a target module the base does not have', () => {
    const adapter = adapterFor(tiny);
    expect(check({ ...adapter, config: { ...QV, targetModules: ['query', 'value', 'encoder.layer.7.attention.self.key'] } })).toThrow(
      /target_modules names "encoder\.layer\.7\.attention\.self\.key", which is none of this model's linear layers/,
    );
  });

  it("follows PEFT's target rule: a regular expression or a list under the wrapped model's prefix; other models' names are fine, a layer this base lacks is not", () => {
    const adapter = adapterFor(tiny);
    expect(check({ ...adapter, config: { ...QV, targetModules: '.*\\.(query|value)' } })).not.toThrow();
    expect(check({ ...adapter, config: { ...QV, targetModules: '.*\\.query' } })).toThrow(/encoder\.layer\.0\.attention\.self\.value: not covered by target_modules ".*\\\\.query"/);
    expect(check({ ...adapter, config: { ...QV, targetModules: ['query', 'value', 'q_proj', 'v_proj'] } })).not.toThrow();
    const task = { ...adapter, config: { ...QV, targetModules: ['bert.encoder.layer.0.attention.self.query', 'bert.encoder.layer.1.attention.self.query', 'value'], modulePrefix: 'bert.' } };
    expect(check(task)).not.toThrow();
    expect(check({ ...task, config: { ...task.config, modulePrefix: undefined } })).toThrow(/encoder\.layer\.0\.attention\.self\.query: not covered by target_modules/);
    expect(check({ ...adapter, config: { ...QV, targetModules: ['q_proj', 'v_proj'] } })).toThrow(/target_modules \["q_proj","v_proj"\] match none of this model's linear layers/);
    expect(check({ ...adapter, config: { ...QV, targetModules: ['query', 'value', 'layer.5.attention.self.value'] } })).toThrow(
      'adapter my-adapter: target_modules names "layer.5.attention.self.value", which is none of this model\'s linear layers (it has 2 layers)',
    );
  });

  it("takes the pooler's LoRA when the base has a pooler, sized by its weight, and an adapter without it where 'dense' selects it", () => {
    const dense = adapterFor(tiny, { ...QV, targetModules: ['dense'] });
    expect(dense.tensors.has('pooler.dense.lora_A')).toBe(true);
    expect(check(dense)).not.toThrow();
    expect(check(dense, { pooler: false })).toThrow('adapter my-adapter: pooler.dense: the adapter has LoRA weights for it but the base checkpoint has no pooler');
    dense.tensors.set('pooler.dense.lora_B', { shape: [64, 2], data: new Float32Array(128) });
    expect(check(dense)).toThrow(/pooler\.dense: lora_A \[2, 32\] \/ lora_B \[64, 2\] do not fit the base weight \[32, 32\] \(expected \[2, 32\] \/ \[32, 2\]\)/);
    // PEFT loads a pooler LoRA missing from the file at B = 0; a missing layer LoRA is still refused.
    const withoutPooler = adapterFor(tiny, { ...QV, targetModules: ['dense'] });
    withoutPooler.tensors.delete('pooler.dense.lora_A');
    withoutPooler.tensors.delete('pooler.dense.lora_B');
    expect(check(withoutPooler)).not.toThrow();
    expect(check(withoutPooler, { pooler: false })).not.toThrow();
  });

  it.each([
    ['Infinity', Infinity],
    ['-Infinity', -Infinity],
    ['NaN', NaN],
  ])('refuses %s, naming the first non-finite tensor and index', (label, value) => {
    const adapter = adapterFor(tiny);
    adapter.tensors.get('encoder.layer.0.attention.self.value.lora_A')!.data[32 + 5] = value;
    adapter.tensors.get('encoder.layer.1.attention.self.query.lora_B')!.data[0] = value;
    expect(check(adapter)).toThrow(`adapter my-adapter: encoder.layer.0.attention.self.value.lora_A[1, 5] is ${label} (2 non-finite values in the adapter)`);
  });
});

describe('mergeAdapters', () => {
  const weights = readSafetensorsFile(join(fixtureModelDir('tiny'), 'model.safetensors'));

  it('checks every adapter before merging any', () => {
    const good = adapterFor(tiny);
    const bad = adapterFor(tiny);
    bad.tensors.get('encoder.layer.1.attention.self.query.lora_B')!.data[3] = NaN;
    expect(() => mergeAdapters(tiny, weights, [good, { ...bad, source: 'adapter task' }])).toThrow('adapter task: encoder.layer.1.attention.self.query.lora_B[1, 1] is NaN');
    expect(() => mergeAdapters(tiny, weights, [adapterFor(odd)])).toThrow(/^adapter 1 of 1 has 5 problems:/);
    const merged = mergeAdapters(tiny, weights, [good]);
    const key = 'encoder.layer.0.attention.self.query.weight';
    expect(merged.get(key)!.data).not.toEqual(weights.get(key)!.data);
    expect(merged.get(key)!.data.every(Number.isFinite)).toBe(true);
  });
});
