/**
 * A merged model as a complete sentence-transformers folder: the BertModel checkpoint (config.json,
 * model.safetensors, pooler included), the base's tokenizer files, and the module files that make
 * `SentenceTransformer(dir)` embed exactly as the run did — modules.json (Transformer → Pooling
 * [→ Normalize]), 1_Pooling/config.json, sentence_bert_config.json and config_sentence_transformers.json.
 * The sentence settings come in as data, so any pooling mode sentence-transformers knows can be written.
 */
import type { BertConfig } from './config.ts';
import { writeBertCheckpoint } from './peft-files.ts';
import type { Pooling } from './sentence.ts';
import type { StateDict } from './state-dict.ts';

/** Pooling modes by sentence-transformers' names (its `pooling_mode` argument). */
export const ST_POOLING_MODES = ['cls', 'mean', 'max', 'mean_sqrt_len_tokens', 'weightedmean', 'lasttoken'] as const;
export type StPoolingMode = (typeof ST_POOLING_MODES)[number];

/** How texts become sentence embeddings: what a run trained with and what an export must reproduce. */
export interface SentenceSettings {
  pooling: Pooling;
  normalize: boolean;
  /** Tokens per text, [CLS] and [SEP] included. */
  maxLength: number;
  /** Named prompts (e.g. query → "query: "), prepended to texts and pooled over with them. */
  prompts: Record<string, string>;
}

export type FolderFiles = Record<string, string | Uint8Array>;

const json = (value: unknown) => `${JSON.stringify(value, null, 2)}\n`;

/** The sentence-transformers module files for a BertModel of `config` (paths relative to the folder). */
export function sentenceTransformersModuleFiles(config: BertConfig, settings: SentenceSettings): FolderFiles {
  const modules = [
    { idx: 0, name: '0', path: '', type: 'sentence_transformers.models.Transformer' },
    { idx: 1, name: '1', path: '1_Pooling', type: 'sentence_transformers.models.Pooling' },
    // Normalize has no parameters and saves no file; its folder is named but need not exist.
    ...(settings.normalize ? [{ idx: 2, name: '2', path: '2_Normalize', type: 'sentence_transformers.models.Normalize' }] : []),
  ];
  const flags: Record<StPoolingMode, string> = {
    cls: 'pooling_mode_cls_token',
    mean: 'pooling_mode_mean_tokens',
    max: 'pooling_mode_max_tokens',
    mean_sqrt_len_tokens: 'pooling_mode_mean_sqrt_len_tokens',
    weightedmean: 'pooling_mode_weightedmean_tokens',
    lasttoken: 'pooling_mode_lasttoken',
  };
  // Typed so that a pooling the engine gains but sentence-transformers lacks fails to compile here.
  const chosen: StPoolingMode = settings.pooling;
  const pooling = {
    word_embedding_dimension: config.hiddenSize,
    ...Object.fromEntries(ST_POOLING_MODES.map((mode) => [flags[mode], mode === chosen])),
    // Training prepended the prompt and pooled over its tokens too.
    include_prompt: true,
  };
  return {
    'modules.json': json(modules),
    '1_Pooling/config.json': json(pooling),
    // The tokenizer lowercases as its own tokenizer_config.json says; sentence-transformers must not do it again.
    'sentence_bert_config.json': json({ max_seq_length: Math.min(settings.maxLength, config.maxPositionEmbeddings), do_lower_case: false }),
    'config_sentence_transformers.json': json({
      prompts: settings.prompts,
      default_prompt_name: null,
      similarity_fn_name: 'cosine',
    }),
  };
}

/**
 * The whole folder: weights (pooler kept when the base had one), config.json, the base's tokenizer
 * files as read, and the module files.
 */
export function sentenceTransformersFolder(config: BertConfig, weights: StateDict, tokenizerFiles: ReadonlyMap<string, Uint8Array>, settings: SentenceSettings): FolderFiles {
  return {
    ...writeBertCheckpoint(config, weights),
    ...Object.fromEntries(tokenizerFiles),
    ...sentenceTransformersModuleFiles(config, settings),
  };
}
