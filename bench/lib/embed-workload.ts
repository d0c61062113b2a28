/**
 * Our side of the embedding benchmark, shared by Node (Dawn) and the browser page (navigator.gpu):
 * the same engine code times forward + mean pooling + reading the embeddings back, after one
 * untimed warm-up at the same shape, and records the engine's peak GPU memory per shape.
 */
import type { Engine } from '../../src/engine/engine.ts';
import { type BaseQuantization, BertEncoder, type TokenBatch } from '../../src/model/bert.ts';
import type { ModelFiles } from '../../src/model/checkpoint.ts';
import { SentenceEncoder } from '../../src/model/sentence.ts';
import type { PageTokenBatch, TimedShape } from './embed-types.ts';
import { type DispatchProfile, profileDispatches } from './profile.ts';
import { median, timeRuns } from './stats.ts';

export interface EngineTimedShape extends TimedShape {
  /** engine.peakBytes over this shape's runs: resident weights + activations + pooled buffers. */
  peakBytes: number;
  /** Per-kernel replay of one more run, when asked for. */
  profile: DispatchProfile | null;
}

export interface EngineEmbedResult {
  base: BaseQuantization;
  /** Upload (and NF4 quantisation) of the weights, until the GPU finished. */
  createMs: number;
  /** GPU bytes the resident model holds. */
  weightBytes: number;
  shapes: EngineTimedShape[];
}

const INFERENCE = { train: false, hiddenDropout: 0, seed: 0 } as const;

export function toTokenBatch(b: PageTokenBatch): TokenBatch {
  return {
    inputIds: Uint32Array.from(b.inputIds),
    tokenTypeIds: Uint32Array.from(b.tokenTypeIds),
    attentionMask: Float32Array.from(b.attentionMask),
    batch: b.batch,
    seq: b.seq,
  };
}

export function toPageTokenBatch(b: TokenBatch): PageTokenBatch {
  return { seq: b.seq, batch: b.batch, inputIds: Array.from(b.inputIds), attentionMask: Array.from(b.attentionMask), tokenTypeIds: Array.from(b.tokenTypeIds) };
}

export async function timeEngineEmbedding(
  engine: Engine,
  files: Pick<ModelFiles, 'config' | 'weights' | 'tokenizer'>,
  base: BaseQuantization,
  batches: readonly TokenBatch[],
  timing: { reps: number; budgetMs: number; profile?: boolean },
  log: (line: string) => void,
): Promise<EngineEmbedResult> {
  let start = performance.now();
  const bert = await BertEncoder.create(engine, files.config, files.weights, { quantization: base });
  await engine.sync();
  const createMs = performance.now() - start;
  engine.trimPool();
  const weightBytes = engine.liveBytes;
  const encoder = new SentenceEncoder(bert, files.tokenizer, { pooling: 'mean', normalize: false, maxLength: files.config.maxPositionEmbeddings });
  const shapes: EngineTimedShape[] = [];
  try {
    for (const batch of batches) {
      engine.trimPool();
      engine.peakBytes = engine.liveBytes;
      let embeddings: Float32Array | null = null;
      const forward = async () => {
        const state = encoder.forward(batch, INFERENCE);
        embeddings = await engine.readF32(state.embeddings);
        encoder.release(state);
      };
      start = performance.now();
      await forward();
      const warmupMs = performance.now() - start;
      const timesMs = await timeRuns(forward, timing.reps, timing.budgetMs);
      log(`ours ${base} seq ${batch.seq}: warm-up ${(warmupMs / 1000).toFixed(1)} s, median ${(median(timesMs) / 1000).toFixed(2)} s over ${timesMs.length}`);
      const peakBytes = engine.peakBytes;
      const profile = timing.profile ? await profileDispatches(engine, forward) : null;
      shapes.push({ seq: batch.seq, batch: batch.batch, warmupMs, timesMs, embeddings: Array.from(embeddings!), peakBytes, profile });
    }
  } finally {
    bert.destroy();
    engine.trimPool();
  }
  return { base, createMs, weightBytes, shapes };
}
