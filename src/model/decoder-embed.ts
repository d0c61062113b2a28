/**
 * Text embeddings from a decoder LLM, as the CTD study measured its models' geometry: the last
 * hidden states (after the final norm, Hugging Face's last_hidden_state) averaged over the real
 * tokens, or the last real token's state (a causal model's only token that has read the whole
 * text), optionally L2-normalised. Embeddings are host arrays, so src/eval's separation, KG
 * separation, probes, silhouette and t-SNE take them as they take an encoder's.
 */
import type { Tensor } from '../engine/tensor.ts';
import { l2NormalizeForward } from '../engine/ops/l2norm.ts';
import { poolForward } from '../engine/ops/pooling.ts';
import { reshape } from './bert.ts';
import type { DecoderBatch, DecoderModel } from './decoder.ts';
import type { DecoderTokenizer } from './decoder-tokenizer.ts';

export const DECODER_POOLINGS = ['mean', 'last'] as const;
export type DecoderPooling = (typeof DECODER_POOLINGS)[number];

export interface DecoderEmbedOptions {
  pooling: DecoderPooling;
  normalize: boolean;
}

/** [B, H] embeddings of a tokenised batch on the GPU (the caller releases them). */
export function embedDecoderBatch(model: DecoderModel, batch: DecoderBatch, options: DecoderEmbedOptions): Tensor {
  if (!(DECODER_POOLINGS as readonly string[]).includes(options.pooling)) throw new Error(`decoder pooling must be ${DECODER_POOLINGS.join(' or ')}, got ${options.pooling}`);
  const { engine } = model;
  const h = model.config.hiddenSize;
  const result = model.forward(batch, { train: false, seed: 0 });
  const pooled = engine.alloc([batch.batch, h]);
  const weights = poolForward(engine, options.pooling === 'mean' ? 'mean' : 'last-token', reshape(result.hidden, [batch.batch, batch.seq, h]), result.mask, pooled);
  model.releaseForward(result);
  engine.release(weights);
  if (!options.normalize) return pooled;
  const unit = engine.alloc([batch.batch, h]);
  const norms = engine.alloc([batch.batch]);
  l2NormalizeForward(engine, pooled, unit, norms);
  engine.release(pooled, norms);
  return unit;
}

export interface EmbedTextsOptions extends DecoderEmbedOptions {
  /** Texts per forward pass (default 16). */
  batchSize?: number;
  /** Tokens per text, special ones included; longer texts are cut (default: the model's positions). */
  maxLength?: number;
  onProgress?: (done: number) => void;
}

/** Embeddings of `texts`, in batches, as host arrays in order. */
export async function embedDecoderTexts(model: DecoderModel, tokenizer: DecoderTokenizer, texts: string[], options: EmbedTextsOptions): Promise<Float32Array[]> {
  const batchSize = options.batchSize ?? 16;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new Error(`embedding batch size must be a positive integer, got ${batchSize}`);
  const h = model.config.hiddenSize;
  const out: Float32Array[] = [];
  for (let start = 0; start < texts.length; start += batchSize) {
    const batch = tokenizer.encodeBatch(texts.slice(start, start + batchSize), options.maxLength ?? model.config.maxSequenceLength);
    const embeddings = embedDecoderBatch(model, batch, options);
    const data = await model.engine.readF32(embeddings);
    model.engine.release(embeddings);
    for (let i = 0; i < batch.batch; i++) out.push(data.slice(i * h, (i + 1) * h));
    options.onProgress?.(out.length);
  }
  return out;
}

