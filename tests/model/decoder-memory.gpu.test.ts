/**
 * The decoder's memory estimate against the engine's measured peak of a causal-LM training step
 * (tiny Llama, NF4 base, LoRA on every linear, AdamW), without and with activation checkpointing,
 * and micro-batches that add up to the whole-batch step (the plan's gradient accumulation).
 */
import { describe, expect, it } from 'vitest';
import { type DecoderBatch, DecoderModel } from '../../src/model/decoder.ts';
import { openDecoderModel } from '../../src/model/decoder-checkpoint.ts';
import { createDecoderAdapter } from '../../src/model/decoder-lora.ts';
import { initDecoderLora } from '../../src/model/decoder-lora-layout.ts';
import { estimateDecoderTrainingMemory } from '../../src/model/decoder-memory.ts';
import { localDirSource } from '../../src/model/node-files.ts';
import { DecoderTrainer } from '../../src/train/decoder-trainer.ts';
import { DEFAULT_TRAIN_CONFIG } from '../../src/train/defaults.ts';
import type { StoragePrecision } from '../../src/engine/stored.ts';
import { gpuEngine, testEngine } from '../helpers/gpu.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { writeTinyDecoder } from '../helpers/tiny-decoder.ts';

const lora = { r: 4, alpha: 8, dropout: 0.1, rslora: false, targetModules: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] };
const base = { quantization: 'nf4', doubleQuant: true } as const;
/** Vocabulary rows per LM-head chunk: the tiny vocabulary of 272 in 3 chunks. */
const CHUNK = 96;

function batch(sequences: number, seq: number, first = 0): DecoderBatch {
  const inputIds = Uint32Array.from({ length: sequences * seq }, (_, i) => (first * seq + i) % 250);
  const attentionMask = new Float32Array(sequences * seq).fill(1);
  if (first === 0) attentionMask[seq - 1] = 0; // the step's first row ends in padding
  return { inputIds, attentionMask, batch: sequences, seq };
}

/**
 * A tiny decoder with its adapter and trainer, its engine's peak counted from the loaded model and
 * adapter on, as the estimate counts. The file's engine is shared (its pipelines compile once) unless
 * `maxBindingBytes` asks for a device of its own: each test destroys its model, and what the engine
 * keeps between them (the NF4 dynamic map, one per engine) the estimate counts as any model's. The
 * pool is emptied first: a buffer an earlier model left there would be reused at its own size; and
 * `peak()` leaves out what other test files left live on the shared engine.
 */
async function tinyTrainer(layers: number, options: { checkpointEvery?: number; baseParts?: StoragePrecision; maxBindingBytes?: number } = {}) {
  const engine = options.maxBindingBytes === undefined ? await gpuEngine() : await testEngine({ maxBindingBytes: options.maxBindingBytes });
  engine.trimPool();
  const before = engine.liveBytes;
  const files = await openDecoderModel(localDirSource(writeTinyDecoder(tempDir('dmem-'), { layers, seed: 3 })));
  const model = await DecoderModel.create(engine, files.config, files.weights, { ...base, baseParts: options.baseParts });
  engine.trimPool();
  model.adapters = [createDecoderAdapter(engine, files.config, lora, initDecoderLora(files.config, lora.r, lora.targetModules, 5).tensors, true)];
  const trainer = new DecoderTrainer(model, { ...DEFAULT_TRAIN_CONFIG, learningRate: 1e-2, warmupSteps: 0, checkpointEvery: options.checkpointEvery ?? 0 }, CHUNK);
  engine.peakBytes = engine.liveBytes;
  return { engine, config: files.config, model, trainer, peak: () => engine.peakBytes - before };
}

describe('decoder memory against the engine', () => {
  it.each([0, 1, 2])('measured peak of a training step ÷ the estimate is within 0.8–1.1 (1 layer in %i checkpointed)', async (checkpointEvery) => {
    const { config, model, trainer, peak } = await tinyTrainer(checkpointEvery === 2 ? 5 : 3, { checkpointEvery });
    await trainer.trainStep([batch(3, 40)]);
    const measured = peak();
    const estimate = estimateDecoderTrainingMemory(config, lora, { sequences: 3, seq: 40 }, base, { lmHeadChunk: CHUNK, checkpointEvery });
    const ratio = measured / estimate.total;
    expect(ratio, `measured ${measured} bytes, estimate ${estimate.total}`).toBeGreaterThanOrEqual(0.8);
    expect(ratio, `measured ${measured} bytes, estimate ${estimate.total}`).toBeLessThanOrEqual(1.1);
    console.log(`f32 embeddings: measured ${measured} bytes, estimate ${estimate.total} (${ratio.toFixed(3)})`);
    trainer.release();
    model.destroy();
  }, 120_000);

  // A 16 KiB binding: the f16 [272, 32] embeddings (17 KiB) in blocks of 256 and 16 rows; one sequence of 16 tokens keeps every activation within it.
  it('with f16 embeddings in row blocks, measured ÷ estimate is within 0.8–1.1', async () => {
    const layout = { baseParts: 'f16', maxBindingBytes: 16384 } as const;
    const { engine, config, model, trainer, peak } = await tinyTrainer(2, layout);
    expect(model.embeddingBlocks).toBe(2);
    await trainer.trainStep([batch(1, 16)]);
    const measured = peak();
    const estimate = estimateDecoderTrainingMemory(config, lora, { sequences: 1, seq: 16 }, { ...base, baseParts: 'f16' }, { lmHeadChunk: CHUNK, maxBindingBytes: 16384 });
    const ratio = measured / estimate.total;
    expect(ratio, `measured ${measured} bytes, estimate ${estimate.total}`).toBeGreaterThanOrEqual(0.8);
    expect(ratio, `measured ${measured} bytes, estimate ${estimate.total}`).toBeLessThanOrEqual(1.1);
    console.log(`f16 embeddings in 2 blocks: measured ${measured} bytes, estimate ${estimate.total} (${ratio.toFixed(3)})`);
    trainer.release();
    model.destroy();
    engine.destroy();
  }, 120_000);

  it('micro-batches give the loss of the whole batch in one step', async () => {
    // The same model twice, one after the other on the file's engine.
    const step = async (micro: DecoderBatch[]) => {
      const { model, trainer } = await tinyTrainer(2);
      const report = await trainer.trainStep(micro);
      trainer.release();
      model.destroy();
      return report;
    };
    const one = await step([batch(4, 12)]);
    const parts = await step([batch(1, 12), batch(3, 12, 1)]);
    expect(parts.tokens).toBe(one.tokens);
    expect(parts.loss).toBeCloseTo(one.loss, 5);
  }, 120_000);
});
