/** The memory estimate across step layouts, and the automatic plan that picks one to fit a budget. */
import { describe, expect, it } from 'vitest';
import { parseBertConfig } from '../../src/model/config.ts';
import { TIME_TOLERANCE, checkpointedLayers, describePlan, estimateTrainingMemory, largestBatchWithin, planTraining } from '../../src/model/memory.ts';

const GiB = 2 ** 30;
/** config.json of a BERT with `layers`, hidden size `h` (heads of 64), intermediate 4·h and `vocab` tokens. */
const bertConfig = (layers: number, h: number, vocab: number) =>
  parseBertConfig({ model_type: 'bert', architectures: ['BertModel'], num_hidden_layers: layers, hidden_size: h, num_attention_heads: h / 64, intermediate_size: 4 * h, vocab_size: vocab });
const large = bertConfig(24, 1024, 28895);
const lora = { r: 16, alpha: 32, dropout: 0.1, rslora: false, targetModules: ['query', 'value'] };
const nf4 = { quantization: 'nf4' } as const;
const batch = { sequences: 64, seq: 128 };

describe('memory estimate by step layout', () => {
  it('counts the layers every n-th checkpointing keeps as inputs', () => {
    expect([1, 2, 3, 24].map((n) => checkpointedLayers(24, n))).toEqual([24, 12, 8, 1]);
    expect(checkpointedLayers(3, 2)).toBe(2);
    expect(checkpointedLayers(5, 0)).toBe(0);
  });

  it('gradient caching bounds activations by the pass, not the batch; the loss still sees the whole batch', () => {
    const oneShot = estimateTrainingMemory(large, lora, batch, nf4);
    const cached8 = estimateTrainingMemory(large, lora, batch, nf4, { sequencesPerPass: 8 });
    const cached4 = estimateTrainingMemory(large, lora, batch, nf4, { sequencesPerPass: 4 });
    expect(cached8.activations).toBeLessThan(oneShot.activations / 6);
    expect(cached4.activations).toBeLessThan(cached8.activations * 0.6);
    expect(cached8.baseWeights).toBe(oneShot.baseWeights);
    // A pass the size of the batch is the one-shot step.
    expect(estimateTrainingMemory(large, lora, batch, nf4, { sequencesPerPass: 64 }).total).toBe(oneShot.total);
    // Twice the pairs per step at the same pass size: only the embeddings and the loss's matrices grow.
    const doubled = estimateTrainingMemory(large, lora, { sequences: 128, seq: 128 }, nf4, { sequencesPerPass: 8 });
    expect(doubled.activations - cached8.activations).toBeLessThan(0.02 * cached8.activations);
  });

  it('checkpointing every layer keeps less than every other layer, which keeps less than none', () => {
    const at = (checkpointEvery: number) => estimateTrainingMemory(large, lora, batch, nf4, { checkpointEvery }).activations;
    expect(at(1)).toBeLessThan(at(2));
    expect(at(2)).toBeLessThan(at(0) * 0.6);
    expect(at(1)).toBeLessThan(at(0) * 0.2);
  });

  it("counts a linear's input only when the trainable adapter adapts it (a frozen linear's backward needs only its weight)", () => {
    const small = bertConfig(4, 256, 500);
    const shape = { sequences: 16, seq: 32 };
    const activations = (targetModules: string[]) => estimateTrainingMemory(small, { ...lora, targetModules }, shape, nf4).activations;
    const queryValue = activations(['query', 'value']);
    const m = 16 * 32;
    // Each keeps its input in every layer (context and y1 [M, H], GELU's output [M, I], f32) and its X·Aᵀ;
    // the last layer's input is released in backward before the gradients that would otherwise need
    // new buffers, so the peak grows by at least the other layers' inputs.
    expect(activations(['query', 'value', 'attention.output.dense']) - queryValue).toBeGreaterThanOrEqual(3 * m * 256 * 4);
    expect(activations(['query', 'value', 'intermediate.dense']) - queryValue).toBeGreaterThanOrEqual(3 * m * 256 * 4);
    expect(activations(['query', 'value', 'output.dense']) - queryValue).toBeGreaterThanOrEqual(3 * m * 1024 * 4);
    // LoRA on the key adds only its X·Aᵀ: the layer input is kept for query and value already.
    expect(activations(['query', 'key', 'value']) - queryValue).toBeLessThan(4 * m * 256 * 4);
  });

  it('f16 storage halves the saved activations and the f32 base parts, not the NF4 weights', () => {
    const f32 = estimateTrainingMemory(large, lora, batch, nf4);
    const f16 = estimateTrainingMemory(large, lora, batch, nf4, { storage: 'f16' });
    const words = 28895 * 1024;
    expect(f32.baseWeights - f16.baseWeights).toBeGreaterThan(words * 2);
    expect(f16.baseWeights).toBeGreaterThan(f32.baseWeights / 2);
    expect(f16.activations).toBeLessThan(f32.activations * 0.7);
    // With a small batch the word embeddings are the largest buffer.
    const small = { sequences: 8, seq: 128 };
    expect(estimateTrainingMemory(large, lora, small, nf4, { storage: 'f16' }).largestBuffer).toBeLessThan(estimateTrainingMemory(large, lora, small, nf4).largestBuffer);
  });
});

describe('automatic memory plan', () => {
  const request = { config: large, lora, shape: batch, base: nf4 };

  it('keeps the whole step in f32 when it fits (nothing traded), in f16 when f16 is fixed', () => {
    const plan = planTraining({ ...request, budgetBytes: 64 * GiB });
    expect(plan).toMatchObject({ sequencesPerPass: null, checkpointEvery: 0, storage: 'f32', passes: 1, fits: true, relativeTime: 1 });
    expect(planTraining({ ...request, budgetBytes: 64 * GiB, fixed: { storage: 'f16' } })).toMatchObject({ sequencesPerPass: null, checkpointEvery: 0, storage: 'f16' });
  });

  it('once the whole f32 step does not fit, takes f16 storage (as fast, less memory) before recomputing', () => {
    const whole = estimateTrainingMemory(large, lora, batch, nf4).total;
    const plan = planTraining({ ...request, budgetBytes: whole - 1 });
    expect(plan).toMatchObject({ sequencesPerPass: null, checkpointEvery: 0, storage: 'f16', fits: true, relativeTime: 1 });
  });

  it('fits BioLinkBERT-large, 32 pairs × 128, in 1.5 GiB, and picks the fastest layout that fits', () => {
    const budgetBytes = 1.5 * GiB;
    const plan = planTraining({ ...request, budgetBytes, maxBufferBytes: 128 * 2 ** 20 });
    expect(plan.fits).toBe(true);
    expect(plan.estimate.total).toBeLessThanOrEqual(budgetBytes);
    expect(plan.estimate.largestActivationBuffer).toBeLessThanOrEqual(128 * 2 ** 20);
    expect(plan.relativeTime).toBeGreaterThan(1);
    const tighter = planTraining({ ...request, budgetBytes: 1 * GiB });
    expect(tighter.fits).toBe(true);
    expect(tighter.relativeTime).toBeGreaterThanOrEqual(plan.relativeTime);
    expect(describePlan(plan, budgetBytes)).toMatch(/^memory plan: .*checkpointed, f16 storage; estimate [\d.]+ (GiB|MiB) of a 1\.5 GiB budget/);
  });

  it('fits BERT-base, 32 pairs × 128, under 1 GiB when the budget is 1.5 GiB (memory before a few % of speed)', () => {
    const plan = planTraining({ ...request, config: bertConfig(12, 768, 30522), budgetBytes: 1.5 * GiB, maxBufferBytes: 128 * 2 ** 20 });
    expect(plan.fits).toBe(true);
    expect(plan.estimate.total).toBeLessThanOrEqual(1 * GiB);
    expect(plan.relativeTime).toBeLessThan(1.4);
  });

  it('fits with f16 storage where f32 cannot', () => {
    const budgetBytes = 330 * 2 ** 20;
    expect(planTraining({ ...request, budgetBytes, storages: ['f32'] }).fits).toBe(false);
    expect(planTraining({ ...request, budgetBytes })).toMatchObject({ storage: 'f16', fits: true });
  });

  it('takes the least memory among the layouts that fit within TIME_TOLERANCE of the fastest', () => {
    const budgetBytes = 1 * GiB;
    const maxBufferBytes = 128 * 2 ** 20;
    const plan = planTraining({ ...request, budgetBytes, maxBufferBytes });
    const fitting = (['f32', 'f16'] as const).flatMap((storage) =>
      [0, 1, 2, 3].flatMap((checkpointEvery) =>
        [0, 1, 2, 4, 8, 16, 32].map((sequencesPerPass) => planTraining({ ...request, budgetBytes, maxBufferBytes, fixed: { storage, checkpointEvery, sequencesPerPass } })),
      ),
    ).filter((p) => p.fits);
    const fastest = Math.min(...fitting.map((p) => p.relativeTime));
    const nearlyFastest = fitting.filter((p) => p.relativeTime <= fastest * (1 + TIME_TOLERANCE));
    expect(nearlyFastest.length).toBeGreaterThan(1);
    expect(plan.relativeTime).toBeLessThanOrEqual(fastest * (1 + TIME_TOLERANCE));
    for (const p of nearlyFastest) expect(plan.estimate.total).toBeLessThanOrEqual(p.estimate.total);
  });

  it('plans only what the user left open', () => {
    const plan = planTraining({ ...request, budgetBytes: 1.5 * GiB, fixed: { checkpointEvery: 0 } });
    expect(plan).toMatchObject({ checkpointEvery: 0, fits: true });
    expect(plan.sequencesPerPass).toBeLessThan(16);
    expect(planTraining({ ...request, budgetBytes: 1.5 * GiB, fixed: { sequencesPerPass: 7 } })).toMatchObject({ sequencesPerPass: 7, passes: 19 });
    expect(planTraining({ ...request, budgetBytes: 64 * GiB, fixed: { sequencesPerPass: 0 } })).toMatchObject({ sequencesPerPass: null, checkpointEvery: 0, passes: 1 });
  });

  it('says when nothing fits, with the layout that needs least', () => {
    const plan = planTraining({ ...request, budgetBytes: 100 * 2 ** 20 });
    expect(plan.fits).toBe(false);
    expect(plan).toMatchObject({ sequencesPerPass: 1, checkpointEvery: 1 });
    expect(describePlan(plan, 100 * 2 ** 20)).toMatch(/over the 100\.0 MiB budget even so/);
  });

  it('rejects a budget or batch that is not a positive size', () => {
    expect(() => planTraining({ ...request, budgetBytes: 0 })).toThrow(/budget must be a positive number of bytes, got 0/);
    expect(() => planTraining({ ...request, shape: { sequences: 0, seq: 128 }, budgetBytes: GiB })).toThrow(/whole positive sequences and length, got 0 × 128/);
  });

  it('finds the largest batch of pairs that fits a budget', () => {
    const small = bertConfig(2, 64, 500);
    const request = { config: small, lora, base: nf4, seq: 16, budgetBytes: 64 * 2 ** 20 };
    const pairs = largestBatchWithin(request);
    expect(pairs).toBeGreaterThan(1);
    const fits = (n: number) => planTraining({ ...request, shape: { sequences: 2 * n, seq: 16, anchors: n } }).fits;
    expect(fits(pairs)).toBe(true);
    expect(fits(pairs + 1)).toBe(false);
  });
});
