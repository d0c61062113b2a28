/**
 * The base's embedding tables and LayerNorm parameters stored in f16 (BaseOptions.baseParts), against
 * the PyTorch f32 fixtures: the cost of rounding those weights to half precision, everything else f32.
 * Largest errors measured (SwiftShader; tiny and odd models, f32 and NF4 bases, with the adapter):
 * sentence embeddings 2.3e-4 absolute (unit vectors), InfoNCE loss 8.9e-5, LoRA gradients 2.6e-3
 * relative to each tensor's largest |gradient|. The bounds below leave about 2× headroom; with f32
 * base parts the same checks hold at 1e-4, 1e-5 and 1e-3 (bert-pytorch.gpu.test.ts).
 */
import { describe, expect, it } from 'vitest';
import type { BaseQuantization } from '../../src/model/bert.ts';
import { BertEncoder } from '../../src/model/bert.ts';
import { GpuAdapter } from '../../src/model/lora.ts';
import { SentenceEncoder } from '../../src/model/sentence.ts';
import { recordMicroBatch } from '../../src/train/objective.ts';
import { fixtureBatch, loadFixtureModel, readFixtureAdapter, readFixtureReference } from '../helpers/fixtures.ts';
import { gpuEngine } from '../helpers/gpu.ts';
import { maxAbsDiff } from '../helpers/numeric.ts';

const pefKey = (name: string) => {
  const dot = name.lastIndexOf('.');
  return `base_model.model.${name.slice(0, dot)}.${name.slice(dot + 1)}.weight`;
};

async function measure(model: 'tiny' | 'odd', base: BaseQuantization) {
  const engine = await gpuEngine();
  const files = await loadFixtureModel(model);
  const bert = await BertEncoder.create(engine, files.config, files.weights, { quantization: base, baseParts: 'f16' });
  const peft = readFixtureAdapter(model);
  const loraConfig = { r: peft.config.r, alpha: peft.config.loraAlpha, dropout: 0, rslora: peft.config.useRslora, targetModules: peft.config.targetModules };
  const adapter = new GpuAdapter(engine, files.config, loraConfig, peft.tensors, true);
  const encoder = new SentenceEncoder(bert, files.tokenizer, { pooling: 'mean', normalize: true, maxLength: 512 });
  const ref = readFixtureReference(model, base);
  const { tokens, anchors } = fixtureBatch(model);
  const h = files.config.hiddenSize;
  bert.adapters = [adapter];

  const state = encoder.forward(tokens, { train: false, hiddenDropout: 0, seed: 0 });
  const embeddings = await engine.readF32(state.embeddings);
  encoder.release(state);
  const embeddingError = Math.max(
    maxAbsDiff(embeddings.subarray(0, anchors * h), ref.tensors.get('embedding.anchor')!.data),
    maxAbsDiff(embeddings.subarray(anchors * h), ref.tensors.get('embedding.positive')!.data),
  );

  adapter.zeroGrads();
  const loss = recordMicroBatch(encoder, { kind: 'infonce', scale: 20, symmetric: false }, { tokens, anchors, labels: null }, { train: true, hiddenDropout: 0, seed: 0 }, 1);
  const lossError = Math.abs((await engine.readF32(loss))[0] - ref.meta.loss.value);
  engine.release(loss);
  let gradientError = 0; // relative to each tensor's largest |gradient|
  const { grads, names } = adapter.parameters();
  for (let i = 0; i < names.length; i++) {
    const expected = ref.tensors.get(`grad.${pefKey(names[i])}`)!.data;
    const scale = expected.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    gradientError = Math.max(gradientError, maxAbsDiff(await engine.readF32(grads[i]), expected) / scale);
  }
  bert.destroy();
  return { embeddingError, lossError, gradientError };
}

describe.each([
  ['tiny', 'f32'],
  ['tiny', 'nf4'],
  ['odd', 'f32'],
  ['odd', 'nf4'],
] as const)('BERT %s, %s base, embeddings and LayerNorms stored in f16, vs PyTorch', (model, base) => {
  it('embeddings, InfoNCE loss and LoRA gradients stay within the measured cost of half precision', async () => {
    const errors = await measure(model, base);
    expect(errors.embeddingError, 'sentence embeddings, max |error|').toBeLessThan(5e-4);
    expect(errors.lossError, 'InfoNCE loss, |error|').toBeLessThan(2e-4);
    expect(errors.gradientError, 'LoRA gradients, max |error| / max |gradient|').toBeLessThan(5e-3);
  });
});
