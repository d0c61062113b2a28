/**
 * The GPU BERT + LoRA against PyTorch (tests/fixtures, float64 references): embeddings, InfoNCE loss,
 * every LoRA gradient, and the adapter after 3 AdamW steps, with the f32 base and the NF4 base.
 * Tolerances (issue 3): embeddings 1e-4 absolute; gradients 1e-3 relative to each tensor's largest
 * |gradient|; adapter after 3 steps 1e-4 absolute (except the elements the fixture marks as
 * Adam-sensitive: gradients within float32 noise of zero, where Adam's g/|g| step is ill-defined).
 */
import { describe, expect, it } from 'vitest';
import type { Engine } from '../../src/engine/engine.ts';
import { BertEncoder, type BaseQuantization } from '../../src/model/bert.ts';
import { GpuAdapter } from '../../src/model/lora.ts';
import { SentenceEncoder } from '../../src/model/sentence.ts';
import { DEFAULT_TRAIN_CONFIG } from '../../src/train/defaults.ts';
import { Trainer } from '../../src/train/trainer.ts';
import { fixtureBatch, loadFixtureModel, readFixtureAdapter, readFixtureReference } from '../helpers/fixtures.ts';
import { gpuEngine } from '../helpers/gpu.ts';
import { expectClose } from '../helpers/numeric.ts';
import { expectReferenceEmbeddings, expectReferenceGradients, peftKey } from '../helpers/reference-checks.ts';

async function setup(engine: Engine, model: 'tiny' | 'odd', base: BaseQuantization, adapterDir = 'adapter_init') {
  const files = await loadFixtureModel(model);
  const bert = await BertEncoder.create(engine, files.config, files.weights, { quantization: base });
  const peft = readFixtureAdapter(model, adapterDir);
  const loraConfig = { r: peft.config.r, alpha: peft.config.loraAlpha, dropout: 0, rslora: peft.config.useRslora, targetModules: peft.config.targetModules };
  const adapter = new GpuAdapter(engine, files.config, loraConfig, peft.tensors, true);
  const encoder = new SentenceEncoder(bert, files.tokenizer, { pooling: 'mean', normalize: true, maxLength: 512 });
  return { files, bert, adapter, encoder, peft };
}

const CASES: [model: 'tiny' | 'odd', base: BaseQuantization, adapterDir: string, reference: string][] = [
  ['tiny', 'f32', 'adapter_init', 'f32'],
  ['tiny', 'nf4', 'adapter_init', 'nf4'],
  ['tiny', 'f32', 'adapter_init_rslora', 'f32_rslora'],
  ['odd', 'f32', 'adapter_init', 'f32'],
  ['odd', 'nf4', 'adapter_init', 'nf4'],
];

describe.each(CASES)('BERT %s, %s base (%s) vs PyTorch', (model, base, adapterDir, referenceName) => {
  it('embeddings without and with the adapter match within 1e-4', async () => {
    const engine = await gpuEngine();
    const loaded = await setup(engine, model, base, adapterDir);
    await expectReferenceEmbeddings(loaded, model, referenceName);
    loaded.bert.destroy();
  });

  it('InfoNCE loss and every LoRA gradient match (loss 1e-5, gradients 1e-3 relative)', async () => {
    const engine = await gpuEngine();
    const loaded = await setup(engine, model, base, adapterDir);
    await expectReferenceGradients(loaded, model, referenceName, peftKey);
    loaded.bert.destroy();
  });

  it('3 AdamW steps with clipping: losses, pre-clip norms and the adapter match (1e-4)', async () => {
    const engine = await gpuEngine();
    const { bert, adapter, encoder } = await setup(engine, model, base, adapterDir);
    bert.adapters = [adapter];
    const ref = readFixtureReference(model, referenceName);
    const opt = ref.meta.optimizer;
    const { tokens, anchors } = fixtureBatch(model);
    const trainer = new Trainer(encoder, {
      ...DEFAULT_TRAIN_CONFIG,
      objective: { kind: 'infonce', scale: 20, symmetric: false },
      learningRate: opt.lr,
      warmupSteps: 0,
      totalSteps: Number.MAX_SAFE_INTEGER, // constant learning rate, as the fixture
      maxGradNorm: opt.clip_grad_norm,
      weightDecay: opt.weight_decay,
      beta1: opt.betas[0],
      beta2: opt.betas[1],
      eps: opt.eps,
    });
    for (let step = 0; step < opt.steps; step++) {
      const report = await trainer.trainStep([{ tokens, anchors, labels: null }]);
      expect(Math.abs(report.loss - ref.meta.train.step_losses[step]), `loss at step ${step + 1}`).toBeLessThan(1e-5);
      expect(Math.abs(report.gradNorm - ref.meta.train.grad_norm_before_clip[step]) / ref.meta.train.grad_norm_before_clip[step]).toBeLessThan(1e-4);
    }
    const sensitive = new Map<string, Set<number>>();
    for (const { tensor, index } of ref.meta.train.adam_sensitive_elements) {
      const cols = ref.tensors.get(`adapter_step3.${tensor}`)!.shape[1];
      if (!sensitive.has(tensor)) sensitive.set(tensor, new Set());
      sensitive.get(tensor)!.add(index[0] * cols + index[1]);
    }
    const trained = await adapter.download();
    let compared = 0;
    for (const [name, tensor] of trained) {
      const key = peftKey(name);
      const expected = ref.tensors.get(`adapter_step3.${key}`)!.data;
      const skip = sensitive.get(key) ?? new Set<number>();
      const got = tensor.data.filter((_, i) => !skip.has(i));
      const want = expected.filter((_, i) => !skip.has(i));
      compared += got.length;
      expectClose(got, want, { atol: 1e-4, rtol: 0 }, `adapter_step3 ${name}`);
    }
    expect(compared).toBeGreaterThan(0.9 * [...trained.values()].reduce((n, t) => n + t.data.length, 0));
    trainer.release();
    bert.destroy();
  });
});
