/**
 * Decoder LoRA names and checks, and the causal-LM targets, on the host: an adapter that does not fit
 * the decoder is refused before the engine is touched, naming the tensor.
 */
import { describe, expect, it } from 'vitest';
import type { Engine } from '../../src/engine/engine.ts';
import { IGNORE_INDEX } from '../../src/engine/ops/lm-head-loss.ts';
import { causalLmTargets } from '../../src/model/decoder.ts';
import { parseDecoderConfig } from '../../src/model/decoder-config.ts';
import { createDecoderAdapter, decoderLinearModules } from '../../src/model/decoder-lora.ts';
import type { HostAdapterTensors } from '../../src/model/lora.ts';

const config = parseDecoderConfig({
  model_type: 'qwen3',
  vocab_size: 50,
  hidden_size: 16,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  head_dim: 8,
  intermediate_size: 24,
  max_position_embeddings: 64,
});

const untouchable = new Proxy({}, {
  get: (_, key) => {
    throw new Error(`the engine was used (${String(key)})`);
  },
}) as Engine;

const lora = { r: 2, alpha: 4, dropout: 0, rslora: false, targetModules: ['q_proj', 'down_proj'] };

function adapterFor(targets: string[]): HostAdapterTensors {
  const tensors: HostAdapterTensors = new Map();
  for (const m of decoderLinearModules(config)) {
    if (!targets.some((t) => m.name.endsWith(`.${t}`))) continue;
    tensors.set(`${m.name}.lora_A`, { shape: [2, m.in], data: new Float32Array(2 * m.in) });
    tensors.set(`${m.name}.lora_B`, { shape: [m.out, 2], data: new Float32Array(2 * m.out) });
  }
  return tensors;
}

describe('decoder LoRA modules', () => {
  it('are named as in the checkpoint, with head_dim-sized attention projections', () => {
    const modules = decoderLinearModules(config);
    expect(modules.length).toBe(14);
    expect(modules[0]).toEqual({ name: 'model.layers.0.self_attn.q_proj', in: 16, out: 32 });
    expect(modules[1]).toEqual({ name: 'model.layers.0.self_attn.k_proj', in: 16, out: 16 });
    expect(modules[3]).toEqual({ name: 'model.layers.0.self_attn.o_proj', in: 32, out: 16 });
    expect(modules[13]).toEqual({ name: 'model.layers.1.mlp.down_proj', in: 24, out: 16 });
  });

  it('refuses an adapter with a wrong shape, a missing half, a stray tensor or a NaN, naming each', () => {
    const tensors = adapterFor(['q_proj', 'down_proj']);
    tensors.set('model.layers.0.self_attn.q_proj.lora_A', { shape: [2, 24], data: new Float32Array(48) });
    tensors.delete('model.layers.1.mlp.down_proj.lora_B');
    tensors.set('model.layers.0.self_attn.k_proj.lora_A', { shape: [2, 16], data: new Float32Array(32) });
    tensors.get('model.layers.1.self_attn.q_proj.lora_B')!.data[3] = Number.NaN;
    const error = (() => {
      try {
        createDecoderAdapter(untouchable, config, lora, tensors, true);
      } catch (e) {
        return (e as Error).message;
      }
      return '';
    })();
    expect(error).toContain('model.layers.0.self_attn.q_proj.lora_A: shape [2, 24], expected [2, 16]');
    expect(error).toContain('model.layers.1.mlp.down_proj.lora_B: missing');
    expect(error).toContain('model.layers.0.self_attn.k_proj.lora_A: not a lora_A or lora_B of a module target_modules selects');
    expect(error).toContain('model.layers.1.self_attn.q_proj.lora_B: holds a non-finite value');
  });

  it('refuses target_modules that select nothing here', () => {
    expect(() => createDecoderAdapter(untouchable, config, { ...lora, targetModules: ['query', 'value'] }, adapterFor([]), true)).toThrow(
      /match none of this decoder's linear layers/,
    );
  });
});

describe('causalLmTargets', () => {
  it('predicts each next real token; the last column and padding predict nothing', () => {
    const targets = causalLmTargets({ inputIds: Uint32Array.from([1, 5, 6, 7, 1, 8, 0, 0]), attentionMask: Float32Array.from([1, 1, 1, 1, 1, 1, 0, 0]), batch: 2, seq: 4 });
    const I = IGNORE_INDEX;
    expect([...targets]).toEqual([5, 6, 7, I, 8, I, I, I]);
  });
});
