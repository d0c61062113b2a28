import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { Engine } from '../../src/engine/engine.ts';
import { checkAdapter } from '../../src/model/adapter-check.ts';
import { parseBertConfig } from '../../src/model/config.ts';
import { GpuAdapter, type HostAdapterTensors, initLoraTensors, loraScale, resolveTargets } from '../../src/model/lora.ts';
import { mergeAdapters } from '../../src/model/merge.ts';
import { readPeftAdapter, writeBertCheckpoint, writePeftAdapter } from '../../src/model/peft-files.ts';
import { parseSafetensors, readSafetensorsHeader } from '../../src/model/safetensors.ts';
import { hasPooler } from '../../src/model/state-dict.ts';
import { loadFixtureModel } from '../helpers/fixtures.ts';

// The tiny fixture: 2 layers, hidden 32, intermediate 64, with a pooler.
const config = parseBertConfig(JSON.parse(readFileSync('tests/fixtures/bert/tiny/config.json', 'utf8')));
const layerModules = (suffixes: string[]) => [0, 1].flatMap((l) => suffixes.map((s) => `encoder.layer.${l}.${s}`));
const DENSE = ['attention.output.dense', 'intermediate.dense', 'output.dense'];

describe("PEFT's target_modules rule", () => {
  // [target_modules, module prefix, base has a pooler, the modules PEFT puts LoRA on]
  const table: [string[] | string, string, boolean, string[]][] = [
    [['query', 'value'], '', true, layerModules(['attention.self.query', 'attention.self.value'])],
    [['dense'], '', true, [...layerModules(DENSE), 'pooler.dense']],
    [['dense'], '', false, layerModules(DENSE)],
    [['output.dense'], '', true, layerModules(['attention.output.dense', 'output.dense'])],
    [['attention.output.dense'], '', true, layerModules(['attention.output.dense'])],
    [['pooler.dense'], '', true, ['pooler.dense']],
    [['encoder.layer.1.attention.self.query'], '', true, ['encoder.layer.1.attention.self.query']],
    [['layer.0.attention.self.key'], '', true, ['encoder.layer.0.attention.self.key']],
    [['query', 'q_proj', 'v_proj'], '', true, layerModules(['attention.self.query'])],
    [['bert.encoder.layer.0.attention.self.query'], 'bert.', true, ['encoder.layer.0.attention.self.query']],
    ['.*\\.(query|value)', '', true, layerModules(['attention.self.query', 'attention.self.value'])],
    ['.*dense', '', true, [...layerModules(DENSE), 'pooler.dense']],
    ['encoder\\.layer\\.0\\..*', '', true, ['query', 'key', 'value'].map((p) => `encoder.layer.0.attention.self.${p}`).concat(DENSE.map((d) => `encoder.layer.0.${d}`))],
    ['bert\\.encoder\\.layer\\.\\d+\\.attention\\.self\\.query', 'bert.', true, layerModules(['attention.self.query'])],
    ['0\\.auto_model\\..*key', '0.auto_model.', false, layerModules(['attention.self.key'])],
  ];
  it.each(table)('%j under prefix %j (pooler %s)', (targetModules, modulePrefix, pooler, expected) => {
    expect(resolveTargets(config, { targetModules, modulePrefix }, { pooler })).toEqual(expected);
  });

  const none: [string[] | string, string][] = [
    [['ery'], ''], // a suffix only on '.' boundaries
    [['q_proj'], ''],
    ['query', ''], // a regex must match the whole name
    ['bert\\.encoder\\..*', ''], // written for a task model, read against a BertModel's names
    [['pooler.dense'], ''], // with no pooler in the base
  ];
  it.each(none)('%j under prefix %j matches nothing, and says so', (targetModules, modulePrefix) => {
    expect(() => resolveTargets(config, { targetModules, modulePrefix }, { pooler: false })).toThrow(/match none of this BERT's linear layers/);
  });

  it('training here is stricter: every target must name a linear layer', () => {
    const lora = { r: 2, alpha: 4, dropout: 0, rslora: false, targetModules: ['query', 'qproj'] };
    expect(() => initLoraTensors(config, lora, 1, { pooler: true })).toThrow(/not found in this BERT: qproj/);
  });
});

describe("the pooler's LoRA (targeted by 'dense')", () => {
  const lora = { r: 2, alpha: 4, dropout: 0, rslora: false, targetModules: ['dense'] };
  /** Init as PEFT does, then B made non-zero so merges show. */
  function denseAdapter(pooler: boolean): HostAdapterTensors {
    const tensors = initLoraTensors(config, lora, 5, { pooler });
    for (const [name, t] of tensors) if (name.endsWith('lora_B')) t.data.forEach((_, j) => (t.data[j] = Math.cos(j + name.length) * 0.1));
    return tensors;
  }

  it('is initialised like PEFT (B zero) when the base has a pooler, and written last as PEFT orders it', () => {
    const init = initLoraTensors(config, lora, 5, { pooler: true });
    expect(init.get('pooler.dense.lora_A')?.shape).toEqual([2, 32]);
    expect(init.get('pooler.dense.lora_B')?.data.every((v) => v === 0)).toBe(true);
    expect(initLoraTensors(config, lora, 5, { pooler: false }).has('pooler.dense.lora_A')).toBe(false);
    const files = writePeftAdapter({ config: { r: 2, loraAlpha: 4, loraDropout: 0, targetModules: ['dense'], useRslora: false, baseModelNameOrPath: 'tiny' }, tensors: init }, config);
    const names = readSafetensorsHeader(files['adapter_model.safetensors']).entries.map((e) => e.name);
    expect(names.slice(-2)).toEqual(['base_model.model.pooler.dense.lora_A.weight', 'base_model.model.pooler.dense.lora_B.weight']);
    const back = readPeftAdapter(files);
    expect(back.tensors.get('pooler.dense.lora_A')).toEqual(init.get('pooler.dense.lora_A'));
    expect(() => checkAdapter(config, back, 'adapter', { pooler: true })).not.toThrow();
  });

  it('is refused where target_modules do not cover it, and checked against the base (shape, and a pooler to put it on)', () => {
    const tensors = denseAdapter(true);
    const narrow = { r: 2, loraAlpha: 4, loraDropout: 0, targetModules: ['output.dense', 'intermediate.dense'], useRslora: false, baseModelNameOrPath: 'tiny' };
    expect(() => writePeftAdapter({ config: narrow, tensors }, config)).toThrow(/pooler\.dense: not covered by target_modules/);
    tensors.set('pooler.dense.lora_A', { shape: [2, 64], data: new Float32Array(128) });
    const files = writePeftAdapter({ config: { ...narrow, targetModules: ['dense'] }, tensors }, config);
    expect(() => checkAdapter(config, readPeftAdapter(files), 'adapter', { pooler: true })).toThrow(/pooler\.dense: lora_A \[2, 64\] \/ lora_B \[32, 2\] do not fit the base weight \[32, 32\]/);
    const fits = writePeftAdapter({ config: { ...narrow, targetModules: ['dense'] }, tensors: denseAdapter(true) }, config);
    expect(() => checkAdapter(config, readPeftAdapter(fits), 'adapter', { pooler: false })).toThrow(
      'adapter: pooler.dense: the adapter has LoRA weights for it but the base checkpoint has no pooler',
    );
  });

  it('stays on the host: the engine is never asked for it, and download gives it back unchanged', async () => {
    const untouchable = new Proxy({}, {
      get: (_, key) => {
        throw new Error(`the engine was used (${String(key)})`);
      },
    }) as Engine;
    const tensors = denseAdapter(true);
    const poolerOnly = new Map([...tensors].filter(([name]) => name.startsWith('pooler.')));
    const adapter = new GpuAdapter(untouchable, config, { ...lora, targetModules: ['pooler.dense'] }, poolerOnly, true);
    expect(adapter.modules.size).toBe(0);
    expect(await adapter.download()).toEqual(poolerOnly);
    expect(adapter.parameters().params).toEqual([]);
  });

  it('is merged into the pooler; an adapter without it leaves the pooler as it was', async () => {
    const model = await loadFixtureModel('tiny');
    expect(hasPooler(model.weights)).toBe(true);
    const tensors = denseAdapter(true);
    const merged = mergeAdapters(model.config, model.weights, [{ config: lora, tensors }]);
    const w = model.weights.get('pooler.dense.weight')!;
    const a = tensors.get('pooler.dense.lora_A')!;
    const b = tensors.get('pooler.dense.lora_B')!;
    const scale = loraScale(lora);
    const expected = w.data.map((v, k) => {
      const [o, i] = [Math.floor(k / 32), k % 32];
      return v + scale * (b.data[o * 2] * a.data[i] + b.data[o * 2 + 1] * a.data[32 + i]);
    });
    const got = merged.get('pooler.dense.weight')!.data;
    expect(Math.max(...got.map((v, k) => Math.abs(v - expected[k])))).toBeLessThan(1e-6);
    expect(Math.max(...got.map((v, k) => Math.abs(v - w.data[k])))).toBeGreaterThan(1e-3);
    // The merged checkpoint carries it.
    const written = parseSafetensors(writeBertCheckpoint(model.config, merged)['model.safetensors']).tensors;
    expect(written.get('pooler.dense.weight')?.data).toEqual(got);

    const withoutPooler = denseAdapter(false);
    const kept = mergeAdapters(model.config, model.weights, [{ config: lora, tensors: withoutPooler }]);
    expect(kept.get('pooler.dense.weight')).toBe(w);
    expect(kept.get('encoder.layer.0.output.dense.weight')).not.toBe(model.weights.get('encoder.layer.0.output.dense.weight'));
  });

  it('cannot be merged into a base without a pooler (the adapter check refuses it before anything is merged)', async () => {
    const model = await loadFixtureModel('tiny');
    const noPooler = new Map([...model.weights].filter(([name]) => !name.startsWith('pooler.')));
    expect(() => mergeAdapters(model.config, noPooler, [{ config: lora, tensors: denseAdapter(true) }])).toThrow(
      'adapter 1 of 1: pooler.dense: the adapter has LoRA weights for it but the base checkpoint has no pooler',
    );
  });
});
