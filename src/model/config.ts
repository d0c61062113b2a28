/**
 * BERT configuration from a Hugging Face `config.json`. Only the BertModel architecture is
 * supported (model_type "bert": BERT, BioLinkBERT, PubMedBERT, BGE, MiniLM, E5...); anything else
 * gets a "not supported yet" error naming what the file declares.
 */

export interface BertConfig {
  modelType: string;
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
  /** The config.json object as read, for writing it back (merged-model export). */
  raw: Record<string, unknown>;
}

/** HF BertConfig defaults for fields old config files sometimes leave out. */
const DEFAULTS = { max_position_embeddings: 512, type_vocab_size: 2, layer_norm_eps: 1e-12, pad_token_id: 0, hidden_act: 'gelu' };

export function parseBertConfig(json: unknown): BertConfig {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new Error('config.json must be a JSON object');
  }
  const raw = json as Record<string, unknown>;
  const architectures = raw.architectures === undefined ? [] : raw.architectures;
  if (!Array.isArray(architectures) || !architectures.every((a) => typeof a === 'string')) {
    throw new Error('config.json: "architectures" must be a list of class names');
  }
  // Very old configs have no model_type; transformers then goes by the class name.
  const modelType = raw.model_type ?? (architectures.length > 0 && architectures.every((a) => a.startsWith('Bert')) ? 'bert' : undefined);
  if (modelType !== 'bert') {
    const declared = [
      modelType === undefined ? 'no model_type' : `model_type ${JSON.stringify(modelType)}`,
      architectures.length > 0 ? `architectures ${architectures.join(', ')}` : 'no architectures',
    ].join(', ');
    throw new Error(`config.json declares ${declared}: not supported yet — qlora-lab loads BERT encoders (model_type "bert") only`);
  }
  const positive = (name: string, fallback?: number): number => {
    const value = raw[name] ?? fallback;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
      throw new Error(`config.json: "${name}" must be a positive integer, got ${JSON.stringify(value)}`);
    }
    return value;
  };
  const hiddenAct = raw.hidden_act ?? DEFAULTS.hidden_act;
  if (hiddenAct !== 'gelu') {
    throw new Error(`config.json: hidden_act ${JSON.stringify(hiddenAct)} is not supported yet (only "gelu", the exact erf GELU BERT uses)`);
  }
  const positionType = raw.position_embedding_type ?? 'absolute';
  if (positionType !== 'absolute') {
    throw new Error(`config.json: position_embedding_type ${JSON.stringify(positionType)} is not supported yet (only "absolute")`);
  }
  if (raw.is_decoder === true || raw.add_cross_attention === true) {
    throw new Error('config.json: decoder / cross-attention BERT variants are not supported yet (only the encoder)');
  }
  const layerNormEps = raw.layer_norm_eps ?? DEFAULTS.layer_norm_eps;
  if (typeof layerNormEps !== 'number' || !(layerNormEps > 0)) {
    throw new Error(`config.json: "layer_norm_eps" must be a positive number, got ${JSON.stringify(layerNormEps)}`);
  }
  const padTokenId = raw.pad_token_id ?? DEFAULTS.pad_token_id;
  if (typeof padTokenId !== 'number' || !Number.isInteger(padTokenId) || padTokenId < 0) {
    throw new Error(`config.json: "pad_token_id" must be a non-negative integer, got ${JSON.stringify(padTokenId)}`);
  }
  const config: BertConfig = {
    modelType,
    architectures: architectures as string[],
    vocabSize: positive('vocab_size'),
    hiddenSize: positive('hidden_size'),
    numHiddenLayers: positive('num_hidden_layers'),
    numAttentionHeads: positive('num_attention_heads'),
    intermediateSize: positive('intermediate_size'),
    maxPositionEmbeddings: positive('max_position_embeddings', DEFAULTS.max_position_embeddings),
    typeVocabSize: positive('type_vocab_size', DEFAULTS.type_vocab_size),
    layerNormEps,
    hiddenAct: 'gelu',
    padTokenId,
    raw,
  };
  if (config.hiddenSize % config.numAttentionHeads !== 0) {
    throw new Error(`config.json: hidden_size ${config.hiddenSize} is not a multiple of num_attention_heads ${config.numAttentionHeads}`);
  }
  if (padTokenId >= config.vocabSize) {
    throw new Error(`config.json: pad_token_id ${padTokenId} is outside the vocabulary (vocab_size ${config.vocabSize})`);
  }
  return config;
}
