/**
 * LoRA on a decoder: module names as in the *ForCausalLM checkpoint (`model.layers.3.self_attn.q_proj`,
 * so PEFT's key is `base_model.model.` + name + `.lora_A.weight`), their shapes, PEFT's target
 * matching, and the adapter checked against the model and put on the GPU.
 */
import type { Engine } from '../engine/engine.ts';
import type { DecoderConfig } from './decoder-config.ts';
import { checkDecoderAdapter } from './decoder-adapter-check.ts';
import { DECODER_LINEARS, type DecoderLinear, FUSED } from './decoder-weights.ts';
import { GpuLoraModules, type HostAdapterTensors, type LoraConfig, validateLoraConfig } from './lora.ts';

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

/** A linear module as the checkpoint (and so PEFT) names it; a fused one (Phi-3) lists its canonical parts and their rows. */
export interface DecoderFileModule {
  name: string;
  in: number;
  out: number;
  parts: { name: string; rows: [number, number] }[] | null;
}

/** The checkpoint's linear modules, in PEFT's order: the canonical ones, or for Phi-3 qkv_proj, o_proj, gate_up_proj, down_proj. */
export function decoderFileModules(config: DecoderConfig): DecoderFileModule[] {
  if (!config.fusedProjections) return decoderLinearModules(config).map((m) => ({ ...m, parts: null }));
  const linears = ['self_attn.qkv_proj', 'self_attn.o_proj', 'mlp.gate_up_proj', 'mlp.down_proj'];
  const all: DecoderFileModule[] = [];
  for (let layer = 0; layer < config.numHiddenLayers; layer++) {
    for (const linear of linears) {
      const canonical = FUSED[linear] ?? [linear as DecoderLinear];
      let end = 0;
      const parts = canonical.map((part) => {
        const begin = end;
        end += decoderLinearShape(config, part).out;
        return { name: decoderModuleName(layer, part), rows: [begin, end] as [number, number] };
      });
      all.push({ name: `model.layers.${layer}.${linear}`, in: decoderLinearShape(config, canonical[0]).in, out: end, parts: FUSED[linear] ? parts : null });
    }
  }
  return all;
}

/**
 * The adapter on the GPU after checking it against the decoder (checkDecoderAdapter: names, rank,
 * shapes, finite values).
 */
export function createDecoderAdapter(engine: Engine, config: DecoderConfig, lora: LoraConfig, tensors: HostAdapterTensors, trainable: boolean): GpuLoraModules {
  validateLoraConfig(lora);
  const selected = checkDecoderAdapter(config, decoderLinearModules(config), { config: lora, tensors }, 'LoRA adapter');
  return new GpuLoraModules(engine, lora, tensors, selected, trainable);
}
