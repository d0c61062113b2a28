/**
 * Training losses on L2-normalised sentence embeddings (shaders/losses.wgsl):
 * InfoNCE with in-batch and shared hard negatives (sentence-transformers' MultipleNegativesRankingLoss,
 * and its symmetric variant), and the cosine pair loss (CosineSimilarityLoss) for labelled pairs.
 */
import lossesSource from '../../../shaders/losses.wgsl?raw';
import { type Engine, Params, ceilDiv } from '../engine.ts';
import { ShapeError } from '../errors.ts';
import type { Tensor } from '../tensor.ts';
import { expectMatrix, expectShape } from './check.ts';
import { dispatchFolded, dispatchPerElement, expectDistinct } from './launch.ts';
import { workgroupKernelFamily } from './reductions.ts';

const kernel = workgroupKernelFamily('losses', lossesSource);

export interface InfoNceOptions {
  /** Multiplies the cosine similarities (sentence-transformers' default is 20). */
  scale: number;
  /** Average with the CE over the anchor/positive block's columns (MultipleNegativesSymmetricRankingLoss). */
  symmetric: boolean;
}

const GEMM = kernel('small_gemm', ['read', 'read', 'read_write']);
const SOFTMAX = kernel('softmax_lines', ['read', 'read_write', 'read_write']);
const SUM = kernel('sum_terms', ['read', 'read_write']);
const GRAD_LOGITS = kernel('infonce_grad_logits', ['read', 'read', 'read_write']);
const PAIR_TERMS = kernel('cosine_pair_terms', ['read', 'read', 'read', 'read_write']);
const PAIR_BACKWARD = kernel('cosine_pair_backward', ['read', 'read', 'read', 'read_write', 'read_write']);
const GEMM_TILE = 16;

/** out(p, q) = scale·Σ_k lhs(p, k)·rhs(k, q); lhs stored [k, p] if lhsKMajor, rhs stored [q, k] if rhsQMajor. */
function smallGemm(
  engine: Engine,
  lhs: Tensor,
  rhs: Tensor,
  out: Tensor,
  dims: { p: number; q: number; k: number },
  lhsKMajor: boolean,
  rhsQMajor: boolean,
  scale: number,
): void {
  const params = new Params().u32(dims.p, dims.q, dims.k, Number(lhsKMajor), Number(rhsQMajor)).f32(scale).build();
  engine.dispatch(GEMM(engine), params, [lhs.buffer, rhs.buffer, out.buffer], [ceilDiv(dims.q, GEMM_TILE), ceilDiv(dims.p, GEMM_TILE)]);
}

/** Softmax of `lines` strided lines of `logits` into `out`; terms[termsOffset + l] = CE of line l with target l. */
function softmaxLines(
  engine: Engine,
  logits: Tensor,
  out: Tensor,
  terms: Tensor,
  layout: { lines: number; length: number; inElem: number; inLine: number; outElem: number; outLine: number; termsOffset: number },
): void {
  const { lines, length, inElem, inLine, outElem, outLine, termsOffset } = layout;
  const params = new Params().u32(lines, length, inElem, inLine, outElem, outLine, termsOffset).build();
  dispatchFolded(engine, SOFTMAX(engine), params, [logits.buffer, out.buffer, terms.buffer], lines);
}

/** loss[0] = weight·Σ terms, in a fixed order. */
function sumTerms(engine: Engine, terms: Tensor, loss: Tensor, count: number, weight: number): void {
  engine.dispatch(SUM(engine), new Params().u32(count).f32(weight).build(), [terms.buffer, loss.buffer], [1]);
}

function expectFinite(op: string, name: string, value: number): void {
  if (!Number.isFinite(value)) throw new ShapeError(`${op}: ${name} must be a finite number, got ${value}`);
}

/** Validate anchors [B, H], candidates [C, H] (C ≥ B), probs [B, C] and probsT; returns B, C, H. */
function infoNceDims(
  op: string,
  anchors: Tensor,
  candidates: Tensor,
  probs: Tensor,
  probsT: Tensor | null,
  options: InfoNceOptions,
): { b: number; c: number; h: number } {
  const [b, h] = expectMatrix(op, 'anchors', anchors);
  const [c] = expectMatrix(op, 'candidates', candidates);
  expectShape(op, 'candidates', candidates, [c, h]);
  if (c < b) throw new ShapeError(`${op}: candidates has ${c} rows, fewer than the ${b} anchors (rows 0..B-1 must be the positives)`);
  expectShape(op, 'probs', probs, [b, c]);
  if (options.symmetric) {
    if (!probsT) throw new ShapeError(`${op}: probsT [${b}, ${b}] is required when options.symmetric is true`);
    expectShape(op, 'probsT', probsT, [b, b]);
  } else if (probsT) {
    throw new ShapeError(`${op}: probsT must be null when options.symmetric is false`);
  }
  expectFinite(op, 'options.scale', options.scale);
  return { b, c, h };
}

/**
 * S = scale·anchors·candidatesᵀ; loss[0] = mean_i CE(S[i, :], i) (averaged with mean_j CE(S[:B, j], j)
 * when symmetric). Saves probs [B, C] = row softmax of S and, when symmetric, probsT [B, B] with
 * probsT[j, i] = softmax over i of S[i, j] (column j's softmax, stored as row j).
 */
export function infoNceForward(
  engine: Engine,
  anchors: Tensor,
  candidates: Tensor,
  loss: Tensor,
  probs: Tensor,
  probsT: Tensor | null,
  options: InfoNceOptions,
): void {
  const op = 'infoNceForward';
  const { b, c, h } = infoNceDims(op, anchors, candidates, probs, probsT, options);
  expectShape(op, 'loss', loss, [1]);
  expectDistinct(op, probsT ? { loss, probs, probsT } : { loss, probs }, { anchors, candidates });
  const logits = engine.alloc([b, c]);
  const terms = engine.alloc([options.symmetric ? 2 * b : b]);
  smallGemm(engine, anchors, candidates, logits, { p: b, q: c, k: h }, false, true, options.scale);
  softmaxLines(engine, logits, probs, terms, { lines: b, length: c, inElem: 1, inLine: c, outElem: 1, outLine: c, termsOffset: 0 });
  if (probsT) {
    softmaxLines(engine, logits, probsT, terms, { lines: b, length: b, inElem: c, inLine: 1, outElem: 1, outLine: b, termsOffset: b });
  }
  sumTerms(engine, terms, loss, options.symmetric ? 2 * b : b, options.symmetric ? 1 / (2 * b) : 1 / b);
  engine.release(logits, terms);
}

/**
 * Gradients of lossScale·loss from the forward's probs (and probsT): dAnchors [B, H] and
 * dCandidates [C, H] are overwritten.
 */
export function infoNceBackward(
  engine: Engine,
  anchors: Tensor,
  candidates: Tensor,
  probs: Tensor,
  probsT: Tensor | null,
  dAnchors: Tensor,
  dCandidates: Tensor,
  options: InfoNceOptions,
  lossScale: number,
): void {
  const op = 'infoNceBackward';
  const { b, c, h } = infoNceDims(op, anchors, candidates, probs, probsT, options);
  expectShape(op, 'dAnchors', dAnchors, [b, h]);
  expectShape(op, 'dCandidates', dCandidates, [c, h]);
  expectDistinct(op, { dAnchors, dCandidates }, probsT ? { anchors, candidates, probs, probsT } : { anchors, candidates, probs });
  expectFinite(op, 'lossScale', lossScale);
  const rowCoef = (lossScale * (options.symmetric ? 0.5 : 1)) / b;
  const colCoef = options.symmetric ? (lossScale * 0.5) / b : 0;
  const dLogits = engine.alloc([b, c]);
  const params = new Params().u32(b, c).f32(rowCoef, colCoef).build();
  // Without probsT the kernel never reads its binding; probs stands in (two read-only bindings may alias).
  dispatchPerElement(engine, GRAD_LOGITS(engine), params, [probs.buffer, (probsT ?? probs).buffer, dLogits.buffer], b * c);
  smallGemm(engine, dLogits, candidates, dAnchors, { p: b, q: h, k: c }, false, false, options.scale);
  smallGemm(engine, dLogits, anchors, dCandidates, { p: c, q: h, k: b }, true, false, options.scale);
  engine.release(dLogits);
}

/** Validate a, b [B, H] and labels [B]; returns B, H. */
function pairDims(op: string, a: Tensor, b: Tensor, labels: Tensor): { rows: number; h: number } {
  const [rows, h] = expectMatrix(op, 'a', a);
  expectShape(op, 'b', b, [rows, h]);
  expectShape(op, 'labels', labels, [rows]);
  return { rows, h };
}

/** loss[0] = mean_i (a_i·b_i − label_i)² (CosineSimilarityLoss on normalised embeddings). */
export function cosinePairLossForward(engine: Engine, a: Tensor, b: Tensor, labels: Tensor, loss: Tensor): void {
  const op = 'cosinePairLossForward';
  const { rows, h } = pairDims(op, a, b, labels);
  expectShape(op, 'loss', loss, [1]);
  expectDistinct(op, { loss }, { a, b, labels });
  const terms = engine.alloc([rows]);
  dispatchFolded(engine, PAIR_TERMS(engine), new Params().u32(rows, h).build(), [a.buffer, b.buffer, labels.buffer, terms.buffer], rows);
  sumTerms(engine, terms, loss, rows, 1 / rows);
  engine.release(terms);
}

/** da, db [B, H] are overwritten with the gradients of lossScale·loss. */
export function cosinePairLossBackward(engine: Engine, a: Tensor, b: Tensor, labels: Tensor, da: Tensor, db: Tensor, lossScale: number): void {
  const op = 'cosinePairLossBackward';
  const { rows, h } = pairDims(op, a, b, labels);
  expectShape(op, 'da', da, [rows, h]);
  expectShape(op, 'db', db, [rows, h]);
  expectDistinct(op, { da, db }, { a, b, labels });
  expectFinite(op, 'lossScale', lossScale);
  const params = new Params().u32(rows, h).f32((2 * lossScale) / rows).build();
  dispatchFolded(engine, PAIR_BACKWARD(engine), params, [a.buffer, b.buffer, labels.buffer, da.buffer, db.buffer], rows);
}
