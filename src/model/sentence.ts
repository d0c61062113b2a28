/**
 * Sentence embeddings as sentence-transformers computes them: prompt + text (lower-cased when the
 * model says so) → BERT hidden states → pooling (one of six modes, optionally leaving the prompt's
 * tokens out) → optional L2 normalisation, with the backward of the same chain for training.
 */
import type { Tensor } from '../engine/tensor.ts';
import { l2NormalizeBackward, l2NormalizeForward } from '../engine/ops/l2norm.ts';
import { type PoolingMode, poolBackward, poolForward } from '../engine/ops/pooling.ts';
import { type BertEncoder, type ForwardMode, type ForwardResult, type TokenBatch, reshape } from './bert.ts';
import type { RolePrompts, SentenceConfig, SentenceSettings, TextRole } from './sentence-config.ts';
import type { Tokenizer } from './tokenizer.ts';

export type Pooling = PoolingMode;

export interface SentenceOptions {
  pooling: Pooling;
  normalize: boolean;
  /** Longest tokenised input, [CLS] and [SEP] included; longer texts are truncated. */
  maxLength: number;
  /** Each role's prompt, prepended to its texts (default: none). */
  prompts?: RolePrompts;
  /** Lower-case prompt + text before tokenising (sentence_bert_config.json do_lower_case). */
  lowercase?: boolean;
  /** Leave the prompt's tokens ([CLS] included) out of the pooling (the Pooling module's include_prompt false). */
  excludePrompt?: boolean;
}

/** Tokenised texts; `poolingMask` [B, T] replaces the attention mask in the pooling when prompts are left out of it. */
/** The encoder options of a run's settings on a model whose folder says `config` (lower-casing, prompt exclusion). */
export function sentenceOptions(settings: SentenceSettings, config: SentenceConfig): SentenceOptions {
  return { ...settings, lowercase: config.lowercase, excludePrompt: !config.includePrompt };
}

export interface SentenceBatch extends TokenBatch {
  poolingMask?: Float32Array;
}

/** Sequences [start, end) of a batch, padded as the whole batch is (views, no copies). */
export function sliceSequences(batch: SentenceBatch, start: number, end: number): SentenceBatch {
  if (!(Number.isInteger(start) && Number.isInteger(end) && start >= 0 && start < end && end <= batch.batch)) {
    throw new Error(`sequence slice [${start}, ${end}) is not inside a batch of ${batch.batch}`);
  }
  const rows = (a: Float32Array) => a.subarray(start * batch.seq, end * batch.seq);
  const slice: SentenceBatch = {
    inputIds: batch.inputIds.subarray(start * batch.seq, end * batch.seq),
    tokenTypeIds: batch.tokenTypeIds.subarray(start * batch.seq, end * batch.seq),
    attentionMask: rows(batch.attentionMask),
    batch: end - start,
    seq: batch.seq,
  };
  if (batch.poolingMask) slice.poolingMask = rows(batch.poolingMask);
  return slice;
}

export interface SentenceForward {
  /** [B, H] sentence embeddings (normalised when asked). */
  embeddings: Tensor;
  bert: ForwardResult;
  pooled: Tensor;
  /** What the pooling backward needs (token weights, or max pooling's token indices). */
  poolSaved: Tensor;
  norms: Tensor | null;
}

export interface EmbedOptions {
  /** Prepended to every text (default: none). */
  prompt?: string;
  batchSize?: number;
  onProgress?: (done: number) => void;
}

export class SentenceEncoder {
  /** Tokens each prompt takes at the start of a text, [CLS] included (as sentence-transformers counts them). */
  private readonly promptTokens = new Map<string, number>();

  constructor(
    readonly bert: BertEncoder,
    readonly tokenizer: Tokenizer,
    readonly options: SentenceOptions,
  ) {}

  get maxLength(): number {
    return Math.min(this.options.maxLength, this.bert.config.maxSequenceLength);
  }

  /** The prompt texts of `role` get. */
  prompt(role: TextRole): string {
    return this.options.prompts?.[role] ?? '';
  }

  /** Tokenise `texts`, each after its prompt (one for all, or one per text). */
  tokenize(texts: string[], prompts: string | readonly string[] = ''): SentenceBatch {
    const promptOf = (i: number) => (typeof prompts === 'string' ? prompts : prompts[i]);
    if (typeof prompts !== 'string' && prompts.length !== texts.length) throw new Error(`tokenize: ${prompts.length} prompts for ${texts.length} texts`);
    const inputs = texts.map((text, i) => {
      if (typeof text !== 'string') throw new Error(`tokenize: text ${i} is not a string`);
      return this.prepare(promptOf(i) + text);
    });
    const batch: SentenceBatch = this.tokenizer.encode(inputs, this.maxLength);
    if (!this.options.excludePrompt) return batch;
    const poolingMask = batch.attentionMask.slice();
    for (let row = 0; row < batch.batch; row++) poolingMask.fill(0, row * batch.seq, row * batch.seq + Math.min(this.promptLength(promptOf(row)), batch.seq));
    return { ...batch, poolingMask };
  }

  /** sentence-transformers strips the text, then lower-cases it when the model asks. */
  private prepare(text: string): string {
    const stripped = text.trim();
    return this.options.lowercase ? stripped.toLowerCase() : stripped;
  }

  private promptLength(prompt: string): number {
    if (prompt === '') return 0;
    let length = this.promptTokens.get(prompt);
    if (length === undefined) {
      length = this.tokenizer.encode([this.prepare(prompt)], this.maxLength).seq - 1; // [CLS] + the prompt's tokens, without [SEP]
      this.promptTokens.set(prompt, length);
    }
    return length;
  }

  /** Forward of the whole chain; `normalize` defaults to the model's choice (training losses always want unit vectors). */
  forward(batch: SentenceBatch, mode: ForwardMode, normalize = this.options.normalize): SentenceForward {
    const { engine } = this.bert;
    const bert = this.bert.forward(batch, mode);
    const h = this.bert.config.hiddenSize;
    const hidden3 = reshape(bert.hidden, [batch.batch, batch.seq, h]);
    const pooled = engine.alloc([batch.batch, h]);
    const poolingMask = batch.poolingMask ? engine.upload(batch.poolingMask, [batch.batch, batch.seq]) : bert.mask;
    const poolSaved = poolForward(engine, this.options.pooling, hidden3, poolingMask, pooled);
    if (poolingMask !== bert.mask) engine.release(poolingMask);
    if (!normalize) return { embeddings: pooled, bert, pooled, poolSaved, norms: null };
    const embeddings = engine.alloc([batch.batch, h]);
    const norms = engine.alloc([batch.batch]);
    l2NormalizeForward(engine, pooled, embeddings, norms);
    return { embeddings, bert, pooled, poolSaved, norms };
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
    poolBackward(engine, this.options.pooling, state.poolSaved, dPooled, dHidden);
    if (dPooled !== dEmbeddings) engine.release(dPooled);
    this.bert.backward(state.bert, reshape(dHidden, [batch * seq, h]));
    engine.release(dHidden);
  }

  release(state: SentenceForward): void {
    const { engine } = this.bert;
    this.bert.releaseForward(state.bert);
    engine.release(state.pooled, state.poolSaved);
    if (state.norms) engine.release(state.embeddings, state.norms);
  }

  /** Inference: embeddings of `texts`, in batches, as host arrays. */
  async embed(texts: string[], { prompt = '', batchSize = 32, onProgress }: EmbedOptions = {}): Promise<Float32Array[]> {
    const { engine } = this.bert;
    const h = this.bert.config.hiddenSize;
    const out: Float32Array[] = [];
    for (let start = 0; start < texts.length; start += batchSize) {
      const chunk = texts.slice(start, start + batchSize);
      const state = this.forward(this.tokenize(chunk, prompt), { train: false, hiddenDropout: 0, seed: 0 });
      const data = await engine.readF32(state.embeddings);
      this.release(state);
      for (let i = 0; i < chunk.length; i++) out.push(data.slice(i * h, (i + 1) * h));
      onProgress?.(out.length);
    }
    return out;
  }
}
