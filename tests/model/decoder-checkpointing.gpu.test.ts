/**
 * Decoder activation checkpointing: layers that keep only their input and run their forward again
 * inside backward give the loss and every LoRA gradient of the step that keeps all activations
 * (1e-6 relative), with LoRA dropout on (the recomputed forward draws the same masks), every layer
 * (n = 1) and every other one (n = 2), on the PyTorch fixture models: Llama (NF4 base, LoRA on every
 * linear), Qwen3 (per-head q/k RMSNorm) and Phi-3 (fused projections split at load).
 */
import { describe, expect, it } from 'vitest';
import { DecoderModel, causalLmTargets } from '../../src/model/decoder.ts';
import { createDecoderAdapter } from '../../src/model/decoder-lora.ts';
import { readDecoderFixture } from '../helpers/decoder-fixture.ts';
import { gpuEngine } from '../helpers/gpu.ts';
import { type StepResult, expectSameStep } from '../helpers/step-gradients.ts';

const CASES: [model: string, reference: string][] = [
  ['llama', 'nf4_all'],
  ['qwen3', 'f32_all'],
  ['phi3', 'f32_o_down'],
];

/** Vocabulary rows per LM-head chunk. */
const CHUNK = 16;

describe.each(CASES)('decoder %s (%s) with activation checkpointing', (model, name) => {
  it('gives the loss and LoRA gradients of the step that keeps every activation, at n = 1 and 2', async () => {
    const engine = await gpuEngine();
    const { config, weights, c, batch, adapter, lora } = await readDecoderFixture(model, name);
    const decoder = await DecoderModel.create(engine, config, weights, { quantization: c.base });
    const gpuAdapter = createDecoderAdapter(engine, config, { ...lora, dropout: 0.2 }, adapter, true);
    decoder.adapters = [gpuAdapter];
    const targets = causalLmTargets(batch);

    const step = async (checkpointEvery: number, seed = 7): Promise<StepResult> => {
      gpuAdapter.zeroGrads();
      const result = decoder.forward(batch, { train: true, seed, checkpointEvery });
      const loss = decoder.loss(result, targets, CHUNK);
      decoder.backwardLoss(result, loss, CHUNK);
      const value = (await engine.readF32(loss.loss))[0];
      decoder.releaseLoss(loss);
      decoder.releaseForward(result);
      return { loss: value, grads: await Promise.all(gpuAdapter.parameters().grads.map((g) => engine.readF32(g))) };
    };
    const full = await step(0);
    // The dropout masks matter: another seed gives another loss, so equal steps mean equal masks.
    expect((await step(0, 8)).loss).not.toBeCloseTo(full.loss, 6);
    for (const every of [1, 2]) expectSameStep(await step(every), full, 1e-6, `${model} ${name}, 1 layer in ${every} checkpointed`);
    decoder.destroy();
  });
});
