/**
 * A tiny Llama-layout decoder folder for CLI and end-to-end tests: config.json, random weights
 * (N(0, 0.02²), norms 1) in model.safetensors, and the tiny byte-level tokenizer with Llama 3's
 * template and chat template. Made here because tests cannot download a real model.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Rng } from '../../src/data/rng.ts';
import { type DecoderConfig, parseDecoderConfig } from '../../src/model/decoder-config.ts';
import { initDecoderLora } from '../../src/model/decoder-lora-layout.ts';
import { writeDecoderPeftAdapter } from '../../src/model/decoder-peft.ts';
import type { PeftAdapter } from '../../src/model/peft-files.ts';
import { decoderGlobalShapes, decoderLayerShapes } from '../../src/model/decoder-weights.ts';
import { writeSafetensors } from '../../src/model/safetensors.ts';
import type { HostTensor } from '../../src/model/state-dict.ts';
import { byteLevelTokenizer } from './decoder-tokenizers.ts';

export interface TinyDecoderOptions {
  seed?: number;
  layers?: number;
  tieWordEmbeddings?: boolean;
}

/** The config.json of the tiny decoder: 272 tokens (the tokenizer's 268, padded), hidden 32, GQA 4 heads over 2. */
export function tinyDecoderConfigJson(options: TinyDecoderOptions = {}): Record<string, unknown> {
  return {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    vocab_size: 272,
    hidden_size: 32,
    num_hidden_layers: options.layers ?? 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    intermediate_size: 48,
    max_position_embeddings: 128,
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    hidden_act: 'silu',
    tie_word_embeddings: options.tieWordEmbeddings ?? false,
    bos_token_id: 263,
    eos_token_id: 265,
    torch_dtype: 'float32',
  };
}

/** Write the tiny decoder's folder into `dir` (which must exist); returns `dir`. */
export function writeTinyDecoder(dir: string, options: TinyDecoderOptions = {}): string {
  const json = tinyDecoderConfigJson(options);
  const config = parseDecoderConfig(json);
  const rng = new Rng(options.seed ?? 1);
  const tensors = new Map<string, HostTensor>();
  const shapes = new Map([...decoderGlobalShapes(config)]);
  for (let layer = 0; layer < config.numHiddenLayers; layer++) for (const [name, shape] of decoderLayerShapes(config, layer)) shapes.set(name, shape);
  for (const [name, shape] of shapes) {
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    if (name.endsWith('norm.weight')) data.fill(1);
    else for (let i = 0; i < data.length; i++) data[i] = rng.normal() * 0.02;
    tensors.set(name, { shape, data });
  }
  const tokenizer = byteLevelTokenizer({ bosTemplate: true });
  writeFileSync(join(dir, 'config.json'), JSON.stringify(json, null, 2));
  writeFileSync(join(dir, 'model.safetensors'), writeSafetensors(tensors));
  writeFileSync(join(dir, 'tokenizer.json'), tokenizer.tokenizerJson);
  writeFileSync(join(dir, 'tokenizer_config.json'), tokenizer.tokenizerConfig());
  return dir;
}

/**
 * A PEFT adapter folder `dir` (created) for a decoder of `config`: r 4 on q, v and down projections,
 * with B drawn large enough (PEFT's init leaves it zero, which would change nothing) to move every
 * output. Returns the adapter as written.
 */
export function writeTinyDecoderAdapter(dir: string, config: DecoderConfig, seed = 11): PeftAdapter {
  const init = initDecoderLora(config, 4, ['q_proj', 'v_proj', 'down_proj'], 7);
  const rng = new Rng(seed);
  for (const [name, t] of init.tensors) if (name.endsWith('lora_B')) t.data.forEach((_, i) => (t.data[i] = rng.normal() * 0.5));
  const adapter: PeftAdapter = {
    config: { r: 4, loraAlpha: 8, loraDropout: 0, targetModules: init.targetModules, useRslora: false, baseModelNameOrPath: 'tiny' },
    tensors: init.tensors,
  };
  mkdirSync(dir);
  for (const [name, bytes] of Object.entries(writeDecoderPeftAdapter(adapter, config))) writeFileSync(join(dir, name), bytes);
  return adapter;
}
