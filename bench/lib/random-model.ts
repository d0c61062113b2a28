/**
 * A BERT of a benchmark shape with random weights, made in memory (no torch, no files): what the GPU
 * benchmark needs on a machine that has nothing but Node. Weights have the spread of BERT's N(0, 0.02²)
 * initialiser, but uniform, from a multiplicative hash: a BERT-large's 335 M values in seconds, where
 * a normal generator in JS takes minutes, and a kernel's speed does not depend on the distribution.
 * LayerNorm γ = 1, β = 0. The tokenizer knows only the special tokens; the benchmark feeds token ids
 * (benchTokenBatch) directly.
 */
import { Rng } from '../../src/data/rng.ts';
import type { ModelFiles } from '../../src/model/checkpoint.ts';
import { type BertConfig, parseBertConfig } from '../../src/model/config.ts';
import { type StateDict, bertWeightShapes, shapeSize } from '../../src/model/state-dict.ts';
import { bertTokenizerJson, createTokenizer } from '../../src/model/tokenizer.ts';
import type { BenchShapeConfig } from './shapes.ts';

/** A uniform variable on [-a/2, a/2] has standard deviation a/√12: 0.02 for a = 0.02·√12. */
const UNIFORM_SCALE = 0.02 * Math.sqrt(12);

/** Fill `data` with hashed uniform values of standard deviation 0.02 from an offset `rng` draws. */
export function fillRandomWeight(data: Float32Array, rng: Rng): Float32Array {
  const offset = rng.int(0x7fffffff);
  for (let i = 0; i < data.length; i++) data[i] = UNIFORM_SCALE * ((Math.imul(i + offset, 0x9e3779b1) >>> 0) / 2 ** 32 - 0.5);
  return data;
}

export function randomBertConfig(shape: BenchShapeConfig): BertConfig {
  return parseBertConfig({ model_type: 'bert', architectures: ['BertModel'], type_vocab_size: 2, layer_norm_eps: 1e-12, hidden_act: 'gelu', ...shape });
}

export function randomBertFiles(shape: BenchShapeConfig, seed: number): Pick<ModelFiles, 'config' | 'weights' | 'tokenizer'> {
  const config = randomBertConfig(shape);
  const rng = new Rng(seed);
  const weights: StateDict = new Map();
  for (const [name, dims] of bertWeightShapes(config)) {
    const data = new Float32Array(shapeSize(dims));
    if (name.endsWith('LayerNorm.weight')) data.fill(1);
    else if (!name.endsWith('.bias')) fillRandomWeight(data, rng);
    weights.set(name, { shape: dims, data });
  }
  const vocab = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', 'a'].join('\n');
  const tokenizer = createTokenizer(bertTokenizerJson(vocab, {}), { model_max_length: shape.max_position_embeddings });
  return { config, weights, tokenizer };
}
