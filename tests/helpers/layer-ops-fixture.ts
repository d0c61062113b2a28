/** The torch fixture of the transformer layer kernels (tests/fixtures/layer_ops, see its generator script). */
import { readFileSync } from 'node:fs';
import { expectClose } from './numeric.ts';

export interface TorchAttentionCase {
  batch: number;
  seq: number;
  heads: number;
  headDim: number;
  lengths: number[];
  q: number[];
  k: number[];
  v: number[];
  dContext: number[];
  mask: number[];
  probs: number[];
  context: number[];
  dq: number[];
  dk: number[];
  dv: number[];
}

export interface TorchLayerNormCase {
  rows: number;
  width: number;
  eps: number;
  x: number[];
  gamma: number[];
  beta: number[];
  dy: number[];
  y: number[];
  dx: number[];
  dgamma: number[];
  dbeta: number[];
}

export interface TorchL2NormCase {
  rows: number;
  width: number;
  x: number[];
  dy: number[];
  y: number[];
  dx: number[];
}

export interface TorchMeanPoolCase {
  batch: number;
  seq: number;
  width: number;
  lengths: number[];
  hidden: number[];
  mask: number[];
  dOut: number[];
  out: number[];
  dHidden: number[];
}

export interface TorchEmbeddingCase {
  batch: number;
  seq: number;
  hidden: number;
  vocab: number;
  positions: number;
  typeVocab: number;
  inputIds: number[];
  tokenTypeIds: number[];
  word: number[];
  position: number[];
  tokenType: number[];
  out: number[];
}

export const layerOpsFixture = JSON.parse(readFileSync(new URL('../fixtures/layer_ops/layer_ops.json', import.meta.url), 'utf8')) as {
  attention: TorchAttentionCase[];
  layernorm: TorchLayerNormCase[];
  l2norm: TorchL2NormCase[];
  meanPool: TorchMeanPoolCase[];
  embedding: TorchEmbeddingCase[];
};

/** Assert a float64 attention reference (forward and backward) equals a torch case to 1e-12. */
export function expectAttentionMatchesTorch(
  forward: { probs: ArrayLike<number>; context: ArrayLike<number> },
  backward: { dq: ArrayLike<number>; dk: ArrayLike<number>; dv: ArrayLike<number> },
  c: TorchAttentionCase,
): void {
  const tol = { atol: 1e-12, rtol: 1e-12 };
  expectClose(forward.probs, c.probs, tol, 'probs');
  expectClose(forward.context, c.context, tol, 'context');
  expectClose(backward.dq, c.dq, tol, 'dq');
  expectClose(backward.dk, c.dk, tol, 'dk');
  expectClose(backward.dv, c.dv, tol, 'dv');
}
