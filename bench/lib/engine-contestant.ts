/**
 * Our embedding workload as a contestant, the same code in Node (Dawn) and in the browser
 * (navigator.gpu): forward + mean pooling + reading the embeddings back. Give each contestant its
 * own engine, so that engine.peakBytes (reset per shape) is its own footprint.
 */
import type { Engine } from '../../src/engine/engine.ts';
import { type BaseQuantization, BertEncoder } from '../../src/model/bert.ts';
import type { ModelFiles } from '../../src/model/checkpoint.ts';
import { SentenceEncoder } from '../../src/model/sentence.ts';
import type { Contestant } from './contest.ts';
import { profileDispatches } from './profile.ts';

export interface EngineContestant extends Contestant {
  /** Upload (and NF4 quantisation) of the weights, until the GPU finished. */
  readonly createMs: number;
  /** GPU bytes the resident model holds. */
  readonly weightBytes: number;
}

const INFERENCE = { train: false, hiddenDropout: 0, seed: 0 } as const;

export async function engineContestant(engine: Engine, files: Pick<ModelFiles, 'config' | 'weights' | 'tokenizer'>, base: BaseQuantization): Promise<EngineContestant> {
  const start = performance.now();
  const bert = await BertEncoder.create(engine, files.config, files.weights, { quantization: base });
  await engine.sync();
  const createMs = performance.now() - start;
  engine.trimPool();
  const encoder = new SentenceEncoder(bert, files.tokenizer, { pooling: 'mean', normalize: false, maxLength: files.config.maxSequenceLength });
  const run: Contestant['run'] = async (batch) => {
    const state = encoder.forward(batch, INFERENCE);
    const embeddings = await engine.readF32(state.embeddings);
    encoder.release(state);
    return embeddings;
  };
  return {
    name: `ours ${base}`,
    createMs,
    weightBytes: engine.liveBytes,
    run,
    beginShape() {
      engine.trimPool();
      engine.peakBytes = engine.liveBytes;
    },
    peakBytes: () => engine.peakBytes,
    profile: (batch) =>
      profileDispatches(engine, async () => {
        await run(batch);
      }),
    dispose() {
      bert.destroy();
      engine.trimPool();
    },
  };
}
