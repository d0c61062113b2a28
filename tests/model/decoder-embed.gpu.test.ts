/**
 * Decoder embeddings against float64 poolings of PyTorch's last hidden states (tests/fixtures/decoder,
 * the base model without adapter; one row is right-padded): mean over real tokens and the last real
 * token, raw and L2-normalised. And texts embedded in padded batches equal each text embedded alone.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type DecoderEmbedOptions, embedDecoderBatch, embedDecoderTexts } from '../../src/model/decoder-embed.ts';
import { openDecoderModel } from '../../src/model/decoder-checkpoint.ts';
import { parseDecoderConfig } from '../../src/model/decoder-config.ts';
import { openDecoderWeights } from '../../src/model/decoder-weights.ts';
import { type DecoderBatch, DecoderModel } from '../../src/model/decoder.ts';
import { localDirSource } from '../../src/model/node-files.ts';
import { FIXTURES, readSafetensorsFile } from '../helpers/fixtures.ts';
import { gpuEngine } from '../helpers/gpu.ts';
import { expectClose } from '../helpers/numeric.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { writeTinyDecoder } from '../helpers/tiny-decoder.ts';

/** Float64 pooling of hidden [B, T, H] over the batch's mask. */
function referencePooling(hidden: ArrayLike<number>, batch: DecoderBatch, options: DecoderEmbedOptions): number[][] {
  const h = hidden.length / (batch.batch * batch.seq);
  return Array.from({ length: batch.batch }, (_, b) => {
    const real = Array.from({ length: batch.seq }, (_, t) => t).filter((t) => batch.attentionMask[b * batch.seq + t] !== 0);
    const rows = options.pooling === 'mean' ? real : real.slice(-1);
    const v = Array.from({ length: h }, (_, j) => rows.reduce((s, t) => s + hidden[(b * batch.seq + t) * h + j], 0) / rows.length);
    const norm = Math.hypot(...v);
    return options.normalize ? v.map((x) => x / norm) : v;
  });
}

const OPTIONS: DecoderEmbedOptions[] = [
  { pooling: 'mean', normalize: false },
  { pooling: 'mean', normalize: true },
  { pooling: 'last', normalize: false },
  { pooling: 'last', normalize: true },
];

describe.each(['llama', 'qwen3'])('decoder embeddings of the %s fixture', (fixture) => {
  it('match float64 poolings of PyTorch hidden states', async () => {
    const engine = await gpuEngine();
    const dir = join(FIXTURES, 'decoder', fixture);
    const config = parseDecoderConfig(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')));
    const model = await DecoderModel.create(engine, config, await openDecoderWeights(localDirSource(dir), config), { quantization: 'f32' });
    const reference = readSafetensorsFile(join(dir, 'reference.safetensors'));
    const ids = reference.get('input_ids')!;
    const batch: DecoderBatch = { inputIds: Uint32Array.from(ids.data), attentionMask: Float32Array.from(reference.get('attention_mask')!.data), batch: ids.shape[0], seq: ids.shape[1] };
    expect(batch.attentionMask.includes(0), 'the fixture batch has padding').toBe(true);
    const hidden = reference.get('f32_all.no_adapter.hidden')!.data;
    for (const options of OPTIONS) {
      const embeddings = embedDecoderBatch(model, batch, options);
      expectClose(await engine.readF32(embeddings), referencePooling(hidden, batch, options).flat(), { atol: 1e-4, rtol: 0 }, `${options.pooling}, normalize ${options.normalize}`);
      engine.release(embeddings);
    }
    model.destroy();
  });
});

describe('decoder text embeddings', () => {
  it('are the same in padded batches as alone', async () => {
    const engine = await gpuEngine();
    const files = await openDecoderModel(localDirSource(writeTinyDecoder(tempDir('embed-'), { seed: 3 })));
    const model = await DecoderModel.create(engine, files.config, files.weights, { quantization: 'f32' });
    const texts = ['the heart', 'a much longer text about the heart and its valves', 'is'];
    for (const pooling of ['mean', 'last'] as const) {
      const batched = await embedDecoderTexts(model, files.tokenizer, texts, { pooling, normalize: true, batchSize: 2 });
      expect(batched.length).toBe(3);
      for (const [i, text] of texts.entries()) {
        const [alone] = await embedDecoderTexts(model, files.tokenizer, [text], { pooling, normalize: true });
        expectClose(batched[i], alone, { atol: 1e-5, rtol: 0 }, `${pooling} text ${i + 1}`);
      }
    }
    await expect(embedDecoderTexts(model, files.tokenizer, texts, { pooling: 'max' as never, normalize: false })).rejects.toThrow('decoder pooling must be mean or last, got max');
    model.destroy();
  });
});
