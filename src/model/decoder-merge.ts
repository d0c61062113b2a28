/**
 * Merged export for decoders: every adapter folded into the base weights on the host
 * (W' = W + scale·B·A per adapter in order, scale = alpha/r or alpha/√r with rsLoRA, accumulated in
 * float64 and rounded once), written as a plain Hugging Face folder that transformers and
 * openDecoderModel load without PEFT: config.json, model.safetensors (sharded with an index over
 * `shardBytes`) and the base's tokenizer files.
 *
 * Weights are written as f32 whatever the checkpoint held, so the merge is not rounded again. A
 * bitsandbytes 4-bit base is dequantised (NF4 code × absmax, as bitsandbytes does) and then merged:
 * the result is an unquantised model (quantization_config dropped), equal to the 4-bit base + LoRA
 * up to float32 rounding. An adapter trained over an NF4-quantised f32/bf16 base is merged into the
 * checkpoint's own weights, as PEFT's merge_and_unload does. Phi-3's parts go back into qkv_proj and
 * gate_up_proj. The whole model is held in memory as f32 while it is written.
 */
import { nf4DequantizeRef } from '../engine/ops/nf4.ref.ts';
import { checkDecoderAdapter } from './decoder-adapter-check.ts';
import type { DecoderModelFiles } from './decoder-checkpoint.ts';
import { decoderFileModules, decoderLinearModules } from './decoder-lora.ts';
import type { DecoderTensor } from './decoder-weights.ts';
import { type HostAdapterTensors, type LoraConfig, loraScale } from './lora.ts';
import { foldLora } from './merge.ts';
import { writeSafetensors } from './safetensors.ts';
import type { HostTensor } from './state-dict.ts';

export interface DecoderMergeAdapter {
  config: LoraConfig;
  tensors: HostAdapterTensors;
  /** Names the adapter in messages (its folder). */
  source: string;
}

/** Hugging Face's default max_shard_size is 5 GB; 2 GiB keeps each file well inside one JavaScript buffer. */
export const DEFAULT_SHARD_BYTES = 2 * 1024 ** 3;

/**
 * The merged model folder, file name → content. Every adapter is checked against the base before
 * anything is read. `onProgress` hears of each layer read and each module folded (the app shows it).
 */
export async function mergedDecoderFolder(
  files: DecoderModelFiles,
  adapters: DecoderMergeAdapter[],
  shardBytes = DEFAULT_SHARD_BYTES,
  onProgress?: (done: number, total: number) => void,
): Promise<Record<string, string | Uint8Array>> {
  const { config } = files;
  const modules = decoderLinearModules(config);
  const selected = adapters.map((a) => checkDecoderAdapter(config, modules, a, a.source));
  const total = config.numHiddenLayers + modules.length;
  let done = 0;
  const f32 = (t: DecoderTensor): HostTensor => (t.format === 'f32' ? t.tensor : { shape: [...t.shape], data: nf4DequantizeRef(t.nf4) });
  const weights = new Map<string, HostTensor>();
  for (const [name, t] of await files.weights.readGlobals()) weights.set(name, f32(t));
  for await (const { tensors } of files.weights.layers()) {
    for (const [name, t] of tensors) weights.set(name, f32(t));
    onProgress?.(++done, total);
  }

  // One module at a time, every adapter folded before rounding once: float64 is held for one weight only.
  for (const module of modules) {
    const folding = adapters.flatMap((adapter, k) => (selected[k].includes(module.name) ? [adapter] : []));
    if (folding.length > 0) {
      const key = `${module.name}.weight`;
      const w = weights.get(key) as HostTensor;
      const acc = Float64Array.from(w.data);
      for (const adapter of folding) foldLora(acc, adapter.tensors.get(`${module.name}.lora_A`) as HostTensor, adapter.tensors.get(`${module.name}.lora_B`) as HostTensor, loraScale(adapter.config));
      weights.set(key, { shape: [...w.shape], data: Float32Array.from(acc) });
    }
    onProgress?.(++done, total);
  }

  // Newer transformers write `dtype` where older ones wrote torch_dtype: both say what the file holds.
  const raw: Record<string, unknown> = { ...config.raw, torch_dtype: 'float32', ...('dtype' in config.raw ? { dtype: 'float32' } : {}) };
  delete raw.quantization_config;
  return {
    'config.json': `${JSON.stringify(raw, null, 2)}\n`,
    ...safetensorsShards(checkpointLayout(files, weights), shardBytes),
    ...Object.fromEntries(files.tokenizerFiles),
  };
}

/** Canonical weights → the checkpoint's names: Phi-3's parts stacked by rows into their fused module. */
function checkpointLayout(files: DecoderModelFiles, weights: Map<string, HostTensor>): Map<string, HostTensor> {
  for (const m of decoderFileModules(files.config)) {
    if (!m.parts) continue;
    const data = new Float32Array(m.out * m.in);
    for (const part of m.parts) {
      data.set((weights.get(`${part.name}.weight`) as HostTensor).data, part.rows[0] * m.in);
      weights.delete(`${part.name}.weight`);
    }
    weights.set(`${m.name}.weight`, { shape: [m.out, m.in], data });
  }
  return weights;
}

/** One model.safetensors, or model-0000k-of-0000n.safetensors files of at most `shardBytes` of data each and their index. */
function safetensorsShards(weights: Map<string, HostTensor>, shardBytes: number): Record<string, Uint8Array | string> {
  const shards: Map<string, HostTensor>[] = [new Map()];
  let size = 0;
  let total = 0;
  for (const [name, t] of weights) {
    const bytes = t.data.length * 4;
    if (size > 0 && size + bytes > shardBytes) {
      shards.push(new Map());
      size = 0;
    }
    shards[shards.length - 1].set(name, t);
    size += bytes;
    total += bytes;
  }
  if (shards.length === 1) return { 'model.safetensors': writeSafetensors(weights, { format: 'pt' }) };
  const pad = (n: number) => String(n).padStart(5, '0');
  const out: Record<string, Uint8Array | string> = {};
  const weightMap: Record<string, string> = {};
  shards.forEach((shard, k) => {
    const file = `model-${pad(k + 1)}-of-${pad(shards.length)}.safetensors`;
    out[file] = writeSafetensors(shard, { format: 'pt' });
    for (const name of shard.keys()) weightMap[name] = file;
  });
  out['model.safetensors.index.json'] = `${JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }, null, 2)}\n`;
  return out;
}
