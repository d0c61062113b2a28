/**
 * Perplexity on the tiny decoder: each text's loss is the float64 log-softmax over the whole
 * vocabulary from its own hidden states, batching and right padding change nothing, the perplexity
 * of a batch is exp of the loss DecoderModel reports for it, a text longer than a sequence counts
 * every piece's tokens, and a stacked adapter is applied.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { chunkText } from '../../src/data/notes.ts';
import { perplexity, textLosses } from '../../src/eval/perplexity.ts';
import { openDecoderModel } from '../../src/model/decoder-checkpoint.ts';
import { createDecoderAdapter } from '../../src/model/decoder-lora.ts';
import { DecoderModel, causalLmTargets } from '../../src/model/decoder.ts';
import { localDirSource } from '../../src/model/node-files.ts';
import { loraConfigOf } from '../../src/model/peft-files.ts';
import { readSafetensorsFile } from '../helpers/fixtures.ts';
import { referenceLogProbs } from '../helpers/decoder-reference.ts';
import { gpuEngine } from '../helpers/gpu.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { tinyDecoderAdapter, writeTinyDecoder } from '../helpers/tiny-decoder.ts';

const TEXTS = ['Dyspnoea on exertion.', 'No oedema.', 'The heart is the pump of the body.'];

/** Σ_t −log softmax(hidden[t] · headᵀ)[ids[t+1]] in float64, from a forward of the ids alone. */
async function referenceLoss(model: DecoderModel, head: Float32Array, ids: number[]): Promise<number> {
  const logp = await referenceLogProbs(model, head, ids);
  return ids.slice(1).reduce((sum, next, t) => sum - logp(t, next), 0);
}

describe('perplexity on a decoder', () => {
  it('sums the float64 next-token losses per text, and is exp of the model loss of the batch', async () => {
    const engine = await gpuEngine();
    const dir = writeTinyDecoder(tempDir('ppl-'), { seed: 4 });
    const files = await openDecoderModel(localDirSource(dir));
    const model = await DecoderModel.create(engine, files.config, files.weights, { quantization: 'f32' });
    const head = readSafetensorsFile(join(dir, 'model.safetensors')).get('lm_head.weight')!.data as Float32Array;
    const { tokenizer } = files;
    // Batches of two, longest first: a text is padded beside a longer one, the shortest runs alone.
    const losses = await textLosses(model, tokenizer, TEXTS, { maxLength: 64, batchSize: 2, chunk: 100 });
    for (const [i, text] of TEXTS.entries()) {
      const ids = tokenizer.encode(text);
      expect(losses[i].tokens).toBe(ids.length - 1);
      expect(Math.abs(losses[i].loss - (await referenceLoss(model, head, ids))), `text ${i + 1}`).toBeLessThan(1e-4);
    }
    const batch = tokenizer.encodeBatch(TEXTS, 64);
    const result = model.forward(batch, { train: false, seed: 0 });
    const loss = model.loss(result, causalLmTargets(batch));
    const [mean] = await engine.readF32(loss.loss);
    model.releaseLoss(loss);
    model.releaseForward(result);
    expect(Math.abs(perplexity(losses) / Math.exp(mean) - 1)).toBeLessThan(1e-6); // the f32 mean's rounding
    expect(perplexity(losses)).toBeGreaterThan(100); // random weights over 272 tokens: near-uniform

    // A text longer than a sequence: its pieces' predicted tokens all count for it.
    const long = TEXTS.join(' ');
    const count = (t: string) => tokenizer.encode(t).length;
    const pieces = chunkText(long, 16, count);
    expect(pieces.length).toBeGreaterThan(1);
    const [whole] = await textLosses(model, tokenizer, [long], { maxLength: 16 });
    expect(whole.tokens).toBe(pieces.reduce((n, p) => n + count(p) - 1, 0));
    let expected = 0;
    for (const p of pieces) expected += await referenceLoss(model, head, tokenizer.encode(p));
    expect(Math.abs(whole.loss - expected)).toBeLessThan(1e-4);

    // The adapters on the model are applied.
    const peft = tinyDecoderAdapter(files.config);
    model.adapters = [createDecoderAdapter(engine, files.config, loraConfigOf(peft), peft.tensors, false)];
    const adapted = await textLosses(model, tokenizer, TEXTS, { maxLength: 64 });
    expect(adapted.map((l) => l.tokens)).toEqual(losses.map((l) => l.tokens));
    expect(Math.abs(perplexity(adapted) - perplexity(losses))).toBeGreaterThan(1e-2);
    model.destroy();
  }, 120_000);

  it('refuses an empty text by its number', async () => {
    const engine = await gpuEngine();
    const files = await openDecoderModel(localDirSource(writeTinyDecoder(tempDir('ppl-'), { seed: 4 })));
    const model = await DecoderModel.create(engine, files.config, files.weights, { quantization: 'f32' });
    await expect(textLosses(model, files.tokenizer, ['fine', '  '], { maxLength: 16 })).rejects.toThrow('text 2 is empty');
    model.destroy();
  });
});
