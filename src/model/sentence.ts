/**
 * Sentence embeddings: BERT hidden states → mean or CLS pooling → optional L2 normalisation,
 * with the backward of the same chain for training.
 */
import type { Tensor } from '../engine/tensor.ts';
import { l2NormalizeBackward, l2NormalizeForward } from '../engine/ops/l2norm.ts';
import { clsPoolBackward, clsPoolForward, meanPoolBackward, meanPoolForward } from '../engine/ops/pooling.ts';
import { type BertEncoder, type ForwardMode, type ForwardResult, type TokenBatch, reshape } from './bert.ts';
import type { Tokenizer } from './tokenizer.ts';

export type Pooling = 'mean' | 'cls';

export interface SentenceOptions {
  pooling: Pooling;
  normalize: boolean;
  /** Longest tokenised input, [CLS] and [SEP] included; longer texts are truncated. */
  maxLength: number;
}

export interface SentenceForward {
  /** [B, H] sentence embeddings (normalised when options.normalize). */
  embeddings: Tensor;
  bert: ForwardResult;
  pooled: Tensor;
  norms: Tensor | null;
}

export class SentenceEncoder {
  constructor(
    readonly bert: BertEncoder,
    readonly tokenizer: Tokenizer,
    readonly options: SentenceOptions,
  ) {}

  tokenize(texts: string[]): TokenBatch {
    return this.tokenizer.encode(texts, Math.min(this.options.maxLength, this.bert.config.maxSequenceLength));
  }

  forward(batch: TokenBatch, mode: ForwardMode): SentenceForward {
    const { engine } = this.bert;
    const bert = this.bert.forward(batch, mode);
    const h = this.bert.config.hiddenSize;
    const hidden3 = reshape(bert.hidden, [batch.batch, batch.seq, h]);
    const pooled = engine.alloc([batch.batch, h]);
    if (this.options.pooling === 'mean') meanPoolForward(engine, hidden3, bert.mask, pooled);
    else clsPoolForward(engine, hidden3, pooled);
    if (!this.options.normalize) return { embeddings: pooled, bert, pooled, norms: null };
    const embeddings = engine.alloc([batch.batch, h]);
    const norms = engine.alloc([batch.batch]);
    l2NormalizeForward(engine, pooled, embeddings, norms);
    return { embeddings, bert, pooled, norms };
  }

  /** dEmbeddings [B, H] → LoRA gradients (accumulated). */
  backward(state: SentenceForward, dEmbeddings: Tensor): void {
    const { engine } = this.bert;
    const { batch, seq } = state.bert;
    const h = this.bert.config.hiddenSize;
    let dPooled = dEmbeddings;
    if (state.norms) {
      dPooled = engine.alloc([batch, h]);
      l2NormalizeBackward(engine, state.embeddings, state.norms, dEmbeddings, dPooled);
    }
    const dHidden = engine.alloc([batch, seq, h]);
    if (this.options.pooling === 'mean') meanPoolBackward(engine, state.bert.mask, dPooled, dHidden);
    else clsPoolBackward(engine, dPooled, dHidden);
    if (dPooled !== dEmbeddings) engine.release(dPooled);
    this.bert.backward(state.bert, reshape(dHidden, [batch * seq, h]));
    engine.release(dHidden);
  }

  release(state: SentenceForward): void {
    const { engine } = this.bert;
    this.bert.releaseForward(state.bert);
    engine.release(state.pooled);
    if (state.norms) engine.release(state.embeddings, state.norms);
  }

  /** Inference: embeddings of `texts`, in batches, as host arrays. */
  async embed(texts: string[], batchSize = 32, onProgress?: (done: number) => void): Promise<Float32Array[]> {
    const { engine } = this.bert;
    const h = this.bert.config.hiddenSize;
    const out: Float32Array[] = [];
    for (let start = 0; start < texts.length; start += batchSize) {
      const chunk = texts.slice(start, start + batchSize);
      const state = this.forward(this.tokenize(chunk), { train: false, hiddenDropout: 0, seed: 0 });
      const data = await engine.readF32(state.embeddings);
      this.release(state);
      for (let i = 0; i < chunk.length; i++) out.push(data.slice(i * h, (i + 1) * h));
      onProgress?.(out.length);
    }
    return out;
  }
}
