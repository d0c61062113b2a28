/**
 * Training objectives on one micro-batch: record forward, loss and backward (no readback).
 * - contrastive: InfoNCE / MultipleNegativesRanking over (anchor, positive[, negatives]) with in-batch negatives;
 * - labelled pairs: CosineSimilarityLoss, mean (cos(a, b) − label)².
 */
import type { Tensor } from '../engine/tensor.ts';
import { cosinePairLossBackward, cosinePairLossForward, infoNceBackward, infoNceForward } from '../engine/ops/losses.ts';
import type { ForwardMode } from '../model/bert.ts';
import type { SentenceBatch, SentenceEncoder } from '../model/sentence.ts';

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

/** Record forward, loss and backward of one micro-batch; returns the loss tensor [1] (caller reads and releases it). */
export function recordMicroBatch(encoder: SentenceEncoder, objective: Objective, batch: EncodedBatch, mode: ForwardMode, lossScale: number): Tensor {
  const { engine } = encoder.bert;
  const h = encoder.bert.config.hiddenSize;
  const b = batch.anchors;
  const c = batch.tokens.batch - b;
  // The losses compare cosines, as sentence-transformers' do, whether or not the model's output is normalised.
  const state = encoder.forward(batch.tokens, mode, true);
  const anchors = engine.alloc([b, h]);
  const others = engine.alloc([c, h]);
  engine.copy(state.embeddings, anchors, { count: b * h });
  engine.copy(state.embeddings, others, { srcOffset: b * h, count: c * h });
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
    if (!batch.labels || c !== b) throw new Error('labelled pairs need one text_b and one label per text_a');
    const labels = engine.upload(batch.labels, [b]);
    cosinePairLossForward(engine, anchors, others, labels, loss);
    cosinePairLossBackward(engine, anchors, others, labels, dAnchors, dOthers, lossScale);
    scratch.push(labels);
  }
  const dEmbeddings = engine.alloc([b + c, h]);
  engine.copy(dAnchors, dEmbeddings);
  engine.copy(dOthers, dEmbeddings, { dstOffset: b * h });
  encoder.backward(state, dEmbeddings);
  engine.release(anchors, others, dAnchors, dOthers, dEmbeddings, ...scratch);
  encoder.release(state);
  return loss;
}
