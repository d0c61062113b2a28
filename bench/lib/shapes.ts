/**
 * The model shapes the benchmarks use (random weights of real models' sizes) and the token batches
 * they feed: fixed, seeded ids so every runtime sees exactly the same input.
 */
import { Rng } from '../../src/data/rng.ts';
import type { TokenBatch } from '../../src/model/bert.ts';

/** Hugging Face BertConfig sizes, as the fixture exporter takes them. */
export interface BenchShapeConfig {
  vocab_size: number;
  hidden_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  intermediate_size: number;
  max_position_embeddings: number;
}

export interface BenchShape {
  /** Short key used in JSON figures, e.g. 'minilm_l6'. */
  key: string;
  label: string;
  config: BenchShapeConfig;
}

/** A BERT-vocabulary shape of 512 positions. */
function bertShape(key: string, label: string, hidden: number, layers: number, heads: number, intermediate: number): BenchShape {
  return {
    key,
    label,
    config: { vocab_size: 30522, hidden_size: hidden, num_hidden_layers: layers, num_attention_heads: heads, intermediate_size: intermediate, max_position_embeddings: 512 },
  };
}

export const MINILM_L6 = bertShape('minilm_l6', 'MiniLM-L6 shape', 384, 6, 12, 1536);
export const BGE_SMALL = bertShape('bge_small', 'BGE-small shape', 384, 12, 12, 1536);
export const BERT_BASE = bertShape('bert_base', 'BERT-base shape', 768, 12, 12, 3072);
export const BERT_LARGE = bertShape('bert_large', 'BERT-large shape', 1024, 24, 16, 4096);

/** The shapes the torch-exported benchmarks (embed, train) take; bench/gpu.ts also runs BERT-base and -large. */
export const BENCH_SHAPES: readonly BenchShape[] = [MINILM_L6, BGE_SMALL];

export function shapeByKey(key: string): BenchShape {
  const shape = BENCH_SHAPES.find((s) => s.key === key);
  if (!shape) throw new Error(`unknown model shape "${key}" (known: ${BENCH_SHAPES.map((s) => s.key).join(', ')})`);
  return shape;
}

/** The exporter's vocabulary: [PAD]=0 [UNK]=1 [CLS]=2 [SEP]=3 [MASK]=4, then ordinary tokens. */
const CLS_ID = 2;
const SEP_ID = 3;
const FIRST_ORDINARY_ID = 5;

/**
 * `batch` full-length sequences of `seq` tokens: [CLS], random ordinary ids, [SEP]; no padding, so
 * every runtime does the same work whatever it does with masked positions.
 */
export function benchTokenBatch(batch: number, seq: number, vocabSize: number, seed: number): TokenBatch {
  if (seq < 2) throw new Error(`a benchmark sequence needs at least [CLS] and [SEP], got seq ${seq}`);
  const rng = new Rng(seed);
  const inputIds = new Uint32Array(batch * seq);
  for (let b = 0; b < batch; b++) {
    inputIds[b * seq] = CLS_ID;
    for (let t = 1; t < seq - 1; t++) inputIds[b * seq + t] = FIRST_ORDINARY_ID + rng.int(vocabSize - FIRST_ORDINARY_ID);
    inputIds[b * seq + seq - 1] = SEP_ID;
  }
  return { inputIds, tokenTypeIds: new Uint32Array(batch * seq), attentionMask: new Float32Array(batch * seq).fill(1), batch, seq };
}

/**
 * Multiply-add FLOPs (2 per MAC) of one encoder forward: the six linears of every layer plus the
 * two attention products (scores and context); embeddings, LayerNorm, GELU and pooling are left
 * out (they are O(tokens·hidden)).
 */
export function forwardFlops(config: BenchShapeConfig, batch: number, seq: number): { linear: number; attention: number } {
  const h = config.hidden_size;
  const tokens = batch * seq;
  const layers = config.num_hidden_layers;
  return {
    linear: 2 * tokens * (4 * h * h + 2 * h * config.intermediate_size) * layers,
    attention: 2 * 2 * batch * seq * seq * h * layers,
  };
}
