/**
 * Decoder checkpoints layer by layer: canonical names and shapes per family, bf16 shards read by
 * byte range (never a whole shard) or, without ranges, one shard at a time; Phi-3's fused weights cut
 * into their parts, bitsandbytes 4-bit weights as NF4, and a checkpoint that does not fit the config
 * refused with the names that are missing or unexpected.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { nf4QuantizeRef } from '../../src/engine/ops/nf4.ref.ts';
import { Rng } from '../../src/engine/rng.ts';
import { openDecoderModel } from '../../src/model/decoder-checkpoint.ts';
import { type DecoderConfig, parseDecoderConfig } from '../../src/model/decoder-config.ts';
import { type DecoderTensor, allLinearTargets, decoderGlobalShapes, decoderLayerShapes, openDecoderWeights } from '../../src/model/decoder-weights.ts';
import { type ModelFileSource, fileMapSource } from '../../src/model/file-source.ts';
import { localDirSource } from '../../src/model/node-files.ts';
import { type RawTensor, writeRawSafetensors } from '../../src/model/safetensors.ts';
import { bnbTensors, f32Tensor } from '../helpers/bnb-checkpoint.ts';
import { byteLevelTokenizer } from '../helpers/decoder-tokenizers.ts';
import { tempDir } from '../helpers/temp-dir.ts';

const sizes = { vocab_size: 40, hidden_size: 64, intermediate_size: 96, num_hidden_layers: 3, num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 128 };

/** Random weights as bf16 (their f32 values are exactly the bf16 ones). */
function bf16Weights(shapes: Map<string, number[]>, seed: number): { raw: Map<string, RawTensor>; values: Map<string, Float32Array> } {
  const rng = new Rng(seed);
  const raw = new Map<string, RawTensor>();
  const values = new Map<string, Float32Array>();
  for (const [name, shape] of shapes) {
    const f32 = Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.normal());
    const bits = new Uint32Array(f32.buffer);
    const halves = Uint16Array.from(bits, (b) => b >>> 16);
    for (let i = 0; i < bits.length; i++) bits[i] = halves[i] << 16;
    raw.set(name, { dtype: 'BF16', shape, bytes: new Uint8Array(halves.buffer) });
    values.set(name, f32);
  }
  return { raw, values };
}

const allShapes = (config: DecoderConfig) =>
  new Map([...decoderGlobalShapes(config), ...Array.from({ length: config.numHiddenLayers }, (_, l) => [...decoderLayerShapes(config, l)]).flat()]);

/** Files of a checkpoint: one model.safetensors, or `shards` shards and their index. */
function checkpointFiles(tensors: Map<string, RawTensor>, shards = 1): Map<string, Blob> {
  if (shards === 1) return new Map([['model.safetensors', new Blob([writeRawSafetensors(tensors)])]]);
  const names = [...tensors.keys()];
  const files = new Map<string, Blob>();
  const weightMap: Record<string, string> = {};
  for (let s = 0; s < shards; s++) {
    const file = `model-0000${s + 1}-of-0000${shards}.safetensors`;
    const part = names.filter((_, k) => Math.floor((k * shards) / names.length) === s);
    for (const name of part) weightMap[name] = file;
    files.set(file, new Blob([writeRawSafetensors(new Map(part.map((n) => [n, tensors.get(n) as RawTensor])))]));
  }
  files.set('model.safetensors.index.json', new Blob([JSON.stringify({ metadata: {}, weight_map: weightMap })]));
  return files;
}

/** A source over `files` that records the largest read, with or without byte ranges. */
function recordingSource(files: Map<string, Blob>, withRanges: boolean): { source: ModelFileSource; largest: () => number; wholeReads: string[] } {
  const inner = fileMapSource(files);
  let largest = 0;
  const wholeReads: string[] = [];
  const source: ModelFileSource = {
    kind: 'local',
    id: 'test-model',
    async read(path) {
      wholeReads.push(path);
      return inner.read(path);
    },
    ...(withRanges && inner.ranges
      ? {
          ranges: {
            size: inner.ranges.size,
            async read(path: string, begin: number, end: number) {
              largest = Math.max(largest, end - begin);
              return (inner.ranges as NonNullable<ModelFileSource['ranges']>).read(path, begin, end);
            },
          },
        }
      : {}),
  };
  return { source, largest: () => largest, wholeReads };
}

const f32Of = (t: DecoderTensor | undefined) => {
  if (t?.format !== 'f32') throw new Error('expected an f32 tensor');
  return t.tensor;
};

describe('decoder weights', () => {
  it('canonical names and shapes: GQA, Qwen2 biases, Qwen3 norms and head_dim, tied head; PEFT targets', () => {
    const qwen3 = parseDecoderConfig({ ...sizes, model_type: 'qwen3', head_dim: 32, tie_word_embeddings: true });
    const layer = decoderLayerShapes(qwen3, 1);
    expect(layer.get('model.layers.1.self_attn.q_proj.weight')).toEqual([128, 64]);
    expect(layer.get('model.layers.1.self_attn.k_proj.weight')).toEqual([64, 64]);
    expect(layer.get('model.layers.1.self_attn.o_proj.weight')).toEqual([64, 128]);
    expect(layer.get('model.layers.1.self_attn.q_norm.weight')).toEqual([32]);
    expect(layer.has('model.layers.1.self_attn.q_proj.bias')).toBe(false);
    expect([...decoderGlobalShapes(qwen3).keys()]).toEqual(['model.embed_tokens.weight', 'model.norm.weight']);
    const qwen2 = decoderLayerShapes(parseDecoderConfig({ ...sizes, model_type: 'qwen2' }), 0);
    expect(['q', 'k', 'v', 'o'].map((p) => qwen2.get(`model.layers.0.self_attn.${p}_proj.bias`))).toEqual([[64], [32], [32], undefined]);
    expect(allLinearTargets(qwen3)).toEqual(['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj']);
    expect(allLinearTargets(parseDecoderConfig({ ...sizes, model_type: 'phi3' }))).toEqual(['qkv_proj', 'o_proj', 'gate_up_proj', 'down_proj']);
  });

  for (const withRanges of [true, false]) {
    it(`bf16 in 3 shards, ${withRanges ? 'by byte range: no read holds more than one tensor' : 'without byte ranges: one shard at a time'}`, async () => {
      const config = parseDecoderConfig({ ...sizes, model_type: 'llama' });
      const { raw, values } = bf16Weights(allShapes(config), 1);
      raw.set('model.layers.0.self_attn.rotary_emb.inv_freq', f32Tensor(new Float32Array(8)));
      const files = checkpointFiles(raw, 3);
      const { source, largest, wholeReads } = recordingSource(files, withRanges);
      const reader = await openDecoderWeights(source, config);
      const globals = await reader.readGlobals();
      expect([...globals.keys()]).toEqual(['model.embed_tokens.weight', 'model.norm.weight', 'lm_head.weight']);
      expect(f32Of(globals.get('lm_head.weight')).data).toEqual(values.get('lm_head.weight'));
      const seen: number[] = [];
      for await (const { layer, tensors } of reader.layers()) {
        seen.push(layer);
        expect([...tensors.keys()]).toEqual([...decoderLayerShapes(config, layer).keys()]);
        for (const [name, t] of tensors) expect(f32Of(t).data, name).toEqual(values.get(name));
      }
      expect(seen).toEqual([0, 1, 2]);
      const largestTensorBytes = 96 * 64 * 2; // an MLP weight in bf16
      if (withRanges) {
        expect(largest()).toBe(largestTensorBytes);
        expect(wholeReads).toEqual(['model.safetensors.index.json']);
      } else {
        // Layers lie in order across the shards, so each shard is read once.
        expect(wholeReads.filter((f) => f.endsWith('.safetensors')).sort()).toEqual([...files.keys()].filter((f) => f.endsWith('.safetensors')).sort());
      }
    });
  }

  it('a folder on disk (the CLI) is read by byte range', async () => {
    const config = parseDecoderConfig({ ...sizes, model_type: 'mistral', sliding_window: 64 });
    const { raw, values } = bf16Weights(allShapes(config), 8);
    const dir = tempDir('decoder-weights-');
    for (const [name, blob] of checkpointFiles(raw, 2)) writeFileSync(join(dir, name), new Uint8Array(await blob.arrayBuffer()));
    const source = localDirSource(dir);
    expect(await source.ranges?.size('absent.safetensors')).toBeNull();
    await expect(source.ranges?.read('model-00001-of-00002.safetensors', 0, 1e9)).rejects.toThrow(/bytes \[0, 1000000000\) run past its end/);
    const layer = await (await openDecoderWeights(source, config)).readLayer(2);
    for (const [name, t] of layer) expect(f32Of(t).data, name).toEqual(values.get(name));
  });

  it("Phi-3: qkv_proj and gate_up_proj are cut into q, k, v and gate, up", async () => {
    const config = parseDecoderConfig({ ...sizes, model_type: 'phi3' });
    const shapes = allShapes(config);
    const { values } = bf16Weights(shapes, 2);
    const fileShapes = new Map<string, number[]>();
    for (const [name, shape] of shapes) {
      if (/\.(k_proj|v_proj|up_proj)\.weight$/.test(name)) continue;
      fileShapes.set(name.replace('q_proj', 'qkv_proj').replace('gate_proj', 'gate_up_proj'), name.endsWith('q_proj.weight') ? [64 + 32 + 32, 64] : name.endsWith('gate_proj.weight') ? [192, 64] : shape);
    }
    const { raw, values: fileValues } = bf16Weights(fileShapes, 3);
    const reader = await openDecoderWeights(fileMapSource(checkpointFiles(raw)), config);
    const layer = await reader.readLayer(1);
    const fused = (name: string) => fileValues.get(`model.layers.1.${name}.weight`) as Float32Array;
    expect(f32Of(layer.get('model.layers.1.self_attn.q_proj.weight')).data).toEqual(fused('self_attn.qkv_proj').slice(0, 64 * 64));
    expect(f32Of(layer.get('model.layers.1.self_attn.k_proj.weight')).data).toEqual(fused('self_attn.qkv_proj').slice(64 * 64, 96 * 64));
    expect(f32Of(layer.get('model.layers.1.self_attn.v_proj.weight'))).toEqual({ shape: [32, 64], data: fused('self_attn.qkv_proj').slice(96 * 64) });
    expect(f32Of(layer.get('model.layers.1.mlp.gate_proj.weight')).data).toEqual(fused('mlp.gate_up_proj').slice(0, 96 * 64));
    expect(f32Of(layer.get('model.layers.1.mlp.up_proj.weight')).data).toEqual(fused('mlp.gate_up_proj').slice(96 * 64));
    expect(values.size).toBeGreaterThan(0);
  });

  it('bitsandbytes 4-bit: Linear weights come as NF4 (a fused one cut on block boundaries), the rest as f32', async () => {
    const bnb = { quant_method: 'bitsandbytes', load_in_4bit: true, bnb_4bit_quant_type: 'nf4', bnb_4bit_use_double_quant: false };
    const config = parseDecoderConfig({ ...sizes, model_type: 'phi3', quantization_config: bnb });
    const rng = new Rng(5);
    const tensors = new Map<string, RawTensor>();
    const parts = new Map<string, Float32Array>();
    for (const [name, shape] of allShapes(config)) {
      if (/\.(k_proj|v_proj|up_proj)\.weight$/.test(name)) continue;
      const fusedRows = name.endsWith('q_proj.weight') ? [64, 32, 32] : name.endsWith('gate_proj.weight') ? [96, 96] : null;
      const rows = fusedRows ? fusedRows.reduce((a, b) => a + b) : shape[0];
      const w = Float32Array.from({ length: rows * (shape[1] ?? 1) }, () => rng.normal() * 0.02);
      const fileName = name.replace('q_proj', 'qkv_proj').replace('gate_proj', 'gate_up_proj');
      if (shape.length === 2 && name.includes('layers')) {
        for (const [k, v] of bnbTensors(fileName, rows, shape[1], nf4QuantizeRef(w))) tensors.set(k, v);
        parts.set(fileName, w);
      } else {
        tensors.set(fileName, f32Tensor(w, shape));
      }
    }
    const reader = await openDecoderWeights(fileMapSource(checkpointFiles(tensors)), config);
    const layer = await reader.readLayer(2);
    const k = layer.get('model.layers.2.self_attn.k_proj.weight');
    expect(k?.format).toBe('nf4');
    const qkv = parts.get('model.layers.2.self_attn.qkv_proj.weight') as Float32Array;
    expect(k?.format === 'nf4' && k.nf4).toEqual(nf4QuantizeRef(qkv.slice(64 * 64, 96 * 64)));
    const down = layer.get('model.layers.2.mlp.down_proj.weight');
    expect(down?.format === 'nf4' && down.shape).toEqual([64, 96]);
    expect(layer.get('model.layers.2.input_layernorm.weight')?.format).toBe('f32');
  });

  it('a double-quantised fused weight not cut on a 16384-element boundary is refused', async () => {
    const bnb = { quant_method: 'bitsandbytes', load_in_4bit: true, bnb_4bit_quant_type: 'nf4', bnb_4bit_use_double_quant: true };
    const config = parseDecoderConfig({ ...sizes, num_hidden_layers: 1, model_type: 'phi3', quantization_config: bnb });
    const tensors = new Map<string, RawTensor>();
    for (const [name, shape] of allShapes(config)) {
      if (/\.(k_proj|v_proj|up_proj)\.weight$/.test(name)) continue;
      const rows = name.endsWith('q_proj.weight') ? 128 : name.endsWith('gate_proj.weight') ? 192 : shape[0];
      const fileName = name.replace('q_proj', 'qkv_proj').replace('gate_proj', 'gate_up_proj');
      const w = new Float32Array(rows * (shape[1] ?? 1)).fill(0.5);
      if (shape.length === 2 && name.includes('layers')) for (const [k, v] of bnbTensors(fileName, rows, shape[1], nf4QuantizeRef(w, { doubleQuant: true }))) tensors.set(k, v);
      else tensors.set(fileName, f32Tensor(w, shape));
    }
    const reader = await openDecoderWeights(fileMapSource(checkpointFiles(tensors)), config, 'tiny-phi3');
    await expect(reader.readLayer(0)).rejects.toThrow(/tiny-phi3: model.layers.0.self_attn.qkv_proj.weight: rows \[0, 64\) .* 16384-element quantisation block/);
  });

  it('a checkpoint that does not fit the config: missing and unexpected names, before any weight is read', async () => {
    const config = parseDecoderConfig({ ...sizes, model_type: 'qwen2' });
    const { raw } = bf16Weights(allShapes(parseDecoderConfig({ ...sizes, model_type: 'llama' })), 4);
    raw.set('model.layers.0.mlp.extra.weight', f32Tensor(new Float32Array(2)));
    const promise = openDecoderWeights(fileMapSource(checkpointFiles(raw, 2)), config, 'tiny');
    await expect(promise).rejects.toThrow(/tiny: checkpoint does not match a qwen2 decoder .*\nmissing \(9\): model.layers.0.self_attn.q_proj.bias \[64\], .*\nunexpected \(1\): model.layers.0.mlp.extra.weight/);
    const wrongShape = bf16Weights(allShapes(parseDecoderConfig({ ...sizes, model_type: 'llama', num_key_value_heads: 4 })), 4).raw;
    const reader = await openDecoderWeights(fileMapSource(checkpointFiles(wrongShape)), parseDecoderConfig({ ...sizes, model_type: 'llama' }), 'tiny');
    await expect(reader.readLayer(0)).rejects.toThrow('tiny: model.layers.0.self_attn.k_proj.weight has shape [64, 64], the config needs [32, 64] for model.layers.0.self_attn.k_proj.weight');
  });
});

describe('openDecoderModel', () => {
  it('a folder: config, tokenizer with its chat template, and the weight reader', async () => {
    const json = { ...sizes, vocab_size: 300, model_type: 'llama', tie_word_embeddings: true };
    const config = parseDecoderConfig(json);
    const { raw, values } = bf16Weights(allShapes(config), 6);
    const tok = byteLevelTokenizer({ bosTemplate: true });
    const files = checkpointFiles(raw);
    files.set('config.json', new Blob([JSON.stringify(json)]));
    files.set('tokenizer.json', new Blob([tok.tokenizerJson]));
    files.set('tokenizer_config.json', new Blob([tok.tokenizerConfig()]));
    const model = await openDecoderModel(fileMapSource(files, 'tiny-llama'));
    expect(model.config.tieWordEmbeddings).toBe(true);
    expect(model.tokenizer.prefixIds).toEqual([263]);
    expect([...model.tokenizerFiles.keys()]).toEqual(['tokenizer.json', 'tokenizer_config.json']);
    const globals = await model.weights.readGlobals();
    expect(f32Of(globals.get('model.embed_tokens.weight')).data).toEqual(values.get('model.embed_tokens.weight'));

    files.set('config.json', new Blob([JSON.stringify({ ...json, vocab_size: 200 })]));
    await expect(openDecoderModel(fileMapSource(files, 'tiny-llama'))).rejects.toThrow('tiny-llama: the tokenizer has 268 tokens but config.json says vocab_size 200');
    files.delete('tokenizer.json');
    await expect(openDecoderModel(fileMapSource(files, 'tiny-llama'))).rejects.toThrow('tiny-llama has no tokenizer.json');
  });
});
