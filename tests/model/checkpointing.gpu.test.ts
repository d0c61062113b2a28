/**
 * Activation checkpointing: layers that keep only their input and recompute their forward inside
 * backward give the gradients of the step that keeps every activation (1e-6 relative), for every
 * layer (n = 1) and every other layer (n = 2, an odd layer count), with dropout on, alone and under
 * gradient caching; and the checkpointed step holds less memory.
 */
import { describe, expect, it } from 'vitest';
import type { Engine } from '../../src/engine/engine.ts';
import { BertEncoder, type ForwardMode } from '../../src/model/bert.ts';
import { GpuAdapter } from '../../src/model/lora.ts';
import { SentenceEncoder } from '../../src/model/sentence.ts';
import type { EncodedBatch, Objective } from '../../src/train/objective.ts';
import { fixtureBatch, loadFixtureModel, readFixtureAdapter } from '../helpers/fixtures.ts';
import { gpuEngine } from '../helpers/gpu.ts';
import { expectSameStep, stepGradients } from '../helpers/step-gradients.ts';

/** The 3-layer fixture model with its adapter on every module (LoRA dropout 0.1). */
async function setup(engine: Engine) {
  const files = await loadFixtureModel('odd');
  expect(files.config.numHiddenLayers % 2).toBe(1);
  const bert = await BertEncoder.create(engine, files.config, files.weights, { quantization: 'nf4' });
  const peft = readFixtureAdapter('odd');
  const loraConfig = { r: peft.config.r, alpha: peft.config.loraAlpha, dropout: 0.1, rslora: peft.config.useRslora, targetModules: peft.config.targetModules };
  const adapter = new GpuAdapter(engine, files.config, loraConfig, peft.tensors, true);
  bert.adapters = [adapter];
  const encoder = new SentenceEncoder(bert, files.tokenizer, { pooling: 'mean', normalize: true, maxLength: 512 });
  return { bert, adapter, encoder };
}

const objective: Objective = { kind: 'infonce', scale: 20, symmetric: true };
const mode: ForwardMode = { train: true, hiddenDropout: 0.1, seed: 5 };

describe('activation checkpointing', () => {
  it.each([
    [1, null],
    [2, null],
    [2, 3],
    [1, 1],
  ] as const)('checkpointing 1 layer in %i (sequences per pass: %s) gives the full-cache gradients (1e-6; 1e-5 when also cached)', async (every, perPass) => {
    const engine = await gpuEngine();
    const { bert, adapter, encoder } = await setup(engine);
    const batch: EncodedBatch = { tokens: fixtureBatch('odd').tokens, anchors: 4, labels: null };
    const full = await stepGradients(encoder, adapter, objective, batch, mode, null);
    const checkpointed = await stepGradients(encoder, adapter, objective, batch, { ...mode, checkpointEvery: every }, perPass);
    expectSameStep(checkpointed, full, perPass === null ? 1e-6 : 1e-5, `every ${every}, ${perPass ?? 'all'} per pass`);
    bert.destroy();
  });

  it('keeps less GPU memory than the full-cache step', async () => {
    const peak = async (checkpointEvery: number) => {
      const engine = await gpuEngine();
      const { bert, adapter, encoder } = await setup(engine);
      const batch: EncodedBatch = { tokens: fixtureBatch('odd').tokens, anchors: 4, labels: null };
      engine.trimPool();
      engine.peakBytes = engine.liveBytes; // count this step only, from the loaded model on
      await stepGradients(encoder, adapter, objective, batch, { ...mode, checkpointEvery }, null);
      const used = engine.peakBytes;
      bert.destroy();
      return used;
    };
    expect(await peak(1)).toBeLessThan(await peak(0));
  });
});
