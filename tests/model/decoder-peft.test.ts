/**
 * PEFT adapter folders for decoders on the host: causal-LM keys and config both ways, Phi-3's fused
 * qkv_proj / gate_up_proj LoRA split into its parts and joined back exactly, and adapters that do
 * not fit refused naming the tensor.
 */
import { describe, expect, it } from 'vitest';
import { parseDecoderConfig } from '../../src/model/decoder-config.ts';
import { initDecoderLora, tiedLoraGroups } from '../../src/model/decoder-lora-layout.ts';
import { decoderFileModules } from '../../src/model/decoder-lora.ts';
import { decoderPeftGradients, readDecoderPeftAdapter, writeDecoderPeftAdapter } from '../../src/model/decoder-peft.ts';
import type { PeftAdapter } from '../../src/model/peft-files.ts';
import { parseSafetensors, writeSafetensors } from '../../src/model/safetensors.ts';
import type { HostTensor } from '../../src/model/state-dict.ts';

const sizes = { vocab_size: 50, hidden_size: 16, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, intermediate_size: 24, max_position_embeddings: 64 };
const llama = parseDecoderConfig({ ...sizes, model_type: 'llama' });
const phi3 = parseDecoderConfig({ ...sizes, model_type: 'phi3' });

const counting = (n: number, from: number) => Float32Array.from({ length: n }, (_, i) => from + i / 100);

/** PEFT's files of an adapter on `targets` (the checkpoint's module names), values numbered so that every cut is visible. */
function peftFiles(model: typeof llama, targets: string[], r = 2, edit?: (tensors: Map<string, HostTensor>) => void) {
  const tensors = new Map<string, HostTensor>();
  let from = 0;
  for (const m of decoderFileModules(model)) {
    if (!targets.some((t) => m.name.endsWith(`.${t}`))) continue;
    tensors.set(`base_model.model.${m.name}.lora_A.weight`, { shape: [r, m.in], data: counting(r * m.in, (from += 1)) });
    tensors.set(`base_model.model.${m.name}.lora_B.weight`, { shape: [m.out, r], data: counting(m.out * r, (from += 1)) });
  }
  edit?.(tensors);
  const config = { peft_type: 'LORA', task_type: 'CAUSAL_LM', base_model_name_or_path: 'tiny', r, lora_alpha: 8, lora_dropout: 0, target_modules: targets };
  return { 'adapter_config.json': JSON.stringify(config), 'adapter_model.safetensors': writeSafetensors(tensors) };
}

const failure = (f: () => unknown) => {
  try {
    f();
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error('expected a failure');
};

describe('decoder PEFT adapters', () => {
  it('read and write causal-LM keys and config unchanged (Llama)', () => {
    const files = peftFiles(llama, ['q_proj', 'v_proj', 'down_proj']);
    const adapter = readDecoderPeftAdapter(files, llama);
    expect(adapter.config).toMatchObject({ r: 2, loraAlpha: 8, targetModules: ['q_proj', 'v_proj', 'down_proj'], baseModelNameOrPath: 'tiny' });
    expect([...adapter.tensors.keys()].slice(0, 2)).toEqual(['model.layers.0.self_attn.q_proj.lora_A', 'model.layers.0.self_attn.q_proj.lora_B']);
    const written = writeDecoderPeftAdapter(adapter, llama);
    expect(JSON.parse(written['adapter_config.json'])).toMatchObject({ task_type: 'CAUSAL_LM', peft_type: 'LORA', r: 2, lora_alpha: 8, target_modules: ['q_proj', 'v_proj', 'down_proj'] });
    const before = parseSafetensors(files['adapter_model.safetensors']).tensors;
    const after = parseSafetensors(written['adapter_model.safetensors']).tensors;
    expect([...after.keys()].sort()).toEqual([...before.keys()].sort());
    for (const [key, t] of before) expect([...after.get(key)!.data]).toEqual([...t.data]);
  });

  it("split Phi-3's fused qkv_proj and gate_up_proj LoRA into their parts (shared A, B by rows) and join them back", () => {
    const files = peftFiles(phi3, ['qkv_proj', 'gate_up_proj']);
    const stored = parseSafetensors(files['adapter_model.safetensors']).tensors;
    const adapter = readDecoderPeftAdapter(files, phi3);
    expect(adapter.config.targetModules).toEqual(['q_proj', 'k_proj', 'v_proj', 'gate_proj', 'up_proj']);
    const fusedA = stored.get('base_model.model.model.layers.1.self_attn.qkv_proj.lora_A.weight')!;
    const fusedB = stored.get('base_model.model.model.layers.1.self_attn.qkv_proj.lora_B.weight')!;
    // q has 16 rows, k and v 8 each: k's B is rows 16..24 of the fused B.
    expect(adapter.tensors.get('model.layers.1.self_attn.k_proj.lora_B')).toEqual({ shape: [8, 2], data: fusedB.data.slice(32, 48) });
    for (const part of ['q_proj', 'k_proj', 'v_proj']) expect([...adapter.tensors.get(`model.layers.1.self_attn.${part}.lora_A`)!.data]).toEqual([...fusedA.data]);
    expect(adapter.tensors.get('model.layers.0.mlp.up_proj.lora_B')!.shape).toEqual([24, 2]);

    const written = writeDecoderPeftAdapter(adapter, phi3);
    expect(JSON.parse(written['adapter_config.json']).target_modules).toEqual(['qkv_proj', 'gate_up_proj']);
    const back = parseSafetensors(written['adapter_model.safetensors']).tensors;
    expect([...back.keys()].sort()).toEqual([...stored.keys()].sort());
    for (const [key, t] of stored) expect([...back.get(key)!.data], key).toEqual([...t.data]);
  });

  it("give a fused module's gradient as PEFT's: the shared A's is the sum of its parts'", () => {
    const adapter = readDecoderPeftAdapter(peftFiles(phi3, ['qkv_proj']), phi3);
    const grads = decoderPeftGradients(phi3, adapter.tensors);
    const fusedA = parseSafetensors(peftFiles(phi3, ['qkv_proj'])['adapter_model.safetensors']).tensors.get('base_model.model.model.layers.0.self_attn.qkv_proj.lora_A.weight')!;
    expect([...grads.get('base_model.model.model.layers.0.self_attn.qkv_proj.lora_A.weight')!.data]).toEqual([...fusedA.data].map((v) => Math.fround(Math.fround(v + v) + v)));
    expect(grads.get('base_model.model.model.layers.0.self_attn.qkv_proj.lora_B.weight')!.shape).toEqual([32, 2]);
  });

  it('refuse what cannot be written for a fused checkpoint: some parts only, or parts with different A', () => {
    const adapter = readDecoderPeftAdapter(peftFiles(phi3, ['qkv_proj']), phi3);
    const qOnly: PeftAdapter = { config: { ...adapter.config, targetModules: ['q_proj'] }, tensors: new Map([...adapter.tensors].filter(([k]) => k.includes('q_proj'))) };
    expect(failure(() => writeDecoderPeftAdapter(qOnly, phi3))).toContain("select model.layers.0.self_attn.q_proj but not all of model.layers.0.self_attn.qkv_proj's parts");
    adapter.tensors.get('model.layers.1.self_attn.v_proj.lora_A')!.data[5] += 1;
    expect(failure(() => writeDecoderPeftAdapter(adapter, phi3))).toContain("model.layers.1.self_attn.v_proj.lora_A differs from model.layers.1.self_attn.q_proj.lora_A (at 5): PEFT's model.layers.1.self_attn.qkv_proj LoRA has one A");
  });

  it('refuse an adapter for another model, a NaN or a foreign tensor, naming each tensor', () => {
    // Made for a model with hidden 32: every A has the wrong width.
    const wide = peftFiles(parseDecoderConfig({ ...sizes, model_type: 'llama', hidden_size: 32, intermediate_size: 24 }), ['q_proj']);
    const message = failure(() => readDecoderPeftAdapter(wide, llama));
    expect(message).toContain('model.layers.0.self_attn.q_proj.lora_A: shape [2, 32], expected [2, 16] (rank r = 2)');
    expect(message).toContain('was the adapter made for another model?');
    const nan = peftFiles(llama, ['o_proj'], 2, (t) => {
      t.get('base_model.model.model.layers.1.self_attn.o_proj.lora_B.weight')!.data[3] = Number.NaN;
    });
    expect(failure(() => readDecoderPeftAdapter(nan, llama))).toContain('model.layers.1.self_attn.o_proj.lora_B[1, 1] is NaN');
    const foreign = peftFiles(llama, ['o_proj'], 2, (t) => t.set('base_model.model.lm_head.lora_A.weight', { shape: [2, 16], data: new Float32Array(32) }));
    expect(failure(() => readDecoderPeftAdapter(foreign, llama))).toContain('not LoRA weights of this llama decoder');
    // Fused names on a model that has q_proj: PEFT would not load it there either.
    expect(failure(() => readDecoderPeftAdapter(peftFiles(phi3, ['qkv_proj']), llama))).toContain('base_model.model.model.layers.0.self_attn.qkv_proj.lora_A.weight');
    const deeper = peftFiles(parseDecoderConfig({ ...sizes, model_type: 'llama', num_hidden_layers: 3 }), ['q_proj']);
    expect(failure(() => readDecoderPeftAdapter(deeper, llama))).toContain('model.layers.2.self_attn.q_proj.lora_A: not a lora_A or lora_B of a module target_modules selects');
  });
});

describe('new decoder adapters', () => {
  it("start as PEFT's init in the checkpoint's modules: a fused module's parts share one A, B is zero", () => {
    const init = initDecoderLora(phi3, 2, ['qkv_proj', 'down_proj'], 7);
    expect(init.targetModules).toEqual(['q_proj', 'k_proj', 'v_proj', 'down_proj']);
    const a = (part: string) => [...init.tensors.get(`model.layers.0.self_attn.${part}.lora_A`)!.data];
    expect(a('k_proj')).toEqual(a('q_proj'));
    expect(a('v_proj')).toEqual(a('q_proj'));
    expect(a('q_proj').every((v) => Math.abs(v) <= 1 / 4 && v !== 0)).toBe(true); // bound 1/√16
    expect(init.tensors.get('model.layers.1.mlp.down_proj.lora_B')!.data.every((v) => v === 0)).toBe(true);
    expect(tiedLoraGroups(phi3, new Set([...init.tensors.keys()].map((k) => k.slice(0, k.lastIndexOf('.')))))).toEqual([
      ['model.layers.0.self_attn.q_proj', 'model.layers.0.self_attn.k_proj', 'model.layers.0.self_attn.v_proj'],
      ['model.layers.1.self_attn.q_proj', 'model.layers.1.self_attn.k_proj', 'model.layers.1.self_attn.v_proj'],
    ]);
    // Written for the checkpoint as PEFT would have made it.
    const files = writeDecoderPeftAdapter({ config: { r: 2, loraAlpha: 4, loraDropout: 0, targetModules: init.targetModules, useRslora: false, baseModelNameOrPath: 'tiny' }, tensors: init.tensors }, phi3);
    expect(JSON.parse(files['adapter_config.json']).target_modules).toEqual(['qkv_proj', 'down_proj']);
  });

  it('refuse a target this decoder does not have, naming its linears', () => {
    expect(failure(() => initDecoderLora(phi3, 2, ['q_proj'], 7))).toBe('LoRA target modules not found in this phi3 decoder: q_proj (its linear layers: qkv_proj, o_proj, gate_up_proj, down_proj)');
  });
});
