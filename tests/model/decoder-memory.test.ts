/** The decoder's memory estimate (a replay of its allocations through the pool's rules) and its plan. */
import { describe, expect, it } from 'vitest';
import { parseDecoderConfig } from '../../src/model/decoder-config.ts';
import { describeDecoderPlan, estimateDecoderTrainingMemory, planDecoderTraining } from '../../src/model/decoder-memory.ts';

const GiB = 2 ** 30;
const ALL_LINEARS = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];

/** A small Llama whose buffers have sizes that are easy to count: hidden 64, 4 heads of 16 over 2 KV heads, MLP 128, 256 tokens. */
const small = (layers: number, tie = false) =>
  parseDecoderConfig({
    model_type: 'llama',
    num_hidden_layers: layers,
    hidden_size: 64,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    intermediate_size: 128,
    vocab_size: 256,
    max_position_embeddings: 64,
    tie_word_embeddings: tie,
  });
const lora = { r: 4, alpha: 8, dropout: 0, rslora: false, targetModules: ALL_LINEARS };
const nf4 = { quantization: 'nf4' } as const;
const micro = { sequences: 2, seq: 16 }; // 32 rows

describe('decoder memory estimate', () => {
  it('counts one layer by hand: NF4 weights, LoRA, AdamW and the activations the layer keeps', () => {
    const [two, three] = [2, 3].map((layers) => estimateDecoderTrainingMemory(small(layers), lora, micro, nf4));
    // NF4 (exact buffers): packed n/2 bytes + one f32 absmax per 64 values; q, o 64×64, k, v 64×32,
    // gate, up, down 64×128; two RMSNorm weights of 64 f32.
    const nf4Layer = 2 * (2048 + 256) + 2 * (1024 + 128) + 3 * (4096 + 512) + 2 * 256;
    expect(three.baseWeights - two.baseWeights).toBe(nf4Layer);
    // LoRA r 4, A [4, in] and B [out, 4] in pool size classes: q, o 1 KiB + 1 KiB; k, v 1 KiB + 512 B
    // (rounded to 256-byte granules); gate, up 1 KiB + 2 KiB; down 2 KiB + 1 KiB.
    const loraLayer = 2 * 2048 + 2 * 1536 + 2 * 3072 + 3072;
    expect(three.loraParameters - two.loraParameters).toBe(loraLayer);
    expect(three.loraGradients - two.loraGradients).toBe(loraLayer);
    expect(three.optimizerState - two.optimizerState).toBe(2 * loraLayer); // m and v; the partials stay one 256-byte granule
    // Kept per layer for 32 rows: x, n1, q, context, h, n2 (8 KiB each), k, v (4 KiB), gate, up,
    // act (16 KiB), lse [32·4] (512 B), two rstd (256 B), seven X·Aᵀ [32, 4] (512 B); the layer's
    // transient buffers are served by the pool as the last layer's were.
    const keptLayer = 6 * 8192 + 2 * 4096 + 3 * 16384 + 512 + 2 * 256 + 7 * 512;
    expect(three.activations - two.activations).toBe(keptLayer);
    for (const e of [two, three]) expect(e.total).toBe(e.baseWeights + e.loraParameters + e.loraGradients + e.optimizerState + e.activations);
  });

  it('with checkpointing, a checkpointed layer adds its input only, and the backward rebuilds one layer at a time', () => {
    const activations = (layers: number, checkpointEvery: number) => estimateDecoderTrainingMemory(small(layers), lora, micro, nf4, { checkpointEvery }).activations;
    // Every layer checkpointed: each further layer keeps its input [32, 64] (8 KiB); the rebuilt layer's buffers are the forward's.
    expect(activations(3, 1) - activations(2, 1)).toBe(8192);
    expect(activations(5, 1) - activations(4, 1)).toBe(8192);
    // Every other layer of 4: two inputs, two caches and the one rebuilt layer.
    expect(activations(4, 1)).toBeLessThan(activations(4, 2));
    expect(activations(4, 2)).toBeLessThan(activations(4, 0));
    expect(estimateDecoderTrainingMemory(small(2), lora, micro, nf4, { checkpointEvery: 0 })).toEqual(estimateDecoderTrainingMemory(small(2), lora, micro, nf4));
  });

  it('counts the embeddings, an untied head and the final norm in f32', () => {
    const untied = estimateDecoderTrainingMemory(small(2), lora, micro, nf4);
    const tied = estimateDecoderTrainingMemory(small(2, true), lora, micro, nf4);
    expect(untied.baseWeights - tied.baseWeights).toBe(256 * 64 * 4);
    expect(tied.baseWeights).toBe(256 * 64 * 4 + 64 * 4 + 2 * (2 * (2048 + 256) + 2 * (1024 + 128) + 3 * (4096 + 512) + 2 * 256));
    const f32 = estimateDecoderTrainingMemory(small(2, true), lora, micro, { quantization: 'f32' });
    expect(f32.baseWeights - tied.baseWeights).toBe(2 * (4 * (2 * 64 * 64 + 2 * 64 * 32 + 3 * 64 * 128) - (2 * (2048 + 256) + 2 * (1024 + 128) + 3 * (4096 + 512))));
  });

  it('counts f16 embeddings and head at half the bytes, in row blocks of the binding it is given', () => {
    const untied = estimateDecoderTrainingMemory(small(2), lora, micro, nf4);
    const half = estimateDecoderTrainingMemory(small(2), lora, micro, { ...nf4, baseParts: 'f16' });
    expect(untied.baseWeights - half.baseWeights).toBe(2 * 256 * 64 * 2);
    // Blocks of a 3,000-byte binding: f32 11 rows of 256 bytes (23 blocks, 20 KiB in all as unsplit);
    // the largest base buffer is one block, not the table.
    const split = estimateDecoderTrainingMemory(small(2), lora, micro, nf4, { maxBindingBytes: 3000 });
    expect(split.baseWeights).toBe(untied.baseWeights);
    expect(untied.largestBuffer).toBe(256 * 64 * 4);
    expect(split.largestBuffer).toBe(Math.max(11 * 256, split.largestActivationBuffer));
    expect(() => estimateDecoderTrainingMemory(small(2), lora, micro, nf4, { maxBindingBytes: 200 })).toThrow(
      /model\.embed_tokens\.weight: one row of 64 f32 values needs 256 bytes, over this device's storage binding limit of 200 bytes/,
    );
  });

  it('grows activations with the micro-batch and leaves the rest alone; no adapter, no LoRA or optimizer state', () => {
    const one = estimateDecoderTrainingMemory(small(2), lora, { sequences: 1, seq: 16 }, nf4);
    const four = estimateDecoderTrainingMemory(small(2), lora, { sequences: 4, seq: 16 }, nf4);
    expect(four.activations).toBeGreaterThan(3 * one.activations);
    expect(four.baseWeights).toBe(one.baseWeights);
    const bare = estimateDecoderTrainingMemory(small(2), null, micro, nf4);
    expect([bare.loraParameters, bare.loraGradients, bare.optimizerState]).toEqual([0, 0, 0]);
    expect(() => estimateDecoderTrainingMemory(small(2), lora, { sequences: 1, seq: 65 }, nf4)).toThrow(/sequence length 65 exceeds the model's 64 positions/);
    expect(() => estimateDecoderTrainingMemory(small(2), lora, { sequences: 0, seq: 16 }, nf4)).toThrow(/whole positive sequences and length, got 0 × 16/);
  });
});

describe('decoder memory plan', () => {
  const qwen05b = parseDecoderConfig({
    model_type: 'qwen2',
    num_hidden_layers: 24,
    hidden_size: 896,
    num_attention_heads: 14,
    num_key_value_heads: 2,
    intermediate_size: 4864,
    vocab_size: 151936,
    max_position_embeddings: 32768,
    tie_word_embeddings: true,
  });
  const request = { config: qwen05b, lora: { ...lora, r: 16, alpha: 32 }, shape: { sequences: 8, seq: 256 }, base: { quantization: 'nf4', doubleQuant: true } as const };

  it('keeps the whole step in one pass when it fits, else the fastest layout of micro-batch × checkpoint interval that does', () => {
    expect(planDecoderTraining({ ...request, budgetBytes: 64 * GiB })).toMatchObject({ microBatch: 8, microBatches: 1, checkpointEvery: 0, relativeTime: 1, fits: true });
    // 1.5 GiB: the whole step with every layer checkpointed (one more forward: 4/3) beats 8 micro-batches without (8 passes' overhead).
    const plan = planDecoderTraining({ ...request, budgetBytes: 1.5 * GiB });
    expect(plan).toMatchObject({ microBatch: 8, microBatches: 1, checkpointEvery: 1, fits: true });
    expect(plan.relativeTime).toBeCloseTo(4 / 3, 12);
    expect(plan.estimate.total).toBeLessThanOrEqual(1.5 * GiB);
    const unchecked = planDecoderTraining({ ...request, budgetBytes: 1.5 * GiB, checkpointEvery: 0 });
    expect(unchecked).toMatchObject({ microBatch: 1, microBatches: 8, checkpointEvery: 0, fits: true });
    expect(unchecked.relativeTime).toBeGreaterThan(plan.relativeTime);
    // Roomier: fewer layers recomputed.
    const roomier = planDecoderTraining({ ...request, budgetBytes: 3 * GiB });
    expect(roomier.fits).toBe(true);
    expect(roomier.relativeTime).toBeLessThan(plan.relativeTime);
    expect(describeDecoderPlan(plan, 1.5 * GiB)).toMatch(/^memory plan: the whole step in one micro-batch, every layer checkpointed, f32 embeddings and head; estimate [\d.]+ GiB of a 1\.5 GiB budget/);
    expect(describeDecoderPlan(unchecked, 1.5 * GiB)).toMatch(/^memory plan: 8 micro-batches of 1 sequences \(gradient accumulation\), no checkpointing, f32 embeddings and head;/);
  });

  it('says when even the smallest layout is over the budget, and estimates what the user fixed', () => {
    const plan = planDecoderTraining({ ...request, budgetBytes: 0.5 * GiB });
    expect(plan).toMatchObject({ microBatch: 1, checkpointEvery: 1, fits: false });
    expect(describeDecoderPlan(plan, 0.5 * GiB)).toMatch(/^memory plan: 8 micro-batches of 1 sequences \(gradient accumulation\), every layer checkpointed, f32 embeddings and head; .* over the 512\.0 MiB budget even so/);
    expect(planDecoderTraining({ ...request, budgetBytes: 0.5 * GiB, microBatch: 4, checkpointEvery: 3 })).toMatchObject({ microBatch: 4, microBatches: 2, checkpointEvery: 3, fits: false });
    expect(() => planDecoderTraining({ ...request, budgetBytes: 0 })).toThrow(/budget must be a positive number of bytes, got 0/);
    expect(() => planDecoderTraining({ ...request, budgetBytes: GiB, microBatch: 1.5 })).toThrow(/micro-batch must be a positive whole number of sequences, got 1\.5/);
    expect(() => planDecoderTraining({ ...request, budgetBytes: GiB, checkpointEvery: -1 })).toThrow(/checkpoint interval must be a whole number of layers ≥ 0, got -1/);
  });

  it('stores the embeddings in f16 when no f32 layout fits, if f16 is offered', () => {
    const smallestF32 = planDecoderTraining({ ...request, budgetBytes: 1 }).estimate.total;
    const budgetBytes = smallestF32 - 100 * 2 ** 20; // f16 saves 151,936 × 896 × 2 bytes = 260 MiB
    expect(planDecoderTraining({ ...request, budgetBytes })).toMatchObject({ baseParts: 'f32', microBatch: 1, checkpointEvery: 1, fits: false });
    const plan = planDecoderTraining({ ...request, budgetBytes, storages: ['f32', 'f16'] });
    expect(plan).toMatchObject({ baseParts: 'f16', fits: true });
    expect(plan.estimate.total).toBeLessThanOrEqual(budgetBytes);
    expect(describeDecoderPlan(plan, budgetBytes)).toMatch(/, f16 embeddings and head; estimate/);
    expect(planDecoderTraining({ ...request, budgetBytes: 64 * GiB, storages: ['f32', 'f16'] }).baseParts).toBe('f32');
    expect(() => planDecoderTraining({ ...request, budgetBytes, storages: [] })).toThrow(/at least one storage precision/);
  });

  it('keeps every activation buffer within the device binding it is given', () => {
    const plan = planDecoderTraining({ ...request, budgetBytes: 64 * GiB, maxBufferBytes: 32 * 2 ** 20 }); // logits of 8 × 256 rows × a chunk of 8192 are 64 MiB
    expect(plan.fits).toBe(true);
    expect(plan.estimate.largestActivationBuffer).toBeLessThanOrEqual(32 * 2 ** 20);
    expect(plan.microBatch).toBeLessThan(8);
  });
});
