/**
 * Decoder weights: the canonical names (LlamaForCausalLM's, for every family), the PEFT target
 * modules, and a reader that hands out one layer at a time, so that a caller quantising each layer to
 * NF4 and dropping the f32 holds little more than the NF4 model.
 *
 * Checkpoints are safetensors (bf16, f16 or f32; one file or shards listed in
 * model.safetensors.index.json), read tensor by tensor where the source reads byte ranges, else one
 * shard at a time. bitsandbytes 4-bit checkpoints give their Linear weights as NF4 as they are
 * (bnb4bit.ts). Phi-3's fused qkv_proj and gate_up_proj are cut into their canonical parts here.
 */
import { ABSMAX_BLOCK, NF4_BLOCK, type Nf4Host, dequantizeAbsmaxRef } from '../engine/ops/nf4.ref.ts';
import { bnbNf4Weight, bnbStateNames, isBnbWeight } from './bnb4bit.ts';
import type { DecoderConfig } from './decoder-config.ts';
import { decodeToFloat32 } from './dtypes.ts';
import type { ModelFileSource } from './file-source.ts';
import { type RawTensor, type SafetensorsEntry, readSafetensorsHeader, safetensorsHeaderLength } from './safetensors.ts';
import { type HostTensor, shapeSize } from './state-dict.ts';

/** The Linear modules of a decoder layer, by their path under the layer. */
export const DECODER_LINEARS = [
  'self_attn.q_proj',
  'self_attn.k_proj',
  'self_attn.v_proj',
  'self_attn.o_proj',
  'mlp.gate_proj',
  'mlp.up_proj',
  'mlp.down_proj',
] as const;
export type DecoderLinear = (typeof DECODER_LINEARS)[number];

/** Phi-3's fused modules and the canonical parts they hold, in row order. */
export const FUSED: Record<string, DecoderLinear[]> = {
  'self_attn.qkv_proj': ['self_attn.q_proj', 'self_attn.k_proj', 'self_attn.v_proj'],
  'mlp.gate_up_proj': ['mlp.gate_proj', 'mlp.up_proj'],
};

export const layerPrefix = (layer: number) => `model.layers.${layer}.`;

/**
 * PEFT target_modules for LoRA on every linear layer (the studies' choice), in the family's own
 * module names: PEFT matches them against the checkpoint's modules, which for Phi-3 are the fused ones.
 */
export function allLinearTargets(config: DecoderConfig): string[] {
  const names = config.fusedProjections ? ['self_attn.qkv_proj', 'self_attn.o_proj', 'mlp.gate_up_proj', 'mlp.down_proj'] : [...DECODER_LINEARS];
  return names.map((n) => n.slice(n.indexOf('.') + 1));
}

/** The canonical tensors of layer `layer`, with their shapes. */
export function decoderLayerShapes(config: DecoderConfig, layer: number): Map<string, number[]> {
  const { hiddenSize: h, intermediateSize: i, headDim: d } = config;
  const q = config.numAttentionHeads * d;
  const kv = config.numKeyValueHeads * d;
  const p = layerPrefix(layer);
  const shapes = new Map<string, number[]>([[`${p}input_layernorm.weight`, [h]]]);
  const linear: Record<DecoderLinear, [number, number]> = {
    'self_attn.q_proj': [q, h],
    'self_attn.k_proj': [kv, h],
    'self_attn.v_proj': [kv, h],
    'self_attn.o_proj': [h, q],
    'mlp.gate_proj': [i, h],
    'mlp.up_proj': [i, h],
    'mlp.down_proj': [h, i],
  };
  for (const name of DECODER_LINEARS.slice(0, 4)) shapes.set(`${p}${name}.weight`, linear[name]);
  if (config.qkvBias) for (const name of DECODER_LINEARS.slice(0, 3)) shapes.set(`${p}${name}.bias`, [linear[name][0]]);
  if (config.outputBias) shapes.set(`${p}self_attn.o_proj.bias`, [h]);
  if (config.qkNorm) {
    shapes.set(`${p}self_attn.q_norm.weight`, [d]);
    shapes.set(`${p}self_attn.k_norm.weight`, [d]);
  }
  shapes.set(`${p}post_attention_layernorm.weight`, [h]);
  for (const name of DECODER_LINEARS.slice(4)) shapes.set(`${p}${name}.weight`, linear[name]);
  return shapes;
}

/** The canonical tensors outside the layers: embeddings, final norm and (untied) LM head. */
export function decoderGlobalShapes(config: DecoderConfig): Map<string, number[]> {
  const { vocabSize: v, hiddenSize: h } = config;
  const shapes = new Map<string, number[]>([
    ['model.embed_tokens.weight', [v, h]],
    ['model.norm.weight', [h]],
  ]);
  if (!config.tieWordEmbeddings) shapes.set('lm_head.weight', [v, h]);
  return shapes;
}

/** A weight as read: f32, or NF4 as a bitsandbytes checkpoint stored it. */
export type DecoderTensor = { format: 'f32'; tensor: HostTensor } | { format: 'nf4'; shape: [number, number]; nf4: Nf4Host };

/** Where the file holds a canonical tensor: under its own name, or rows [begin, end) of a fused one. */
interface Placement {
  file: string;
  rows?: [number, number];
}

function placements(config: DecoderConfig, shapes: Map<string, number[]>): Map<string, Placement> {
  const out = new Map<string, Placement>();
  for (const name of shapes.keys()) out.set(name, { file: name });
  if (!config.fusedProjections) return out;
  for (const [fused, parts] of Object.entries(FUSED)) {
    for (const [name] of shapes) {
      const match = parts.find((part) => name.endsWith(`.${part}.weight`));
      if (!match) continue;
      const prefix = name.slice(0, name.length - `${match}.weight`.length);
      let begin = 0;
      for (const part of parts) {
        const rows = (shapes.get(`${prefix}${part}.weight`) as number[])[0];
        if (part === match) out.set(name, { file: `${prefix}${fused}.weight`, rows: [begin, begin + rows] });
        begin += rows;
      }
    }
  }
  return out;
}

/** Tensors checkpoints carry that the model does not use: rotary tables some older Llama files saved. */
const IGNORED = /\.rotary_emb\.inv_freq$/;

/** One safetensors file, opened by its header; tensors are read when asked for. */
interface Shard {
  entries: Map<string, SafetensorsEntry>;
  bytes(entry: SafetensorsEntry): Promise<Uint8Array>;
}

async function openShard(source: ModelFileSource, file: string, where: string): Promise<Shard> {
  const label = `${where}/${file}`;
  const ranges = source.ranges;
  const size = ranges ? await ranges.size(file) : null;
  if (ranges && size !== null) {
    const first = await ranges.read(file, 0, Math.min(8, size));
    const headerEnd = size < 8 ? size : Math.min(size, 8 + safetensorsHeaderLength(first));
    const { entries, dataStart } = readSafetensorsHeader(await ranges.read(file, 0, headerEnd), label, size);
    return { entries: new Map(entries.map((e) => [e.name, e])), bytes: (e) => ranges.read(file, dataStart + e.begin, dataStart + e.end) };
  }
  const whole = await source.read(file);
  if (!whole) throw new Error(`${where} has no ${file}`);
  const { entries, dataStart } = readSafetensorsHeader(whole, label);
  return { entries: new Map(entries.map((e) => [e.name, e])), bytes: async (e) => whole.subarray(dataStart + e.begin, dataStart + e.end) };
}

export interface DecoderWeightReader {
  /** Embeddings, final norm and the untied LM head, by canonical name. */
  readGlobals(): Promise<Map<string, DecoderTensor>>;
  /** Layer `layer`'s tensors, by canonical name (Phi-3's fused weights already cut). */
  readLayer(layer: number): Promise<Map<string, DecoderTensor>>;
  /** Every layer in order, one at a time. */
  layers(): AsyncGenerator<{ layer: number; tensors: Map<string, DecoderTensor> }>;
}

const fmt = (shape: readonly number[]) => `[${shape.join(', ')}]`;

/**
 * Open a decoder checkpoint: the weight map is read and checked against the config (every tensor
 * present, nothing unknown) before any weight is read. Without byte ranges, one shard is held at a time.
 */
export async function openDecoderWeights(source: ModelFileSource, config: DecoderConfig, where = source.id): Promise<DecoderWeightReader> {
  const fileOf = new Map<string, string>();
  const indexBytes = await source.read('model.safetensors.index.json');
  let held: { file: string; shard: Shard } | null = null;
  const shard = async (file: string) => {
    if (held?.file !== file) held = { file, shard: await openShard(source, file, where) };
    return held.shard;
  };
  if (indexBytes) {
    for (const [name, file] of Object.entries(readWeightMap(indexBytes, where))) fileOf.set(name, file);
  } else {
    for (const name of (await shard('model.safetensors')).entries.keys()) fileOf.set(name, 'model.safetensors');
  }
  const has = (name: string) => fileOf.has(name);

  const layerShapes = Array.from({ length: config.numHiddenLayers }, (_, layer) => decoderLayerShapes(config, layer));
  const globalShapes = decoderGlobalShapes(config);
  const all = new Map([...globalShapes, ...layerShapes.flatMap((m) => [...m])]);
  const placed = placements(config, all);
  const used = new Set<string>();
  const missing = new Set<string>();
  for (const [name, place] of placed) {
    if (!has(place.file)) missing.add(`${place.file} ${place.rows ? '' : fmt(all.get(name) as number[])}`.trim());
    used.add(place.file);
    if (isBnbWeight(place.file, has)) for (const state of bnbStateNames(place.file, has)) used.add(state);
  }
  const unexpected = [...fileOf.keys()].filter((name) => !used.has(name) && !IGNORED.test(name) && !(config.tieWordEmbeddings && name === 'lm_head.weight'));
  if (missing.size > 0 || unexpected.length > 0) {
    const list = (what: string, items: string[]) => (items.length > 0 ? [`${what} (${items.length}): ${items.slice(0, 20).join(', ')}${items.length > 20 ? ', …' : ''}`] : []);
    const dims = `hidden ${config.hiddenSize}, ${config.numHiddenLayers} layers, ${config.numAttentionHeads} heads of ${config.headDim}, ${config.numKeyValueHeads} kv heads, vocab ${config.vocabSize}`;
    throw new Error(`${where}: checkpoint does not match a ${config.family} decoder with this config (${dims}):\n${[...list('missing', [...missing]), ...list('unexpected', unexpected)].join('\n')}`);
  }

  const raw = async (name: string): Promise<RawTensor> => {
    const file = fileOf.get(name) as string;
    const s = await shard(file);
    const entry = s.entries.get(name);
    if (!entry) throw new Error(`${where}: model.safetensors.index.json puts ${name} in ${file}, which does not hold it`);
    return { dtype: entry.dtype, shape: entry.shape, bytes: await s.bytes(entry) };
  };

  const readFileTensor = async (fileName: string): Promise<DecoderTensor> => {
    if (isBnbWeight(fileName, has)) {
      const parts = new Map<string, RawTensor>([[fileName, await raw(fileName)]]);
      for (const state of bnbStateNames(fileName, has)) parts.set(state, await raw(state));
      const { shape, host } = bnbNf4Weight(fileName, (n) => parts.get(n));
      return { format: 'nf4', shape, nf4: host };
    }
    const t = await raw(fileName);
    if (t.dtype !== 'F32' && t.dtype !== 'F16' && t.dtype !== 'BF16') throw new Error(`${where}: ${fileName} is ${t.dtype}; weights must be F32, F16 or BF16`);
    return { format: 'f32', tensor: { shape: [...t.shape], data: decodeToFloat32(t.dtype, t.bytes, shapeSize(t.shape)) } };
  };

  const read = async (shapes: Map<string, number[]>): Promise<Map<string, DecoderTensor>> => {
    const out = new Map<string, DecoderTensor>();
    const fused = new Map<string, DecoderTensor>();
    for (const [name, shape] of shapes) {
      const place = placed.get(name) as Placement;
      let tensor: DecoderTensor;
      if (place.rows) {
        if (!fused.has(place.file)) fused.set(place.file, await readFileTensor(place.file));
        tensor = sliceRows(fused.get(place.file) as DecoderTensor, place.rows, `${where}: ${place.file}`);
      } else {
        tensor = await readFileTensor(place.file);
      }
      const got = tensor.format === 'f32' ? tensor.tensor.shape : tensor.shape;
      if (got.length !== shape.length || got.some((n, k) => n !== shape[k])) {
        throw new Error(`${where}: ${place.file}${place.rows ? ` rows [${place.rows.join(', ')})` : ''} has shape ${fmt(got)}, the config needs ${fmt(shape)} for ${name}`);
      }
      out.set(name, tensor);
    }
    return out;
  };

  return {
    readGlobals: () => read(globalShapes),
    readLayer(layer) {
      if (!Number.isInteger(layer) || layer < 0 || layer >= config.numHiddenLayers) throw new RangeError(`layer ${layer} is not one of the model's ${config.numHiddenLayers} layers`);
      return read(layerShapes[layer]);
    },
    async *layers() {
      for (let layer = 0; layer < config.numHiddenLayers; layer++) yield { layer, tensors: await read(layerShapes[layer]) };
    },
  };
}

function readWeightMap(bytes: Uint8Array, where: string): Record<string, string> {
  let index: { weight_map?: unknown };
  try {
    index = JSON.parse(new TextDecoder().decode(bytes));
  } catch (e) {
    throw new Error(`${where}/model.safetensors.index.json is not valid JSON (${(e as Error).message})`);
  }
  const map = index?.weight_map;
  if (typeof map !== 'object' || map === null || Array.isArray(map) || !Object.values(map).every((v) => typeof v === 'string')) {
    throw new Error(`${where}/model.safetensors.index.json: "weight_map" must map tensor names to shard file names`);
  }
  for (const file of new Set(Object.values(map as Record<string, string>))) {
    if (file.includes('/') || file.includes('\\') || file.startsWith('.')) throw new Error(`${where}/model.safetensors.index.json: shard name "${file}" must be a plain file name`);
  }
  return map as Record<string, string>;
}

/** Rows [begin, end) of a 2-D weight. NF4 is cut only on block boundaries, so every code and scale stays the file's. */
function sliceRows(t: DecoderTensor, [begin, end]: [number, number], label: string): DecoderTensor {
  if (t.format === 'f32') {
    const cols = t.tensor.shape[1];
    return { format: 'f32', tensor: { shape: [end - begin, cols], data: t.tensor.data.slice(begin * cols, end * cols) } };
  }
  const cols = t.shape[1];
  const q = t.nf4;
  const unit = q.doubleQuant ? NF4_BLOCK * ABSMAX_BLOCK : NF4_BLOCK;
  const [first, last] = [begin * cols, end * cols];
  if (first % unit !== 0 || (last % unit !== 0 && last !== q.numel)) {
    throw new Error(`${label}: rows [${begin}, ${end}) of this 4-bit weight do not start and end on a ${unit}-element quantisation block, so it cannot be split exactly`);
  }
  const [b0, b1] = [first / NF4_BLOCK, Math.ceil(last / NF4_BLOCK)];
  const packed = q.packed.slice(first / 2, Math.ceil(last / 2));
  if (!q.doubleQuant) return { format: 'nf4', shape: [end - begin, cols], nf4: { numel: last - first, packed, absmax: q.absmax.slice(b0, b1), doubleQuant: null } };
  const dq = q.doubleQuant;
  const doubleQuant = { codes: dq.codes.slice(b0, b1), absmaxScale: dq.absmaxScale.slice(b0 / ABSMAX_BLOCK, Math.ceil(b1 / ABSMAX_BLOCK)), offset: dq.offset };
  return { format: 'nf4', shape: [end - begin, cols], nf4: { numel: last - first, packed, absmax: dequantizeAbsmaxRef(doubleQuant), doubleQuant } };
}
