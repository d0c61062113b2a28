/**
 * Perplexity of a decoder LLM (with whatever adapters are on it) on held-out texts: exp of the mean
 * next-token loss over every predicted token of the texts, the quantity a domain adapter's causal-LM
 * training lowers. The GPU gives each position's −log p(next token) through the chunked LM head (no
 * [positions, vocabulary] logits held); sums are taken per text in float64, and the texts are the
 * bootstrap's units, so a long note weighs by its tokens but is resampled whole.
 */
import { chunkText } from '../data/notes.ts';
import { IGNORE_INDEX } from '../engine/ops/lm-head-loss.ts';
import type { DecoderTokenizer } from '../model/decoder-tokenizer.ts';
import { DEFAULT_LM_HEAD_CHUNK, type DecoderModel, causalLmTargets } from '../model/decoder.ts';
import { type MetricComparison, compareMetric } from './before-after.ts';
import type { BootstrapOptions, Interval } from './bootstrap.ts';
import { bootstrap } from './bootstrap.ts';

/** A text's next-token loss: the sum of −log p over its predicted tokens, and how many there are. */
export interface TextLoss {
  tokens: number;
  loss: number;
}

export interface TextLossOptions {
  /**
   * Tokens per sequence, special ones included: a longer text is cut into pieces of at most this many
   * (chunkText: at paragraphs, sentences, words) whose predicted tokens all count for it.
   */
  maxLength: number;
  /** Sequences per forward pass (default 8). */
  batchSize?: number;
  /** LM-head vocabulary rows per chunk. */
  chunk?: number;
  /** Called after each forward pass with the sequences done and their total. */
  onProgress?: (done: number, total: number) => void;
}

/** Each text's next-token loss under the model as it is now (its adapters applied, no dropout). */
export async function textLosses(model: DecoderModel, tokenizer: Pick<DecoderTokenizer, 'encode' | 'encodeBatch'>, texts: readonly string[], options: TextLossOptions): Promise<TextLoss[]> {
  const { maxLength } = options;
  const batchSize = options.batchSize ?? 8;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new Error(`perplexity batch size must be a positive integer, got ${batchSize}`);
  if (texts.length === 0) throw new Error('no texts to measure perplexity on');
  const count = (text: string) => tokenizer.encode(text).length;
  const pieces: { text: string; of: number; tokens: number }[] = [];
  texts.forEach((text, i) => {
    const parts = chunkText(text, maxLength, count);
    if (parts.length === 0) throw new Error(`text ${i + 1} is empty`);
    for (const part of parts) pieces.push({ text: part, of: i, tokens: count(part) });
  });
  // Longest first, so each batch pads its sequences to similar lengths (the sums do not depend on the order).
  pieces.sort((a, b) => b.tokens - a.tokens);
  const losses: TextLoss[] = texts.map(() => ({ tokens: 0, loss: 0 }));
  for (let start = 0; start < pieces.length; start += batchSize) {
    const slice = pieces.slice(start, start + batchSize);
    const batch = tokenizer.encodeBatch(slice.map((p) => p.text), maxLength);
    const targets = causalLmTargets(batch);
    const result = model.forward(batch, { train: false, seed: 0 });
    const loss = model.loss(result, targets, options.chunk ?? DEFAULT_LM_HEAD_CHUNK);
    const tokenLoss = await model.engine.readF32(loss.tokenLoss);
    model.releaseLoss(loss);
    model.releaseForward(result);
    slice.forEach((piece, row) => {
      const into = losses[piece.of];
      for (let j = row * batch.seq; j < (row + 1) * batch.seq; j++) {
        if (targets[j] === IGNORE_INDEX) continue;
        into.tokens += 1;
        into.loss += tokenLoss[j];
      }
    });
    options.onProgress?.(start + slice.length, pieces.length);
  }
  const bad = losses.findIndex((l) => l.tokens === 0 || !Number.isFinite(l.loss));
  if (bad >= 0) throw new Error(losses[bad].tokens === 0 ? `text ${bad + 1} is a single token: there is no next token to predict` : `text ${bad + 1} has a non-finite loss ${losses[bad].loss}`);
  return losses;
}

/** exp(Σ loss / Σ tokens) over the selected texts (all when `indices` is absent). */
export function perplexity(losses: readonly TextLoss[], indices?: ArrayLike<number>): number {
  let loss = 0;
  let tokens = 0;
  const n = indices ? indices.length : losses.length;
  for (let k = 0; k < n; k++) {
    const l = losses[indices ? indices[k] : k];
    loss += l.loss;
    tokens += l.tokens;
  }
  return tokens === 0 ? NaN : Math.exp(loss / tokens);
}

/** Perplexity with its percentile-bootstrap interval over texts. */
export function perplexityInterval(losses: readonly TextLoss[], options: BootstrapOptions = {}): Interval {
  return bootstrap({ units: losses.length }, (idx) => perplexity(losses, idx), options);
}

/**
 * The perplexity of the base model (or base + frozen stack) and of the adapted one on the same texts,
 * as a before/after comparison: paired resamples of texts, the change = adapted − base.
 */
export function perplexityComparison(base: readonly TextLoss[], adapted: readonly TextLoss[], options: BootstrapOptions = {}): MetricComparison {
  if (base.length !== adapted.length) throw new Error(`${base.length} base text losses for ${adapted.length} adapted ones`);
  if (base.length === 0) throw new Error('no texts to measure perplexity on');
  const mismatch = base.findIndex((b, i) => b.tokens !== adapted[i].tokens);
  if (mismatch >= 0) throw new Error(`text ${mismatch + 1} has ${base[mismatch].tokens} predicted tokens under the base and ${adapted[mismatch].tokens} under the adapted model`);
  return compareMetric({ key: 'perplexity', unit: 'text', sample: { units: base.length } }, (idx) => perplexity(base, idx), (idx) => perplexity(adapted, idx), options);
}
