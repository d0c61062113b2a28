/**
 * Training objectives on one micro-batch: record forward, loss and backward (no readback).
 * - contrastive: InfoNCE / MultipleNegativesRanking over (anchor, positive[, negatives]) with in-batch negatives;
 * - labelled pairs: CosineSimilarityLoss, mean (cos(a, b) − label)².
 */
import type { Tensor } from '../engine/tensor.ts';
import { cosinePairLossBackward, cosinePairLossForward, infoNceBackward, infoNceForward } from '../engine/ops/losses.ts';
import type { ForwardMode } from '../model/bert.ts';
import type { SentenceEncoder } from '../model/sentence.ts';

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

/** Record one micro-batch; returns the loss tensor [1] (caller reads and releases it). */
export function recordMicroBatch(encoder: SentenceEncoder, objective: Objective, examples: Example[], mode: ForwardMode, lossScale: number): Tensor {
  if (examples.length === 0) throw new Error('a training batch needs at least one example');
  return objective.kind === 'infonce'
    ? contrastive(encoder, objective, examples as ContrastiveExample[], mode, lossScale)
    : labelledPairs(encoder, examples as LabelledPair[], mode, lossScale);
}

function contrastive(encoder: SentenceEncoder, objective: { scale: number; symmetric: boolean }, examples: ContrastiveExample[], mode: ForwardMode, lossScale: number): Tensor {
  const { engine } = encoder.bert;
  const h = encoder.bert.config.hiddenSize;
  const b = examples.length;
  const negatives = examples.flatMap((e) => e.negatives ?? []);
  const texts = [...examples.map((e) => e.anchor), ...examples.map((e) => e.positive), ...negatives];
  const c = texts.length - b;
  const state = encoder.forward(encoder.tokenize(texts), mode);
  const anchors = engine.alloc([b, h]);
  const candidates = engine.alloc([c, h]);
  engine.copy(state.embeddings, anchors, { count: b * h });
  engine.copy(state.embeddings, candidates, { srcOffset: b * h, count: c * h });
  const loss = engine.alloc([1]);
  const probs = engine.alloc([b, c]);
  const probsT = objective.symmetric ? engine.alloc([b, b]) : null;
  const options = { scale: objective.scale, symmetric: objective.symmetric };
  infoNceForward(engine, anchors, candidates, loss, probs, probsT, options);
  const dAnchors = engine.alloc([b, h]);
  const dCandidates = engine.alloc([c, h]);
  infoNceBackward(engine, anchors, candidates, probs, probsT, dAnchors, dCandidates, options, lossScale);
  const dEmbeddings = engine.alloc([b + c, h]);
  engine.copy(dAnchors, dEmbeddings);
  engine.copy(dCandidates, dEmbeddings, { dstOffset: b * h });
  encoder.backward(state, dEmbeddings);
  engine.release(anchors, candidates, probs, probsT, dAnchors, dCandidates, dEmbeddings);
  encoder.release(state);
  return loss;
}

function labelledPairs(encoder: SentenceEncoder, pairs: LabelledPair[], mode: ForwardMode, lossScale: number): Tensor {
  const { engine } = encoder.bert;
  const h = encoder.bert.config.hiddenSize;
  const b = pairs.length;
  const state = encoder.forward(encoder.tokenize([...pairs.map((p) => p.textA), ...pairs.map((p) => p.textB)]), mode);
  const a = engine.alloc([b, h]);
  const bb = engine.alloc([b, h]);
  engine.copy(state.embeddings, a, { count: b * h });
  engine.copy(state.embeddings, bb, { srcOffset: b * h, count: b * h });
  const labels = engine.upload(Float32Array.from(pairs, (p) => p.label), [b]);
  const loss = engine.alloc([1]);
  cosinePairLossForward(engine, a, bb, labels, loss);
  const da = engine.alloc([b, h]);
  const db = engine.alloc([b, h]);
  cosinePairLossBackward(engine, a, bb, labels, da, db, lossScale);
  const dEmbeddings = engine.alloc([2 * b, h]);
  engine.copy(da, dEmbeddings);
  engine.copy(db, dEmbeddings, { dstOffset: b * h });
  encoder.backward(state, dEmbeddings);
  engine.release(a, bb, labels, da, db, dEmbeddings);
  encoder.release(state);
  return loss;
}
