/**
 * Encoder configuration from a Hugging Face `config.json`, in BertModel's terms whatever the family
 * (families.ts): BERT (BioLinkBERT, PubMedBERT, BGE, MiniLM, E5...), RoBERTa (BiomedRoBERTa,
 * all-distilroberta-v1), XLM-RoBERTa and DistilBERT (msmarco-distilbert). Anything else gets a
 * "not supported yet" error naming what the file declares.
 */
import { type FamilyName, SUPPORTED_MODEL_TYPES, familyOf, positionOffset } from './families.ts';

export interface BertConfig {
  modelType: string;
  /** The encoder family, which says how its checkpoints name things (families.ts). */
  family: FamilyName;
  architectures: string[];
  vocabSize: number;
  hiddenSize: number;
  numHiddenLayers: number;
  numAttentionHeads: number;
  intermediateSize: number;
  maxPositionEmbeddings: number;
  typeVocabSize: number;
  layerNormEps: number;
  hiddenAct: 'gelu';
  padTokenId: number;
  /** Row of position_embeddings holding the first token's position: RoBERTa's pad_token_id + 1, else 0. */
  positionOffset: number;
  /** The longest input the position table allows: max_position_embeddings less positionOffset. */
  maxSequenceLength: number;
  /** The config.json object as read, for writing it back (merged-model export). */
  raw: Record<string, unknown>;
}

/** HF config defaults for fields old config files sometimes leave out. */
const DEFAULTS = { max_position_embeddings: 512, type_vocab_size: 2, layer_norm_eps: 1e-12, hidden_act: 'gelu' };

export function parseBertConfig(json: unknown): BertConfig {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new Error('config.json must be a JSON object');
  }
  const raw = json as Record<string, unknown>;
  const architectures = raw.architectures === undefined ? [] : raw.architectures;
  if (!Array.isArray(architectures) || !architectures.every((a) => typeof a === 'string')) {
    throw new Error('config.json: "architectures" must be a list of class names');
  }
  const family = familyOf(raw.model_type, architectures);
  if (!family) {
    const declared = [
      raw.model_type === undefined ? 'no model_type' : `model_type ${JSON.stringify(raw.model_type)}`,
      architectures.length > 0 ? `architectures ${architectures.join(', ')}` : 'no architectures',
    ].join(', ');
    const supported = SUPPORTED_MODEL_TYPES.map((t) => `"${t}"`).join(', ');
    throw new Error(`config.json declares ${declared}: not supported yet — qlora-lab loads the encoders with model_type ${supported}`);
  }
  const { keys } = family;
  const positive = (name: string, fallback?: number): number => {
    const value = raw[name] ?? fallback;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
      throw new Error(`config.json: "${name}" must be a positive integer, got ${JSON.stringify(value)}`);
    }
    return value;
  };
  const hiddenAct = raw[keys.hiddenAct] ?? DEFAULTS.hidden_act;
  if (hiddenAct !== 'gelu') {
    throw new Error(`config.json: ${keys.hiddenAct} ${JSON.stringify(hiddenAct)} is not supported yet (only "gelu", the exact erf GELU BERT uses)`);
  }
  const positionType = raw.position_embedding_type ?? 'absolute';
  if (positionType !== 'absolute') {
    throw new Error(`config.json: position_embedding_type ${JSON.stringify(positionType)} is not supported yet (only "absolute")`);
  }
  if (raw.is_decoder === true || raw.add_cross_attention === true) {
    throw new Error('config.json: decoder / cross-attention BERT variants are not supported yet (only the encoder)');
  }
  const layerNormEps = family.fixedLayerNormEps ?? raw.layer_norm_eps ?? DEFAULTS.layer_norm_eps;
  if (typeof layerNormEps !== 'number' || !(layerNormEps > 0)) {
    throw new Error(`config.json: "layer_norm_eps" must be a positive number, got ${JSON.stringify(layerNormEps)}`);
  }
  const padTokenId = raw.pad_token_id ?? family.defaultPadTokenId;
  if (typeof padTokenId !== 'number' || !Number.isInteger(padTokenId) || padTokenId < 0) {
    throw new Error(`config.json: "pad_token_id" must be a non-negative integer, got ${JSON.stringify(padTokenId)}`);
  }
  const maxPositionEmbeddings = positive('max_position_embeddings', DEFAULTS.max_position_embeddings);
  const offset = positionOffset(family, padTokenId);
  const config: BertConfig = {
    modelType: family.name,
    family: family.name,
    architectures: architectures as string[],
    vocabSize: positive('vocab_size'),
    hiddenSize: positive(keys.hiddenSize),
    numHiddenLayers: positive(keys.numHiddenLayers),
    numAttentionHeads: positive(keys.numAttentionHeads),
    intermediateSize: positive(keys.intermediateSize),
    maxPositionEmbeddings,
    // Without token types (DistilBERT) the canonical layout holds one all-zero row.
    typeVocabSize: family.tokenTypes ? positive('type_vocab_size', DEFAULTS.type_vocab_size) : 1,
    layerNormEps,
    hiddenAct: 'gelu',
    padTokenId,
    positionOffset: offset,
    maxSequenceLength: maxPositionEmbeddings - offset,
    raw,
  };
  if (config.hiddenSize % config.numAttentionHeads !== 0) {
    throw new Error(`config.json: ${keys.hiddenSize} ${config.hiddenSize} is not a multiple of ${keys.numAttentionHeads} ${config.numAttentionHeads}`);
  }
  if (padTokenId >= config.vocabSize) {
    throw new Error(`config.json: pad_token_id ${padTokenId} is outside the vocabulary (vocab_size ${config.vocabSize})`);
  }
  if (config.maxSequenceLength < 2) {
    throw new Error(
      `config.json: max_position_embeddings ${maxPositionEmbeddings} leaves ${config.maxSequenceLength} positions after ${family.label}'s offset of ${offset} (pad_token_id + 1); a text needs at least 2`,
    );
  }
  return config;
}
