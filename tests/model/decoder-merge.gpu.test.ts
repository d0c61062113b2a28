/**
 * `qlora-lab merge` on decoders: the merged Hugging Face folder, read back by openDecoderModel, runs
 * the same forward as the base with the adapter on it (hidden states after the final norm, 1e-4 at
 * real tokens; f32 base), for a Llama with LoRA on every linear and a Phi-3 whose adapter targets
 * the fused qkv_proj / gate_up_proj (merged into the fused weights the folder holds).
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { readDecoderAdapterDir } from '../../src/cli/decoder.ts';
import { openDecoderModel } from '../../src/model/decoder-checkpoint.ts';
import { createDecoderAdapter } from '../../src/model/decoder-lora.ts';
import { type DecoderBatch, DecoderModel } from '../../src/model/decoder.ts';
import { localDirSource } from '../../src/model/node-files.ts';
import { loraConfigOf } from '../../src/model/peft-files.ts';
import { FIXTURES } from '../helpers/fixtures.ts';
import { gpuEngine } from '../helpers/gpu.ts';
import { expectClose } from '../helpers/numeric.ts';
import { tempDir } from '../helpers/temp-dir.ts';

const run = promisify(execFile);
const BIN = join(import.meta.dirname, '..', '..', 'bin', 'qlora-lab.js');

describe.each(['llama', 'phi3'])('merge of the %s decoder', (name) => {
  it('gives a folder whose forward equals base + adapter', async () => {
    const fixture = join(FIXTURES, 'decoder', 'check_grads', name);
    const out = join(tempDir('qll-merged-'), 'merged');
    await run('node', [BIN, 'merge', '--model', join(fixture, 'model'), '--adapter', join(fixture, 'adapter'), '--out', out]);
    expect(existsSync(join(out, 'tokenizer.json'))).toBe(true);
    expect(JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')).model_type).toBe(name);

    const engine = await gpuEngine();
    const base = await openDecoderModel(localDirSource(join(fixture, 'model')));
    const merged = await openDecoderModel(localDirSource(out));
    const batch: DecoderBatch = base.tokenizer.encodeBatch(['the cat sat', 'heart disease'], 16);
    const hidden = async (model: DecoderModel) => {
      const result = model.forward(batch, { train: false, seed: 0 });
      const values = await engine.readF32(result.hidden);
      model.releaseForward(result);
      model.destroy();
      return Array.from(values).filter((_, i) => batch.attentionMask[Math.floor(i / base.config.hiddenSize)] !== 0);
    };
    const adapted = await DecoderModel.create(engine, base.config, base.weights, { quantization: 'f32' });
    const peft = await readDecoderAdapterDir(join(fixture, 'adapter'), base.config);
    adapted.adapters = [createDecoderAdapter(engine, base.config, loraConfigOf(peft), peft.tensors, false)];
    const expected = await hidden(adapted);
    const plain = await hidden(await DecoderModel.create(engine, base.config, base.weights, { quantization: 'f32' }));
    const got = await hidden(await DecoderModel.create(engine, merged.config, merged.weights, { quantization: 'f32' }));
    expectClose(got, expected, { atol: 1e-4, rtol: 0 }, 'merged vs base + adapter');
    // The adapter changes the model by far more than the tolerance, so a merge that dropped it would fail.
    expect(Math.max(...plain.map((v, i) => Math.abs(v - expected[i])))).toBeGreaterThan(1e-2);
  });
});
