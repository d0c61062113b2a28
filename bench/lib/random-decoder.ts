/**
 * Decoders of benchmark widths with random weights, made in memory one layer at a time as a
 * checkpoint reader hands them out (a 2-layer model of a real model's width has its full
 * vocabulary: Qwen2.5's embeddings alone are 545 MB of f32), and the causal-LM training set-up the
 * memory and training benchmarks run: NF4 base with double quantisation (QLoRA's), LoRA r 16, α 32,
 * dropout 0.05 on every linear layer, the DecoderTrainer with the default schedule.
 */
import { Rng } from '../../src/data/rng.ts';
import type { Engine } from '../../src/engine/engine.ts';
import type { StoragePrecision } from '../../src/engine/stored.ts';
import type { DecoderBatch } from '../../src/model/decoder.ts';
import { DecoderModel } from '../../src/model/decoder.ts';
import { type DecoderConfig, parseDecoderConfig } from '../../src/model/decoder-config.ts';
import { createDecoderAdapter } from '../../src/model/decoder-lora.ts';
import { initDecoderLora } from '../../src/model/decoder-lora-layout.ts';
import { DECODER_LINEARS, type DecoderTensor, type DecoderWeightReader, allLinearTargets, decoderGlobalShapes, decoderLayerShapes } from '../../src/model/decoder-weights.ts';
import type { LoraConfig } from '../../src/model/lora.ts';
import { DEFAULT_TRAIN_CONFIG } from '../../src/train/defaults.ts';
import { DecoderTrainer } from '../../src/train/decoder-trainer.ts';
import { fillRandomWeight } from './random-model.ts';

/** LoRA on the engine's seven linears of every layer (Phi-3's fused modules are split at load, so its LoRA is too). */
export const DECODER_BENCH_LORA: LoraConfig = { r: 16, alpha: 32, dropout: 0.05, rslora: false, targetModules: DECODER_LINEARS.map((n) => n.slice(n.indexOf('.') + 1)) };
export const DECODER_BENCH_BASE = { quantization: 'nf4', doubleQuant: true } as const;

/** config.json fields of the benchmarked models (their published configs), by bench key. */
const WIDTHS = {
  qwen25_05b: { model_type: 'qwen2', num_hidden_layers: 24, hidden_size: 896, num_attention_heads: 14, num_key_value_heads: 2, intermediate_size: 4864, vocab_size: 151936, tie_word_embeddings: true, max_position_embeddings: 32768 },
  llama32_1b: { model_type: 'llama', num_hidden_layers: 16, hidden_size: 2048, num_attention_heads: 32, num_key_value_heads: 8, head_dim: 64, intermediate_size: 8192, vocab_size: 128256, tie_word_embeddings: true, max_position_embeddings: 131072 },
  phi3_mini: { model_type: 'phi3', num_hidden_layers: 32, hidden_size: 3072, num_attention_heads: 32, num_key_value_heads: 32, intermediate_size: 8192, vocab_size: 32064, tie_word_embeddings: false, max_position_embeddings: 4096 },
} as const;

export type DecoderBenchModel = keyof typeof WIDTHS;
export const DECODER_BENCH_MODELS = Object.keys(WIDTHS) as DecoderBenchModel[];

/** The model's config, or the same width with `layers` layers. */
export function decoderBenchConfig(model: DecoderBenchModel, layers?: number): DecoderConfig {
  return parseDecoderConfig({ ...WIDTHS[model], num_hidden_layers: layers ?? WIDTHS[model].num_hidden_layers });
}

function randomReader(config: DecoderConfig, seed: number): DecoderWeightReader {
  const make = (shapes: Map<string, number[]>, rng: Rng) => {
    const tensors = new Map<string, DecoderTensor>();
    for (const [name, shape] of shapes) {
      const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
      if (name.endsWith('norm.weight')) data.fill(1);
      else if (!name.endsWith('.bias')) fillRandomWeight(data, rng);
      tensors.set(name, { format: 'f32', tensor: { shape, data } });
    }
    return tensors;
  };
  const readLayer = async (layer: number) => make(decoderLayerShapes(config, layer), new Rng(seed + 1 + layer));
  return {
    readGlobals: async () => make(decoderGlobalShapes(config), new Rng(seed)),
    readLayer,
    async *layers() {
      for (let layer = 0; layer < config.numHiddenLayers; layer++) yield { layer, tensors: await readLayer(layer) };
    },
  };
}

export interface DecoderBenchTrainer {
  model: DecoderModel;
  trainer: DecoderTrainer;
  release(): void;
}

/**
 * The random decoder on `engine` (embeddings and head in `baseParts`) with a new trainable adapter
 * and its trainer (checkpointing 1 layer in `checkpointEvery`, 0 = off); the pool is trimmed of
 * load-time staging.
 */
export async function decoderBenchTrainer(
  engine: Engine,
  config: DecoderConfig,
  seed: number,
  layout: { checkpointEvery?: number; baseParts?: StoragePrecision } = {},
): Promise<DecoderBenchTrainer> {
  const model = await DecoderModel.create(engine, config, randomReader(config, seed), { ...DECODER_BENCH_BASE, baseParts: layout.baseParts ?? 'f32' });
  engine.trimPool(); // the f32 weights staged for quantisation are not training memory
  // Phi-3's LoRA is on its fused modules, as PEFT puts it: the same canonical modules as DECODER_BENCH_LORA's.
  const init = initDecoderLora(config, DECODER_BENCH_LORA.r, allLinearTargets(config), seed + 100);
  model.adapters = [createDecoderAdapter(engine, config, { ...DECODER_BENCH_LORA, targetModules: init.targetModules }, init.tensors, true)];
  const trainer = new DecoderTrainer(model, { ...DEFAULT_TRAIN_CONFIG, totalSteps: 1000, checkpointEvery: layout.checkpointEvery ?? 0 });
  return {
    model,
    trainer,
    release() {
      trainer.release();
      model.destroy();
      engine.trimPool();
    },
  };
}

/** `sequences` rows of `seq` random token ids, no padding. */
export function decoderBenchBatch(config: DecoderConfig, sequences: number, seq: number, seed: number): DecoderBatch {
  const rng = new Rng(seed);
  const inputIds = Uint32Array.from({ length: sequences * seq }, () => rng.int(config.vocabSize));
  return { inputIds, attentionMask: new Float32Array(sequences * seq).fill(1), batch: sequences, seq };
}
