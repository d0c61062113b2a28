/** The torch fixture of the transformer layer kernels (tests/fixtures/layer_ops, see its generator script). */
import { readFileSync } from 'node:fs';

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
