/**
 * Training objectives on one micro-batch: record forward, loss and backward (no readback).
 * - contrastive: InfoNCE / MultipleNegativesRanking over (anchor, positive[, negatives]) with in-batch negatives;
 * - labelled pairs: CosineSimilarityLoss, mean (cos(a, b) − label)².
 */
import type { Tensor } from '../engine/tensor.ts';
import { cosinePairLossBackward, cosinePairLossForward, infoNceBackward, infoNceForward } from '../engine/ops/losses.ts';
import type { ForwardMode } from '../model/bert.ts';
import { type SentenceBatch, type SentenceEncoder, sliceSequences } from '../model/sentence.ts';

export interface ContrastiveExample {
  anchor: string;
  positive: string;
  negatives?: string[];
}

export interface LabelledPair {
  textA: string;
  textB: string;
  /** 1 = related, 0 = unrelated (values in between are allowed as similarity targets). */
  label: number;
}

export type Objective = { kind: 'infonce'; scale: number; symmetric: boolean } | { kind: 'cosine-pairs' };

export type Example = ContrastiveExample | LabelledPair;

/**
 * A tokenised micro-batch. Contrastive: rows are anchors (first `anchors`), then positives, then
 * negatives. Labelled pairs: rows are all text_a, then all text_b, with `labels`.
 */
export interface EncodedBatch {
  tokens: SentenceBatch;
  anchors: number;
  labels: Float32Array | null;
}

/**
 * Tokenise examples with the model's prompts by role: anchors and text_a are queries, positives,
 * negatives and text_b passages (E5's "query: " / "passage: ").
 */
export function encodeExamples(encoder: SentenceEncoder, objective: Objective, examples: Example[]): EncodedBatch {
  if (examples.length === 0) throw new Error('a training batch needs at least one example');
  const withRoles = (queries: string[], passages: string[]) =>
    encoder.tokenize([...queries, ...passages], [...queries.map(() => encoder.prompt('query')), ...passages.map(() => encoder.prompt('passage'))]);
  if (objective.kind === 'infonce') {
    const rows = examples as ContrastiveExample[];
    const passages = [...rows.map((e) => e.positive), ...rows.flatMap((e) => e.negatives ?? [])];
    return { tokens: withRoles(rows.map((e) => e.anchor), passages), anchors: rows.length, labels: null };
  }
  const pairs = examples as LabelledPair[];
  return {
    tokens: withRoles(pairs.map((p) => p.textA), pairs.map((p) => p.textB)),
    anchors: pairs.length,
    labels: Float32Array.from(pairs, (p) => p.label),
  };
}

/**
 * Record forward, loss and backward of one micro-batch; returns the loss tensor [1] (caller reads and
 * releases it). With `passSize` (sequences per encoder pass) smaller than the batch, the step is
 * gradient-cached: the same loss and gradients in memory bounded by one pass's activations.
 */
export function recordMicroBatch(
  encoder: SentenceEncoder,
  objective: Objective,
  batch: EncodedBatch,
  mode: ForwardMode,
  lossScale: number,
  passSize: number | null = null,
): Tensor {
  checkLabels(objective, batch);
  if (passSize !== null && (!Number.isInteger(passSize) || passSize < 1)) throw new Error(`sequences per pass must be a positive integer, got ${passSize}`);
  if (passSize === null || passSize >= batch.tokens.batch) return recordOneShot(encoder, objective, batch, mode, lossScale);
  return recordCached(encoder, objective, batch, mode, lossScale, passSize);
}

function checkLabels(objective: Objective, batch: EncodedBatch): void {
  if (objective.kind === 'cosine-pairs' && (!batch.labels || batch.tokens.batch !== 2 * batch.anchors)) {
    throw new Error('labelled pairs need one text_b and one label per text_a');
  }
}

function recordOneShot(encoder: SentenceEncoder, objective: Objective, batch: EncodedBatch, mode: ForwardMode, lossScale: number): Tensor {
  // The losses compare cosines, as sentence-transformers' do, whether or not the model's output is normalised.
  const state = encoder.forward(batch.tokens, mode, true);
  const { loss, dEmbeddings } = recordLoss(encoder, objective, batch, state.embeddings, lossScale);
  encoder.backward(state, dEmbeddings);
  encoder.bert.engine.release(dEmbeddings);
  encoder.release(state);
  return loss;
}

/**
 * Gradient caching (Gao et al., 2021): pass 1 embeds the batch `passSize` sequences at a time without
 * keeping activations; the loss and d(loss)/d(embedding) are taken on the whole batch (every in-batch
 * and hard negative); pass 2 runs each slice again with activations and back-propagates its rows of
 * that gradient. Each slice keeps its place in the batch (ForwardMode.firstSequence), so both passes
 * draw the one-shot step's dropout masks. Pass 1 embeds the first slice last and keeps its
 * activations, and pass 2 starts with it: with a frozen base the backward costs about one forward,
 * so the forward saved is a noticeable share of the step; the memory is pass 2's, held while the
 * loss runs. A short remainder slice (the batch's last) runs after a full one in both passes, so it
 * reuses the full slices' pooled buffers.
 */
function recordCached(encoder: SentenceEncoder, objective: Objective, batch: EncodedBatch, mode: ForwardMode, lossScale: number, passSize: number): Tensor {
  const { engine } = encoder.bert;
  const h = encoder.bert.config.hiddenSize;
  const n = batch.tokens.batch;
  const slices: { first: number; tokens: SentenceBatch }[] = [];
  for (let first = 0; first < n; first += passSize) slices.push({ first, tokens: sliceSequences(batch.tokens, first, Math.min(n, first + passSize)) });
  const embeddings = engine.alloc([n, h]);
  const embed = ({ first, tokens }: (typeof slices)[number], noGrad: boolean) => {
    const state = encoder.forward(tokens, { ...mode, noGrad, firstSequence: first }, true);
    engine.copy(state.embeddings, embeddings, { dstOffset: first * h, count: tokens.batch * h });
    return state;
  };
  for (const slice of slices.slice(1)) encoder.release(embed(slice, true));
  const kept = embed(slices[0], false);
  const { loss, dEmbeddings } = recordLoss(encoder, objective, batch, embeddings, lossScale);
  engine.release(embeddings);
  slices.forEach(({ first, tokens }, i) => {
    const state = i === 0 ? kept : encoder.forward(tokens, { ...mode, firstSequence: first }, true);
    const dSlice = engine.alloc([tokens.batch, h]);
    engine.copy(dEmbeddings, dSlice, { srcOffset: first * h, count: tokens.batch * h });
    encoder.backward(state, dSlice);
    engine.release(dSlice);
    encoder.release(state);
  });
  engine.release(dEmbeddings);
  return loss;
}

/** The loss [1] of the whole batch's embeddings [N, H] and its gradient with respect to them (×lossScale). */
function recordLoss(encoder: SentenceEncoder, objective: Objective, batch: EncodedBatch, embeddings: Tensor, lossScale: number): { loss: Tensor; dEmbeddings: Tensor } {
  const { engine } = encoder.bert;
  const h = encoder.bert.config.hiddenSize;
  const b = batch.anchors;
  const c = batch.tokens.batch - b;
  const anchors = engine.alloc([b, h]);
  const others = engine.alloc([c, h]);
  engine.copy(embeddings, anchors, { count: b * h });
  engine.copy(embeddings, others, { srcOffset: b * h, count: c * h });
  const loss = engine.alloc([1]);
  const dAnchors = engine.alloc([b, h]);
  const dOthers = engine.alloc([c, h]);
  const scratch: Tensor[] = [];
  if (objective.kind === 'infonce') {
    const probs = engine.alloc([b, c]);
    const probsT = objective.symmetric ? engine.alloc([b, b]) : null;
    const options = { scale: objective.scale, symmetric: objective.symmetric };
    infoNceForward(engine, anchors, others, loss, probs, probsT, options);
    infoNceBackward(engine, anchors, others, probs, probsT, dAnchors, dOthers, options, lossScale);
    scratch.push(probs);
    if (probsT) scratch.push(probsT);
  } else {
    const labels = engine.upload(batch.labels!, [b]);
    cosinePairLossForward(engine, anchors, others, labels, loss);
    cosinePairLossBackward(engine, anchors, others, labels, dAnchors, dOthers, lossScale);
    scratch.push(labels);
  }
  const dEmbeddings = engine.alloc([b + c, h]);
  engine.copy(dAnchors, dEmbeddings);
  engine.copy(dOthers, dEmbeddings, { dstOffset: b * h });
  engine.release(anchors, others, dAnchors, dOthers, ...scratch);
  return { loss, dEmbeddings };
}
