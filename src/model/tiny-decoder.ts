/**
 * A tiny Llama-layout decoder folder, by file name: config.json, random weights (N(0, 0.02²),
 * norms 1) in model.safetensors, and the tiny byte-level tokenizer with Llama 3's template and chat
 * template. The bundled demo decoder (scripts/make-demo-decoder.ts) and the tests' decoder folders
 * (tests/helpers/tiny-decoder.ts) are made by it. Same options → the same bytes.
 */
import { Rng } from '../data/rng.ts';
import { parseDecoderConfig } from './decoder-config.ts';
import { decoderGlobalShapes, decoderLayerShapes } from './decoder-weights.ts';
import { writeSafetensors } from './safetensors.ts';
import type { HostTensor } from './state-dict.ts';
import { byteLevelTokenizer } from './tiny-byte-tokenizer.ts';

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

/** The tiny decoder's files: config.json, model.safetensors, tokenizer.json, tokenizer_config.json. */
export function tinyDecoderFiles(options: TinyDecoderOptions = {}): Record<string, string | Uint8Array> {
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
  return {
    'config.json': JSON.stringify(json, null, 2),
    'model.safetensors': writeSafetensors(tensors),
    'tokenizer.json': tokenizer.tokenizerJson,
    'tokenizer_config.json': tokenizer.tokenizerConfig(),
  };
}
