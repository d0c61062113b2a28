/**
 * Devices that grant small storage bindings: with the engine's binding limit lowered to 8 KiB the
 * tiny fixture model's word table is split into row blocks, and the encoder's output, the InfoNCE
 * loss and every LoRA gradient equal the unsplit run bit for bit. (The tiny model's largest weight,
 * 64 × 32 f32, is 8 KiB, so its f16 word table, 7.5 KiB, would stay whole here; the split f16 kernel
 * is tested in tests/engine/embedding.gpu.test.ts.) What cannot fit is refused with an error naming it.
 */
import { describe, expect, it } from 'vitest';
import type { Engine } from '../../src/engine/engine.ts';
import { BertEncoder, type TokenBatch } from '../../src/model/bert.ts';
import { GpuAdapter } from '../../src/model/lora.ts';
import { SentenceEncoder } from '../../src/model/sentence.ts';
import { recordMicroBatch } from '../../src/train/objective.ts';
import { fixtureBatch, loadFixtureModel, readFixtureAdapter } from '../helpers/fixtures.ts';
import { gpuEngine, testEngine } from '../helpers/gpu.ts';
import { expectBitIdentical } from '../helpers/numeric.ts';

/** Sequences `rows` of the fixture batch cut to their first `seq` tokens (activations small enough for a few-KiB binding). */
function slice(tokens: TokenBatch, rows: number[], seq: number): TokenBatch {
  const pick = <T extends Uint32Array | Float32Array>(a: T, make: (n: number) => T): T => {
    const out = make(rows.length * seq);
    rows.forEach((r, i) => out.set(a.subarray(r * tokens.seq, r * tokens.seq + seq), i * seq));
    return out;
  };
  return {
    inputIds: pick(tokens.inputIds, (n) => new Uint32Array(n)),
    tokenTypeIds: pick(tokens.tokenTypeIds, (n) => new Uint32Array(n)),
    attentionMask: pick(tokens.attentionMask, (n) => new Float32Array(n)),
    batch: rows.length,
    seq,
  };
}

/** Hidden states, loss and LoRA gradients of the tiny model on 2 anchor/positive pairs of 4 tokens; and the word table's block count. */
async function run(engine: Engine) {
  const files = await loadFixtureModel('tiny');
  const bert = await BertEncoder.create(engine, files.config, files.weights, { quantization: 'nf4' });
  const peft = readFixtureAdapter('tiny');
  const lora = { r: peft.config.r, alpha: peft.config.loraAlpha, dropout: 0.1, rslora: false, targetModules: peft.config.targetModules };
  const adapter = new GpuAdapter(engine, files.config, lora, peft.tensors, true);
  bert.adapters = [adapter];
  const encoder = new SentenceEncoder(bert, files.tokenizer, { pooling: 'mean', normalize: true, maxLength: 64 });
  const tokens = slice(fixtureBatch('tiny').tokens, [0, 1, 4, 5], 4);
  const mode = { train: true, hiddenDropout: 0.1, seed: 7 };

  const forward = bert.forward(tokens, { ...mode, train: false });
  const hidden = await engine.readF32(forward.hidden);
  bert.releaseForward(forward);
  adapter.zeroGrads();
  const loss = recordMicroBatch(encoder, { kind: 'infonce', scale: 20, symmetric: true }, { tokens, anchors: 2, labels: null }, mode, 1);
  const lossValue = await engine.readF32(loss);
  engine.release(loss);
  const grads = await Promise.all(adapter.parameters().grads.map((g) => engine.readF32(g)));
  const wordBlocks = bert.wordTableBlocks;
  bert.destroy();
  return { hidden, lossValue, grads, wordBlocks };
}

describe('device binding limits', () => {
  // Tiny model: word table 120 × 32 f32 (15 KiB); the largest activation of this batch is 16 × 64 f32 = 4 KiB.
  it('under an 8 KiB binding the word table is split in 2 and the results equal the unlimited run bit for bit', async () => {
    const small = await testEngine({ maxBindingBytes: 8192 });
    const split = await run(small);
    const whole = await run(await gpuEngine());
    expect(split.wordBlocks).toBe(2); // 64 rows of 128 bytes per block
    expect(whole.wordBlocks).toBe(1);
    expectBitIdentical(split.hidden, whole.hidden, 'hidden');
    expectBitIdentical(split.lossValue, whole.lossValue, 'loss');
    split.grads.forEach((g, i) => expectBitIdentical(g, whole.grads[i], `gradient ${i}`));
    small.destroy();
  }, 300_000); // two devices each compile every pipeline of a training step (SwiftShader: about a minute each on a busy machine)

  it('names what does not fit: a row of a table, a weight, an activation', async () => {
    const files = await loadFixtureModel('tiny');
    const tiny = await testEngine({ maxBindingBytes: 64 });
    await expect(BertEncoder.create(tiny, files.config, files.weights, { quantization: 'f32' })).rejects.toThrow(
      /embeddings\.word_embeddings\.weight: one row of 32 f32 values needs 128 bytes, over this device's storage binding limit of 64 bytes/,
    );
    tiny.destroy();

    const small = await testEngine({ maxBindingBytes: 4096 });
    await expect(BertEncoder.create(small, files.config, files.weights, { quantization: 'nf4' })).rejects.toThrow(
      /encoder\.layer\.0\.intermediate\.dense\.weight of shape \[64, 32\] needs 8192 bytes, over this device's maxStorageBufferBindingSize of 4096 bytes/,
    );
    small.destroy();

    const engine = await testEngine({ maxBindingBytes: 8192 });
    const bert = await BertEncoder.create(engine, files.config, files.weights, { quantization: 'nf4' });
    const { tokens } = fixtureBatch('tiny'); // 8 sequences of over 8 tokens: [8, T, 32] f32 is over 8 KiB
    expect(() => bert.forward(tokens, { train: false, hiddenDropout: 0, seed: 0 })).toThrow(
      new RegExp(`a tensor of shape \\[8, ${tokens.seq}, 32\\] needs \\d+ bytes, over this device's maxStorageBufferBindingSize of 8192 bytes; a smaller batch`),
    );
    engine.destroy();
  });
});
