/**
 * LoRA on a decoder: module names as in the *ForCausalLM checkpoint (`model.layers.3.self_attn.q_proj`,
 * so PEFT's key is `base_model.model.` + name + `.lora_A.weight`), their shapes, PEFT's target
 * matching, and the adapter checked against the model and put on the GPU.
 */
import type { Engine } from '../engine/engine.ts';
import type { DecoderConfig } from './decoder-config.ts';
import { DECODER_LINEARS, type DecoderLinear } from './decoder-weights.ts';
import { GpuLoraModules, type HostAdapterTensors, type LoraConfig, describeTargets, initLoraPairs, targetsModule, validateLoraConfig } from './lora.ts';

export function decoderModuleName(layer: number, linear: DecoderLinear): string {
  return `model.layers.${layer}.${linear}`;
}

/** In and out features of a decoder linear. */
export function decoderLinearShape(config: DecoderConfig, linear: DecoderLinear): { in: number; out: number } {
  const h = config.hiddenSize;
  const q = config.numAttentionHeads * config.headDim;
  const kv = config.numKeyValueHeads * config.headDim;
  const shapes: Record<DecoderLinear, { in: number; out: number }> = {
    'self_attn.q_proj': { in: h, out: q },
    'self_attn.k_proj': { in: h, out: kv },
    'self_attn.v_proj': { in: h, out: kv },
    'self_attn.o_proj': { in: q, out: h },
    'mlp.gate_proj': { in: h, out: config.intermediateSize },
    'mlp.up_proj': { in: h, out: config.intermediateSize },
    'mlp.down_proj': { in: config.intermediateSize, out: h },
  };
  return shapes[linear];
}

/** Every linear module of the decoder with its shape, in PEFT's (registration) order. */
export function decoderLinearModules(config: DecoderConfig): { name: string; in: number; out: number }[] {
  const all: { name: string; in: number; out: number }[] = [];
  for (let layer = 0; layer < config.numHiddenLayers; layer++) {
    for (const linear of DECODER_LINEARS) all.push({ name: decoderModuleName(layer, linear), ...decoderLinearShape(config, linear) });
  }
  return all;
}

const fmt = (shape: readonly number[]) => `[${shape.join(', ')}]`;

/** A new adapter on the linears `lora` targets, PEFT's default init (A Kaiming-uniform, B zero), seeded. */
export function initDecoderLoraTensors(config: DecoderConfig, lora: LoraConfig, seed: number): HostAdapterTensors {
  validateLoraConfig(lora);
  const selected = decoderLinearModules(config).filter((m) => targetsModule(lora, m.name));
  if (selected.length === 0) throw new Error(`LoRA target_modules ${describeTargets(lora.targetModules)} match none of this decoder's linear layers`);
  return initLoraPairs(selected, lora.r, seed);
}

/**
 * The adapter on the GPU after checking it against the decoder: target_modules selects some linear,
 * every tensor is a lora_A or lora_B of a selected module, each selected module has both with rank r
 * and the module's in/out features, and every value is finite.
 */
export function createDecoderAdapter(engine: Engine, config: DecoderConfig, lora: LoraConfig, tensors: HostAdapterTensors, trainable: boolean): GpuLoraModules {
  validateLoraConfig(lora);
  const selected = decoderLinearModules(config).filter((m) => targetsModule(lora, m.name));
  if (selected.length === 0) {
    throw new Error(`LoRA adapter: target_modules ${describeTargets(lora.targetModules)} match none of this decoder's linear layers (q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj)`);
  }
  const expected = new Map<string, number[]>();
  for (const m of selected) {
    expected.set(`${m.name}.lora_A`, [lora.r, m.in]);
    expected.set(`${m.name}.lora_B`, [m.out, lora.r]);
  }
  const problems: string[] = [];
  for (const [name, shape] of expected) {
    const t = tensors.get(name);
    if (!t) problems.push(`${name}: missing (target_modules selects the module)`);
    else if (fmt(t.shape) !== fmt(shape) || t.data.length !== shape[0] * shape[1]) problems.push(`${name}: shape ${fmt(t.shape)}, expected ${fmt(shape)}`);
    else if (!t.data.every(Number.isFinite)) problems.push(`${name}: holds a non-finite value`);
  }
  for (const name of tensors.keys()) if (!expected.has(name)) problems.push(`${name}: not a lora_A or lora_B of a module target_modules selects in this decoder`);
  if (problems.length > 0) {
    const note = `(this decoder: ${config.numHiddenLayers} layers, hidden_size ${config.hiddenSize}, intermediate_size ${config.intermediateSize})`;
    throw new Error(`LoRA adapter does not fit ${note}:\n  ${problems.slice(0, 10).join('\n  ')}${problems.length > 10 ? `\n  … and ${problems.length - 10} more` : ''}`);
  }
  return new GpuLoraModules(engine, lora, tensors, selected.map((m) => m.name), trainable);
}
