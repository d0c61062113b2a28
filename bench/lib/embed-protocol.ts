/** What the embedding benchmark hands its browser page and what the page reports back. */
import type { AdapterDescription } from '../../src/engine/engine.ts';
import type { BaseQuantization, TokenBatch } from '../../src/model/bert.ts';
import type { ContestOptions, ContestShape } from './contest.ts';
import type { PeerDevice, PeerSetup } from './transformers-contestant.ts';

/** One batch of token ids as plain arrays (it crosses into the page as JSON). */
export interface PageTokenBatch {
  seq: number;
  batch: number;
  inputIds: number[];
  attentionMask: number[];
  tokenTypeIds: number[];
}

export interface EmbedPageParams {
  /** URL of the model folder our loader reads (config.json, model.safetensors, vocab.txt). */
  modelUrl: string;
  peer: PeerSetup;
  bases: BaseQuantization[];
  peers: PeerDevice[];
  shapes: PageTokenBatch[];
  contest: ContestOptions;
}

export interface EmbedPageResult {
  adapter: AdapterDescription;
  /** Our loader: fetch + parse of the model folder. */
  loadMs: number;
  ours: Record<string, { createMs: number; weightBytes: number }>;
  peers: Record<string, { loadMs: number; runtime: Record<string, unknown> }>;
  shapes: ContestShape[];
}

export function toPageTokenBatch(b: TokenBatch): PageTokenBatch {
  return { seq: b.seq, batch: b.batch, inputIds: Array.from(b.inputIds), attentionMask: Array.from(b.attentionMask), tokenTypeIds: Array.from(b.tokenTypeIds) };
}

export function fromPageTokenBatch(b: PageTokenBatch): TokenBatch {
  return {
    inputIds: Uint32Array.from(b.inputIds),
    tokenTypeIds: Uint32Array.from(b.tokenTypeIds),
    attentionMask: Float32Array.from(b.attentionMask),
    batch: b.batch,
    seq: b.seq,
  };
}
