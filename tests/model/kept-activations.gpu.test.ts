/**
 * What a training forward keeps for backward: a frozen linear's backward needs its weight, not its
 * input (dX = dY·W), so LoRA on query and value alone keeps neither the attention output's input
 * (the context) nor the feed-forward's (the first LayerNorm's output, GELU's output), which LoRA on
 * those linears keeps (for its dA). Counted in the engine's live bytes across one training forward.
 */
import { describe, expect, it } from 'vitest';
import { sizeClass } from '../../src/engine/engine.ts';
import { BertEncoder } from '../../src/model/bert.ts';
import { GpuAdapter, initLoraTensors } from '../../src/model/lora.ts';
import { fixtureBatch, loadFixtureModel } from '../helpers/fixtures.ts';
import { testEngine } from '../helpers/gpu.ts';

const FEED_FORWARD_AND_OUTPUT = ['attention.output.dense', 'intermediate.dense', 'output.dense'];

describe('activations a training forward keeps', () => {
  it("keeps a linear's input only when the trainable adapter adapts that linear", async () => {
    const files = await loadFixtureModel('odd');
    const { tokens } = fixtureBatch('odd');
    const keptBytes = async (targetModules: string[]) => {
      const engine = await testEngine();
      const bert = await BertEncoder.create(engine, files.config, files.weights, { quantization: 'nf4' });
      const lora = { r: 2, alpha: 4, dropout: 0, rslora: false, targetModules };
      bert.adapters = [new GpuAdapter(engine, files.config, lora, initLoraTensors(files.config, lora, 1, { pooler: false }), true)];
      engine.trimPool();
      const before = engine.liveBytes;
      const result = bert.forward(tokens, { train: true, hiddenDropout: 0, seed: 0 });
      const kept = engine.liveBytes - before;
      bert.releaseForward(result);
      bert.destroy();
      engine.destroy();
      return kept;
    };
    const { hiddenSize: h, intermediateSize: inter, numHiddenLayers: layers } = files.config;
    const m = tokens.batch * tokens.seq;
    const frozen = await keptBytes(['query', 'value']);
    const adapted = await keptBytes(['query', 'value', ...FEED_FORWARD_AND_OUTPUT]);
    // Each layer's three inputs in f32 ([M, H], [M, H], [M, I]) and the three X·Aᵀ [M, 2], in the pool's size classes.
    const inputs = layers * (2 * sizeClass(m * h * 4) + sizeClass(m * inter * 4));
    const xa = layers * 3 * sizeClass(m * 2 * 4);
    expect(adapted - frozen).toBe(inputs + xa);
  });
});
