/** The torch fixture of the decoder kernels (tests/fixtures/decoder_ops, see its generator script). */
import { readFileSync } from 'node:fs';
import type { TorchAttentionCase } from './layer-ops-fixture.ts';

export interface TorchRmsNormCase {
  rows: number;
  width: number;
  eps: number;
  x: number[];
  weight: number[];
  dy: number[];
  y: number[];
  dx: number[];
  dweight: number[];
}

export interface TorchRopeCase {
  tokens: number;
  heads: number;
  headDim: number;
  theta: number;
  positions: number[];
  scaling: { factor: number; low_freq_factor: number; high_freq_factor: number; original_max_position_embeddings: number } | null;
  invFreq: number[];
  x: number[];
  dy: number[];
  y: number[];
  dx: number[];
}

export interface TorchSwigluCase {
  rows: number;
  inter: number;
  gate: number[];
  up: number[];
  dOut: number[];
  out: number[];
  dGate: number[];
  dUp: number[];
  dGateUp: number[];
}

/** BERT's attention case plus the K/V head count (k, v are [B, T, kvHeads·D]; probs [B, heads, T, T]). */
export interface TorchCausalAttentionCase extends TorchAttentionCase {
  kvHeads: number;
}

export interface TorchLmHeadLossCase {
  rows: number;
  hidden: number;
  vocab: number;
  targets: number[];
  hiddenStates: number[];
  weight: number[];
  loss: number;
  dHidden: number[];
}

export const decoderOpsFixture = JSON.parse(readFileSync(new URL('../fixtures/decoder_ops/decoder_ops.json', import.meta.url), 'utf8')) as {
  rmsnorm: TorchRmsNormCase[];
  rope: TorchRopeCase[];
  swiglu: TorchSwigluCase[];
  attention: TorchCausalAttentionCase[];
  lmHeadLoss: TorchLmHeadLossCase[];
};
