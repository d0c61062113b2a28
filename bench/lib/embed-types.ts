/** What the embedding benchmark hands its browser pages and what they report back. */
import type { AdapterDescription } from '../../src/engine/engine.ts';
import type { EngineEmbedResult } from './embed-workload.ts';

/** One batch of token ids, as plain arrays (they cross into the page as JSON). */
export interface PageTokenBatch {
  seq: number;
  batch: number;
  inputIds: number[];
  attentionMask: number[];
  tokenTypeIds: number[];
}

export interface PeerEmbedParams {
  /** URL of the folder holding model folders (transformers.js env.localModelPath), ending in '/'. */
  modelsUrl: string;
  /** URL of onnxruntime-web's dist folder, ending in '/'. */
  ortUrl: string;
  /** Model folder name under modelsUrl. */
  model: string;
  device: 'webgpu' | 'wasm';
  shapes: PageTokenBatch[];
  reps: number;
  budgetMs: number;
}

export interface TimedShape {
  seq: number;
  batch: number;
  warmupMs: number;
  timesMs: number[];
  /** Embeddings of the last timed run, [batch, hidden] row-major (for the cross-check). */
  embeddings: number[];
}

export interface PeerEmbedResult {
  device: 'webgpu' | 'wasm';
  loadMs: number;
  ortVersions: Record<string, string>;
  wasmThreads: number | null;
  crossOriginIsolated: boolean;
  shapes: TimedShape[];
}

export interface EngineEmbedParams {
  /** URL of the model folder (config.json, model.safetensors, vocab.txt). */
  modelUrl: string;
  bases: ('nf4' | 'f32')[];
  shapes: PageTokenBatch[];
  reps: number;
  budgetMs: number;
}

export interface EngineEmbedPageResult {
  adapter: AdapterDescription;
  loadMs: number;
  results: EngineEmbedResult[];
}
