/**
 * Whether a decoder LLM on the Hub can be trained here, decided before any weight is downloaded:
 * from its config.json and the repository's file list (names and sizes, as the Hub's revision API
 * gives them) come the download size of the files the app would fetch, the family, the automatic
 * memory plan for the app's decoder training settings (decoder-memory.ts) and a verdict against the
 * device's limits and the user's memory budget. A model that does not fit says why, and what would:
 * the longest shorter sequence that fits, or the largest preset that does.
 */
import type { StoragePrecision } from '../engine/stored.ts';
import { TOKENIZER_EXTRAS } from './decoder-checkpoint.ts';
import { type DecoderConfig, SUPPORTED_DECODER_TYPES, decoderFamilyOf, parseDecoderConfig } from './decoder-config.ts';
import { type DecoderMemoryPlan, describeDecoderPlan, planDecoderTraining } from './decoder-memory.ts';
import { DECODER_LINEARS } from './decoder-weights.ts';
import type { LoraConfig } from './lora.ts';
import { bufferLimitProblems, formatBytes } from './memory.ts';

/** What a decoder training step holds: sequences per optimizer step, their (padded) length, the adapter. */
export interface DecoderTrainingSettings {
  sequences: number;
  seq: number;
  lora: LoraConfig;
}

/** The studies' QLoRA settings: LoRA r 16, α 32 on every linear layer, 8 sequences of 256 tokens per step. */
export const APP_DECODER_TRAINING: DecoderTrainingSettings = {
  sequences: 8,
  seq: 256,
  lora: { r: 16, alpha: 32, dropout: 0.05, rslora: false, targetModules: DECODER_LINEARS.map((n) => n.slice(n.indexOf('.') + 1)) },
};

/** The device's buffer limits (GPUSupportedLimits) and the GPU memory the user lets training use. */
export interface DeviceBudget {
  budgetBytes: number;
  maxBufferSize: number;
  maxStorageBufferBindingSize: number;
}

export interface DecoderPreset {
  label: string;
  /** The Hub repository (a bitsandbytes 4-bit one where it exists). */
  id: string;
  note: string;
  /** The config.json fields the memory plan reads, as the repository publishes them. */
  config: Record<string, unknown>;
}

/** bitsandbytes NF4 with double quantisation, as the unsloth *-bnb-4bit repositories hold their layers. */
const BNB_NF4 = { quant_method: 'bitsandbytes', load_in_4bit: true, bnb_4bit_quant_type: 'nf4', bnb_4bit_use_double_quant: true, llm_int8_skip_modules: null };

/** The decoder presets, smallest first. */
export const DECODER_PRESETS: readonly DecoderPreset[] = [
  {
    label: 'SmolLM2 135M Instruct',
    id: 'unsloth/SmolLM2-135M-Instruct-bnb-4bit',
    note: '135M parameters, 4-bit',
    config: { model_type: 'llama', hidden_size: 576, intermediate_size: 1536, num_hidden_layers: 30, num_attention_heads: 9, num_key_value_heads: 3, head_dim: 64, vocab_size: 49152, max_position_embeddings: 8192, rope_theta: 100000, tie_word_embeddings: true, quantization_config: BNB_NF4 },
  },
  {
    label: 'SmolLM2 360M Instruct',
    id: 'unsloth/SmolLM2-360M-Instruct-bnb-4bit',
    note: '360M parameters, 4-bit',
    config: { model_type: 'llama', hidden_size: 960, intermediate_size: 2560, num_hidden_layers: 32, num_attention_heads: 15, num_key_value_heads: 5, head_dim: 64, vocab_size: 49152, max_position_embeddings: 8192, rope_theta: 100000, tie_word_embeddings: true, quantization_config: BNB_NF4 },
  },
  {
    label: 'Qwen2.5 0.5B Instruct',
    id: 'unsloth/Qwen2.5-0.5B-Instruct-bnb-4bit',
    note: '0.5B parameters, 4-bit',
    config: { model_type: 'qwen2', hidden_size: 896, intermediate_size: 4864, num_hidden_layers: 24, num_attention_heads: 14, num_key_value_heads: 2, vocab_size: 151936, max_position_embeddings: 32768, rope_theta: 1000000, tie_word_embeddings: true, quantization_config: BNB_NF4 },
  },
  {
    label: 'Llama 3.2 1B Instruct',
    id: 'unsloth/Llama-3.2-1B-Instruct-bnb-4bit',
    note: '1.2B parameters, 4-bit',
    config: {
      model_type: 'llama',
      hidden_size: 2048,
      intermediate_size: 8192,
      num_hidden_layers: 16,
      num_attention_heads: 32,
      num_key_value_heads: 8,
      head_dim: 64,
      vocab_size: 128256,
      max_position_embeddings: 131072,
      rope_theta: 500000,
      rope_scaling: { rope_type: 'llama3', factor: 32, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 },
      tie_word_embeddings: true,
      quantization_config: BNB_NF4,
    },
  },
  {
    label: 'Phi-3 mini 4k Instruct',
    id: 'unsloth/Phi-3-mini-4k-instruct-bnb-4bit',
    note: '3.8B parameters, 4-bit (q, k, v and gate, up unfused, as Mistral)',
    config: { model_type: 'mistral', hidden_size: 3072, intermediate_size: 8192, num_hidden_layers: 32, num_attention_heads: 32, num_key_value_heads: 32, vocab_size: 32064, max_position_embeddings: 4096, sliding_window: 2048, rope_theta: 10000, tie_word_embeddings: false, quantization_config: BNB_NF4 },
  },
];

/** Shards of a sharded safetensors checkpoint, as the index names them. */
const SAFETENSORS_SHARD = /^model-\d+-of-\d+\.safetensors$/;

/**
 * The files openDecoderModel reads from a repository holding `available`: config, tokenizer files,
 * and the safetensors weights (one file, or the index and its shards). Null when there are no
 * safetensors weights (decoders are not read from pytorch_model.bin).
 */
export function decoderFilesToLoad(available: ReadonlySet<string>): string[] | null {
  const weights = available.has('model.safetensors.index.json')
    ? ['model.safetensors.index.json', ...[...available].filter((f) => SAFETENSORS_SHARD.test(f)).sort()]
    : available.has('model.safetensors')
      ? ['model.safetensors']
      : null;
  if (!weights) return null;
  return ['config.json', 'tokenizer.json', ...TOKENIZER_EXTRAS, ...weights].filter((f) => available.has(f));
}

/** The verdict on one decoder repository. */
export interface DecoderFit {
  family: DecoderConfig['family'];
  layers: number;
  hidden: number;
  vocab: number;
  /** Whether the checkpoint's layers are already 4-bit (bitsandbytes), else quantised on load. */
  prequantized: boolean;
  /** The files the app would download, and their bytes. */
  files: string[];
  downloadBytes: number;
  settings: { sequences: number; seq: number };
  plan: DecoderMemoryPlan;
  /** The plan in one line, with the budget (describeDecoderPlan). */
  description: string;
  fits: boolean;
  /** Why it cannot be trained here; empty when it fits. */
  problems: string[];
  /** What would fit instead, when it does not; null when it fits or nothing would. */
  suggestion: string | null;
}

/** The plan for `config` under `device`, and whether it fits: the budget and every buffer limit. */
function planFor(config: DecoderConfig, settings: DecoderTrainingSettings, device: DeviceBudget) {
  const storages: StoragePrecision[] = ['f32', 'f16'];
  const plan = planDecoderTraining({
    config,
    lora: settings.lora,
    shape: { sequences: settings.sequences, seq: Math.min(settings.seq, config.maxSequenceLength) },
    base: { quantization: 'nf4', doubleQuant: true },
    budgetBytes: device.budgetBytes,
    maxBufferBytes: Math.min(device.maxStorageBufferBindingSize, device.maxBufferSize),
    storages,
  });
  const bufferProblems = bufferLimitProblems(plan.estimate, device);
  return { plan, bufferProblems, fits: plan.fits && bufferProblems.length === 0 };
}

/** The longest sequence (a power of two below the asked one, at least 16 tokens) whose plan fits, or null. */
function shorterSequenceThatFits(config: DecoderConfig, settings: DecoderTrainingSettings, device: DeviceBudget): { seq: number; total: number } | null {
  const asked = Math.min(settings.seq, config.maxSequenceLength);
  for (let seq = 2 ** Math.floor(Math.log2(asked - 1)); seq >= 16; seq /= 2) {
    const { plan, fits } = planFor(config, { ...settings, seq }, device);
    if (fits) return { seq, total: plan.estimate.total };
  }
  return null;
}

/** The largest preset other than `repoId` whose plan fits with these settings, or null. */
function largestPresetThatFits(repoId: string, settings: DecoderTrainingSettings, device: DeviceBudget, presets: readonly DecoderPreset[]): { preset: DecoderPreset; total: number } | null {
  for (const preset of [...presets].reverse()) {
    if (preset.id === repoId) continue;
    const { plan, fits } = planFor(parseDecoderConfig(preset.config), settings, device);
    if (fits) return { preset, total: plan.estimate.total };
  }
  return null;
}

/**
 * Decide whether the decoder `repoId` (its parsed config.json and the repository's files with their
 * sizes in bytes, -1 where unknown) can be trained on a device with `device`'s limits. Throws, naming
 * the field, for a config that is not a supported decoder.
 */
export function checkDecoderFit(
  repoId: string,
  configJson: unknown,
  files: ReadonlyMap<string, number>,
  device: DeviceBudget,
  settings: DecoderTrainingSettings = APP_DECODER_TRAINING,
  presets: readonly DecoderPreset[] = DECODER_PRESETS,
): DecoderFit {
  if (!(Number.isInteger(settings.sequences) && settings.sequences > 0 && Number.isInteger(settings.seq) && settings.seq > 0)) {
    throw new Error(`decoder training needs a whole positive number of sequences and tokens, got ${settings.sequences} × ${settings.seq}`);
  }
  const raw = (typeof configJson === 'object' && configJson !== null ? configJson : {}) as Record<string, unknown>;
  const architectures = Array.isArray(raw.architectures) ? (raw.architectures as string[]) : [];
  if (!decoderFamilyOf(raw.model_type, architectures)) {
    const declared = raw.model_type === undefined ? `no model_type (architectures ${architectures.join(', ') || 'none'})` : `model_type ${JSON.stringify(raw.model_type)}`;
    throw new Error(`${repoId} has ${declared}: qlora-lab trains decoders of model_type ${SUPPORTED_DECODER_TYPES.join(', ')} (and BERT-family encoders)`);
  }
  const config = parseDecoderConfig(configJson);
  const toLoad = decoderFilesToLoad(new Set(files.keys()));
  const problems: string[] = [];
  if (!toLoad) problems.push(`${repoId} has no safetensors weights (model.safetensors or model.safetensors.index.json); decoders are loaded from safetensors only.`);
  else if (!toLoad.includes('tokenizer.json')) problems.push(`${repoId} has no tokenizer.json; decoders are loaded with tokenizer.json only.`);
  const loadFiles = toLoad ?? [];
  const shape = { sequences: settings.sequences, seq: Math.min(settings.seq, config.maxSequenceLength) };
  const { plan, bufferProblems, fits } = planFor(config, settings, device);
  problems.push(...bufferProblems);
  // A plan that fits the budget may still not fit (a buffer over the device's binding): bufferLimitProblems says so.
  if (plan.estimate.total > device.budgetBytes) {
    problems.push(
      `Training ${shape.sequences} sequences of ${shape.seq} tokens per step needs about ${formatBytes(plan.estimate.total)} of GPU memory even with the smallest layout, more than the ${formatBytes(device.budgetBytes)} budget.`,
    );
  }
  let suggestion: string | null = null;
  if (!fits) {
    const options: string[] = [];
    const shorter = shorterSequenceThatFits(config, settings, device);
    if (shorter) options.push(`sequences of ${shorter.seq} tokens (about ${formatBytes(shorter.total)})`);
    const preset = largestPresetThatFits(repoId, settings, device, presets);
    if (preset) options.push(`the smaller preset ${preset.preset.label} at ${shape.seq} tokens (about ${formatBytes(preset.total)})`);
    suggestion = options.length > 0 ? `What would fit: ${options.join(', or ')}.` : `Nothing among the presets fits a ${formatBytes(device.budgetBytes)} budget at ${shape.seq} tokens; a larger budget (if this GPU has the memory) would.`;
  }
  return {
    family: config.family,
    layers: config.numHiddenLayers,
    hidden: config.hiddenSize,
    vocab: config.vocabSize,
    prequantized: config.quantization !== null,
    files: loadFiles,
    downloadBytes: loadFiles.reduce((sum, f) => sum + Math.max(0, files.get(f) ?? 0), 0),
    settings: shape,
    plan,
    description: describeDecoderPlan(plan, device.budgetBytes),
    fits: fits && problems.length === 0,
    problems,
    suggestion,
  };
}
