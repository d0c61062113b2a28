/**
 * Merged decoder folders on the host: W + scale·B·A in the written weights, sharding with an index
 * that openDecoderModel reads back, and a bitsandbytes 4-bit base dequantised before the merge
 * (unquantised f32 out, quantization_config dropped).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readDecoderAdapterDir } from '../../src/cli/decoder.ts';
import { nf4DequantizeRef, nf4QuantizeRef } from '../../src/engine/ops/nf4.ref.ts';
import { openDecoderModel } from '../../src/model/decoder-checkpoint.ts';
import { type DecoderMergeAdapter, mergedDecoderFolder } from '../../src/model/decoder-merge.ts';
import { fileMapSource } from '../../src/model/file-source.ts';
import { localDirSource } from '../../src/model/node-files.ts';
import { loraConfigOf } from '../../src/model/peft-files.ts';
import { type RawTensor, parseSafetensors, writeRawSafetensors } from '../../src/model/safetensors.ts';
import { bnbTensors, f32Tensor } from '../helpers/bnb-checkpoint.ts';
import { FIXTURES, readSafetensorsFile } from '../helpers/fixtures.ts';

const fixture = join(FIXTURES, 'decoder', 'check_grads', 'llama');
const Q = 'model.layers.1.self_attn.q_proj';

async function fixtureAdapter(config: Parameters<typeof readDecoderAdapterDir>[1]): Promise<DecoderMergeAdapter> {
  const peft = await readDecoderAdapterDir(join(fixture, 'adapter'), config);
  return { config: loraConfigOf(peft), tensors: peft.tensors, source: 'adapter' };
}

/** W[o, i] + scale·Σ_k B[o, k]·A[k, i], in float64. */
function mergedValue(w: ArrayLike<number>, adapter: DecoderMergeAdapter, module: string, o: number, i: number): number {
  const a = adapter.tensors.get(`${module}.lora_A`)!;
  const b = adapter.tensors.get(`${module}.lora_B`)!;
  const [r, inFeatures] = a.shape;
  let sum = 0;
  for (let k = 0; k < r; k++) sum += b.data[o * r + k] * a.data[k * inFeatures + i];
  return w[o * inFeatures + i] + (adapter.config.alpha / adapter.config.r) * sum;
}

const blobs = (files: Record<string, string | Uint8Array>) => new Map(Object.entries(files).map(([name, content]) => [name, new Blob([content as BlobPart])]));

describe('merged decoder folders', () => {
  it('hold W + scale·B·A, sharded with an index that reads back as the one-file folder', async () => {
    const base = await openDecoderModel(localDirSource(join(fixture, 'model')));
    const adapter = await fixtureAdapter(base.config);
    const progress: number[][] = [];
    const whole = await mergedDecoderFolder(base, [adapter], undefined, (done, total) => progress.push([done, total]));
    // Each layer read, then each of the 7 linears per layer folded.
    const total = base.config.numHiddenLayers * 8;
    expect(progress).toEqual(Array.from({ length: total }, (_, k) => [k + 1, total]));
    expect(Object.keys(whole).sort()).toEqual(['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']);
    const weights = parseSafetensors(whole['model.safetensors'] as Uint8Array).tensors;
    const w = readSafetensorsFile(join(fixture, 'model', 'model.safetensors')).get(`${Q}.weight`)!.data;
    for (const [o, i] of [[0, 0], [5, 17], [23, 23]]) expect(weights.get(`${Q}.weight`)!.data[o * 24 + i]).toBeCloseTo(mergedValue(w, adapter, Q, o, i), 6);

    const sharded = await mergedDecoderFolder(base, [adapter], 40_000);
    const shards = Object.keys(sharded).filter((n) => n.endsWith('.safetensors'));
    expect(shards.length).toBeGreaterThan(2);
    expect(shards[0]).toBe(`model-00001-of-${String(shards.length).padStart(5, '0')}.safetensors`);
    const index = JSON.parse(sharded['model.safetensors.index.json'] as string);
    expect(index.metadata.total_size).toBe([...weights.values()].reduce((n, t) => n + t.data.length * 4, 0));
    const reread = await openDecoderModel(fileMapSource(blobs(sharded)));
    const layer = await reread.weights.readLayer(1);
    const q = layer.get(`${Q}.weight`)!;
    expect(q.format === 'f32' && [...q.tensor.data]).toEqual([...weights.get(`${Q}.weight`)!.data]);
    expect((await reread.weights.readGlobals()).size).toBe(3);
  });

  it('dequantise a bitsandbytes 4-bit base, then merge: f32 out, no quantization_config', async () => {
    const configJson = JSON.parse(readFileSync(join(fixture, 'model', 'config.json'), 'utf8'));
    configJson.quantization_config = { quant_method: 'bitsandbytes', load_in_4bit: true, bnb_4bit_quant_type: 'nf4', bnb_4bit_use_double_quant: false };
    const stored = readSafetensorsFile(join(fixture, 'model', 'model.safetensors'));
    const tensors = new Map<string, RawTensor>();
    for (const [name, t] of stored) {
      if (/layers\.\d+\.(self_attn|mlp)\..+_proj\.weight$/.test(name)) for (const [k, v] of bnbTensors(name, t.shape[0], t.shape[1], nf4QuantizeRef(t.data))) tensors.set(k, v);
      else tensors.set(name, f32Tensor(Float32Array.from(t.data), t.shape));
    }
    const files = new Map<string, Blob>([
      ['config.json', new Blob([JSON.stringify(configJson)])],
      ['model.safetensors', new Blob([writeRawSafetensors(tensors)])],
      ...['tokenizer.json', 'tokenizer_config.json'].map((n) => [n, new Blob([readFileSync(join(fixture, 'model', n))])] as [string, Blob]),
    ]);
    const base = await openDecoderModel(fileMapSource(files));
    expect(base.config.quantization).not.toBeNull();
    const adapter = await fixtureAdapter(base.config);
    const merged = await mergedDecoderFolder(base, [adapter]);
    expect(JSON.parse(merged['config.json'] as string).quantization_config).toBeUndefined();
    const weights = parseSafetensors(merged['model.safetensors'] as Uint8Array).tensors;
    const dequantised = nf4DequantizeRef(nf4QuantizeRef(stored.get(`${Q}.weight`)!.data));
    for (const [o, i] of [[0, 0], [7, 3], [23, 20]]) expect(weights.get(`${Q}.weight`)!.data[o * 24 + i]).toBeCloseTo(mergedValue(dequantised, adapter, Q, o, i), 6);
    expect(weights.get(`${Q}.weight`)!.shape).toEqual([24, 24]);
    expect(weights.has(`${Q}.weight.absmax`)).toBe(false);
  });
});
