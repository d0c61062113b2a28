/**
 * Decoder LLM configuration from a Hugging Face `config.json`, for the Llama-architecture family:
 * pre-RMSNorm blocks with rotary positions, grouped-query causal attention and a SwiGLU MLP. The
 * families differ only in details, which become fields of one canonical config:
 *
 * - Llama 3.x (and SmolLM2, model_type "llama"): rope_scaling of type "llama3"; optional attention bias;
 * - Qwen2 / Qwen2.5: biases on q, k and v (not o);
 * - Qwen3: an RMSNorm over each head of q and k, and a head_dim that need not be hidden / heads;
 * - Mistral: a sliding attention window, which here caps the sequence length (inside the window,
 *   sliding attention is plain causal attention);
 * - Phi-3: q, k, v in one fused qkv_proj and gate, up in one gate_up_proj (split at load).
 *
 * Anything the kernels do not compute (another activation, rope type or partial rotary) is refused
 * with a message naming the field, never approximated.
 */

export type DecoderFamilyName = 'llama' | 'qwen2' | 'qwen3' | 'mistral' | 'phi3';

export const SUPPORTED_DECODER_TYPES: readonly DecoderFamilyName[] = ['llama', 'qwen2', 'qwen3', 'mistral', 'phi3'];

/** Llama 3.1's frequency-dependent stretch of the rotary frequencies (rope_type "llama3"). */
export interface Llama3RopeScaling {
  type: 'llama3';
  factor: number;
  lowFreqFactor: number;
  highFreqFactor: number;
  originalMaxPositionEmbeddings: number;
}

/** A checkpoint already quantised by bitsandbytes (`quantization_config` of a `*-bnb-4bit` repo). */
export interface Bnb4bitQuantization {
  quantType: 'nf4';
  doubleQuant: boolean;
  /** Modules left unquantised (llm_int8_skip_modules), as listed. */
  skipModules: string[];
}

export interface DecoderConfig {
  modelType: DecoderFamilyName;
  family: DecoderFamilyName;
  architectures: string[];
  vocabSize: number;
  hiddenSize: number;
  numHiddenLayers: number;
  numAttentionHeads: number;
  /** Grouped-query attention: numAttentionHeads is a multiple of it. */
  numKeyValueHeads: number;
  headDim: number;
  intermediateSize: number;
  maxPositionEmbeddings: number;
  /** The longest sequence the engine runs exactly: max_position_embeddings, capped by a sliding window. */
  maxSequenceLength: number;
  rmsNormEps: number;
  ropeTheta: number;
  ropeScaling: Llama3RopeScaling | null;
  hiddenAct: 'silu';
  tieWordEmbeddings: boolean;
  /** Biases on q_proj, k_proj, v_proj (Qwen2, Llama's attention_bias). */
  qkvBias: boolean;
  /** Bias on o_proj (Llama's attention_bias only). */
  outputBias: boolean;
  /** RMSNorm over each head of q and k before rotary positions (Qwen3). */
  qkNorm: boolean;
  /** Checkpoints hold qkv_proj and gate_up_proj instead of their parts (Phi-3). */
  fusedProjections: boolean;
  /** Attention window of the model (Mistral, Phi-3), null when attention is fully causal. */
  slidingWindow: number | null;
  bosTokenId: number | null;
  eosTokenIds: number[];
  quantization: Bnb4bitQuantization | null;
  /** The config.json object as read, for writing it back (merged-model export). */
  raw: Record<string, unknown>;
}

interface DecoderFamily {
  /** The class of a causal-LM checkpoint, for configs without model_type and for export. */
  architecture: string;
  /** head_dim when config.json has none: the config class's default (null: hidden / heads). */
  defaultHeadDim: number | null;
  qkvBias: (raw: Record<string, unknown>) => boolean;
  outputBias: (raw: Record<string, unknown>) => boolean;
  qkNorm: boolean;
  fusedProjections: boolean;
  /** Whether sliding_window applies by itself (Mistral, Phi-3) or only with use_sliding_window (Qwen). */
  windowNeedsSwitch: boolean;
  /** rms_norm_eps when config.json has none (the config class's default). */
  defaultRmsNormEps: number;
}

const attentionBias = (raw: Record<string, unknown>) => raw.attention_bias === true;

const FAMILIES: Record<DecoderFamilyName, DecoderFamily> = {
  llama: { architecture: 'LlamaForCausalLM', defaultHeadDim: null, qkvBias: attentionBias, outputBias: attentionBias, qkNorm: false, fusedProjections: false, windowNeedsSwitch: false, defaultRmsNormEps: 1e-6 },
  qwen2: { architecture: 'Qwen2ForCausalLM', defaultHeadDim: null, qkvBias: () => true, outputBias: () => false, qkNorm: false, fusedProjections: false, windowNeedsSwitch: true, defaultRmsNormEps: 1e-6 },
  qwen3: { architecture: 'Qwen3ForCausalLM', defaultHeadDim: 128, qkvBias: attentionBias, outputBias: attentionBias, qkNorm: true, fusedProjections: false, windowNeedsSwitch: true, defaultRmsNormEps: 1e-6 },
  mistral: { architecture: 'MistralForCausalLM', defaultHeadDim: null, qkvBias: () => false, outputBias: () => false, qkNorm: false, fusedProjections: false, windowNeedsSwitch: false, defaultRmsNormEps: 1e-6 },
  phi3: { architecture: 'Phi3ForCausalLM', defaultHeadDim: null, qkvBias: () => false, outputBias: () => false, qkNorm: false, fusedProjections: true, windowNeedsSwitch: false, defaultRmsNormEps: 1e-5 },
};

export const decoderArchitecture = (family: DecoderFamilyName) => FAMILIES[family].architecture;

/** The decoder family a config.json names (by model_type, else by architectures), or null for any other model. */
export function decoderFamilyOf(modelType: unknown, architectures: string[]): DecoderFamilyName | null {
  if (typeof modelType === 'string') return (SUPPORTED_DECODER_TYPES as readonly string[]).includes(modelType) ? (modelType as DecoderFamilyName) : null;
  if (modelType !== undefined) return null;
  return SUPPORTED_DECODER_TYPES.find((name) => architectures.includes(FAMILIES[name].architecture)) ?? null;
}

export type ModelKind = 'encoder' | 'decoder' | 'unreadable';

/**
 * Whether config.json's bytes name a supported decoder family, any other model, or cannot be read
 * (missing or not JSON): callers that take either kind send 'unreadable' the encoder's way, whose
 * loader explains the problem, or report it as it is.
 */
export function configModelKind(configBytes: Uint8Array | null): ModelKind {
  if (!configBytes) return 'unreadable';
  let json: { model_type?: unknown; architectures?: unknown };
  try {
    json = JSON.parse(new TextDecoder().decode(configBytes));
  } catch {
    return 'unreadable';
  }
  if (typeof json !== 'object' || json === null) return 'unreadable';
  const architectures = Array.isArray(json.architectures) ? json.architectures.filter((a): a is string => typeof a === 'string') : [];
  return decoderFamilyOf(json.model_type, architectures) ? 'decoder' : 'encoder';
}

type Fail = (why: string) => never;

const fail: Fail = (why) => {
  throw new Error(`config.json: ${why}`);
};

function positiveInteger(raw: Record<string, unknown>, name: string, fallback?: number): number {
  const value = raw[name] ?? fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) fail(`"${name}" must be a positive integer, got ${JSON.stringify(value)}`);
  return value as number;
}

function positiveNumber(value: unknown, name: string): number {
  if (typeof value !== 'number' || !(value > 0) || !Number.isFinite(value)) fail(`"${name}" must be a positive number, got ${JSON.stringify(value)}`);
  return value as number;
}

function tokenId(value: unknown, name: string, vocabSize: number): number | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value >= vocabSize) {
    fail(`"${name}" must be a token id below vocab_size ${vocabSize}, got ${JSON.stringify(value)}`);
  }
  return value as number;
}

function tokenIds(value: unknown, name: string, vocabSize: number): number[] {
  if (value === undefined || value === null) return [];
  return (Array.isArray(value) ? value : [value]).map((id, k) => tokenId(id, Array.isArray(value) ? `${name}[${k}]` : name, vocabSize) as number);
}

/**
 * Rotary settings: rope_theta and rope_scaling, or (newer transformers) both inside rope_parameters.
 * "default" scaling is none; "llama3" is computed by the kernels; every other type is refused.
 */
function readRope(raw: Record<string, unknown>): { theta: number; scaling: Llama3RopeScaling | null } {
  const parameters = raw.rope_parameters;
  if (parameters !== undefined && (typeof parameters !== 'object' || parameters === null || Array.isArray(parameters))) fail('"rope_parameters" must be an object');
  const nested = parameters as Record<string, unknown> | undefined;
  const theta = positiveNumber(nested?.rope_theta ?? raw.rope_theta ?? 10000, 'rope_theta');
  const scaling = nested ?? raw.rope_scaling;
  if (scaling === undefined || scaling === null) return { theta, scaling: null };
  if (typeof scaling !== 'object' || Array.isArray(scaling)) fail('"rope_scaling" must be an object or null');
  const s = scaling as Record<string, unknown>;
  const type = s.rope_type ?? s.type ?? 'default';
  if (type === 'default') return { theta, scaling: null };
  if (type !== 'llama3') fail(`rope_scaling type ${JSON.stringify(type)} is not supported (only "llama3" scaling, or none)`);
  const scaled: Llama3RopeScaling = {
    type: 'llama3',
    factor: positiveNumber(s.factor, 'rope_scaling.factor'),
    lowFreqFactor: positiveNumber(s.low_freq_factor, 'rope_scaling.low_freq_factor'),
    highFreqFactor: positiveNumber(s.high_freq_factor, 'rope_scaling.high_freq_factor'),
    originalMaxPositionEmbeddings: positiveInteger(s, 'original_max_position_embeddings'),
  };
  if (scaled.highFreqFactor <= scaled.lowFreqFactor) {
    fail(`rope_scaling: high_freq_factor ${scaled.highFreqFactor} must exceed low_freq_factor ${scaled.lowFreqFactor} (the llama3 rule divides by their difference)`);
  }
  return { theta, scaling: scaled };
}

function readQuantization(raw: Record<string, unknown>): Bnb4bitQuantization | null {
  const q = raw.quantization_config;
  if (q === undefined || q === null) return null;
  if (typeof q !== 'object' || Array.isArray(q)) fail('"quantization_config" must be an object');
  const c = q as Record<string, unknown>;
  if (c.quant_method !== 'bitsandbytes' || c.load_in_4bit !== true) {
    const what = c.quant_method === 'bitsandbytes' ? 'bitsandbytes 8-bit' : `quant_method ${JSON.stringify(c.quant_method)}`;
    fail(`quantization_config: ${what} checkpoints are not supported (only bitsandbytes 4-bit, the *-bnb-4bit repos, or unquantised weights)`);
  }
  const quantType = c.bnb_4bit_quant_type ?? 'fp4';
  if (quantType !== 'nf4') fail(`quantization_config: bnb_4bit_quant_type ${JSON.stringify(quantType)} is not supported (only "nf4")`);
  const skip = c.llm_int8_skip_modules ?? [];
  if (!Array.isArray(skip) || !skip.every((m) => typeof m === 'string')) fail('quantization_config: "llm_int8_skip_modules" must be a list of module names');
  return { quantType: 'nf4', doubleQuant: c.bnb_4bit_use_double_quant === true, skipModules: skip as string[] };
}

export function parseDecoderConfig(json: unknown): DecoderConfig {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new Error('config.json must be a JSON object');
  const raw = json as Record<string, unknown>;
  const architectures = raw.architectures ?? [];
  if (!Array.isArray(architectures) || !architectures.every((a) => typeof a === 'string')) fail('"architectures" must be a list of class names');
  const familyName = decoderFamilyOf(raw.model_type, architectures as string[]);
  if (!familyName) {
    const declared = raw.model_type === undefined ? `no model_type (architectures ${(architectures as string[]).join(', ') || 'none'})` : `model_type ${JSON.stringify(raw.model_type)}`;
    fail(`${declared} is not a supported decoder; qlora-lab loads model_type ${SUPPORTED_DECODER_TYPES.map((t) => `"${t}"`).join(', ')}`);
  }
  const name = familyName as DecoderFamilyName;
  const family = FAMILIES[name];
  const hiddenAct = raw.hidden_act ?? 'silu';
  if (hiddenAct !== 'silu') fail(`hidden_act ${JSON.stringify(hiddenAct)} is not supported (only "silu", the SwiGLU MLP's gate)`);
  if (raw.mlp_bias === true) fail('"mlp_bias": true is not supported (the MLP projections have no biases here)');
  const partialRotary = raw.partial_rotary_factor ?? 1;
  if (partialRotary !== 1) fail(`partial_rotary_factor ${JSON.stringify(partialRotary)} is not supported (rotary positions over whole heads only)`);

  const vocabSize = positiveInteger(raw, 'vocab_size');
  const hiddenSize = positiveInteger(raw, 'hidden_size');
  const numAttentionHeads = positiveInteger(raw, 'num_attention_heads');
  const numKeyValueHeads = positiveInteger(raw, 'num_key_value_heads', numAttentionHeads);
  if (numAttentionHeads % numKeyValueHeads !== 0) fail(`num_attention_heads ${numAttentionHeads} is not a multiple of num_key_value_heads ${numKeyValueHeads}`);
  const defaultHeadDim = family.defaultHeadDim ?? hiddenSize / numAttentionHeads;
  if (raw.head_dim == null && !Number.isInteger(defaultHeadDim)) fail(`hidden_size ${hiddenSize} is not a multiple of num_attention_heads ${numAttentionHeads}, and there is no head_dim`);
  const headDim = positiveInteger(raw, 'head_dim', defaultHeadDim);
  if (headDim % 2 !== 0) fail(`head_dim ${headDim} must be even (rotary positions turn pairs of dimensions)`);
  const maxPositionEmbeddings = positiveInteger(raw, 'max_position_embeddings');
  const windowApplies = !family.windowNeedsSwitch || raw.use_sliding_window === true;
  const slidingWindow = windowApplies && raw.sliding_window != null ? positiveInteger(raw, 'sliding_window') : null;
  const { theta, scaling } = readRope(raw);
  const tie = raw.tie_word_embeddings ?? false;
  if (typeof tie !== 'boolean') fail(`"tie_word_embeddings" must be true or false, got ${JSON.stringify(tie)}`);
  return {
    modelType: name,
    family: name,
    architectures: architectures as string[],
    vocabSize,
    hiddenSize,
    numHiddenLayers: positiveInteger(raw, 'num_hidden_layers'),
    numAttentionHeads,
    numKeyValueHeads,
    headDim,
    intermediateSize: positiveInteger(raw, 'intermediate_size'),
    maxPositionEmbeddings,
    // Keys within the window of every query are all of its causal keys, so up to the window nothing differs.
    maxSequenceLength: Math.min(maxPositionEmbeddings, slidingWindow ?? Infinity),
    rmsNormEps: positiveNumber(raw.rms_norm_eps ?? family.defaultRmsNormEps, 'rms_norm_eps'),
    ropeTheta: theta,
    ropeScaling: scaling,
    hiddenAct: 'silu',
    tieWordEmbeddings: tie as boolean,
    qkvBias: family.qkvBias(raw),
    outputBias: family.outputBias(raw),
    qkNorm: family.qkNorm,
    fusedProjections: family.fusedProjections,
    slidingWindow,
    bosTokenId: tokenId(raw.bos_token_id, 'bos_token_id', vocabSize),
    eosTokenIds: tokenIds(raw.eos_token_id, 'eos_token_id', vocabSize),
    // pad_token_id is not read: padding uses the tokenizer's pad token and is masked out, and some
    // published configs name an id past vocab_size there.
    quantization: readQuantization(raw),
    raw,
  };
}
