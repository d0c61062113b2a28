/**
 * A merged model as a complete sentence-transformers folder: the BertModel checkpoint (config.json,
 * model.safetensors, pooler included), the base's tokenizer files, and the module files that make
 * `SentenceTransformer(dir)` embed exactly as the run did — modules.json (Transformer → Pooling
 * [→ Normalize]), 1_Pooling/config.json, sentence_bert_config.json and config_sentence_transformers.json
 * (written by sentence-config.ts, the same code that reads them).
 */
import type { ModelFiles } from './checkpoint.ts';
import type { LoraConfig } from './lora.ts';
import { mergeAdapters } from './merge.ts';
import { writeBertCheckpoint } from './peft-files.ts';
import { type SentenceSettings, sentenceTransformersFiles } from './sentence-config.ts';
import type { HostTensor, StateDict } from './state-dict.ts';

export type FolderFiles = Record<string, string | Uint8Array>;

/**
 * The whole folder for `weights` on the base `base`: weights (pooler kept when the base had one),
 * config.json, the base's tokenizer files as read, and the module files. Lower-casing and whether
 * the prompt is pooled stay as the base folder said, since the run embedded its texts that way.
 */
export function sentenceTransformersFolder(base: Pick<ModelFiles, 'config' | 'tokenizerFiles' | 'sentence'>, weights: StateDict, settings: SentenceSettings): FolderFiles {
  const { config, sentence } = base;
  // Texts longer than the position table were cut there; say so rather than promise more.
  const written = { ...settings, maxLength: Math.min(settings.maxLength, config.maxSequenceLength) };
  return {
    ...writeBertCheckpoint(config, weights),
    ...Object.fromEntries(base.tokenizerFiles),
    ...sentenceTransformersFiles(written, { hiddenSize: config.hiddenSize, lowercase: sentence.lowercase, includePrompt: sentence.includePrompt }),
  };
}

/** The base with `adapters` folded in (in order, each checked first; `source` names it in errors), as a sentence-transformers folder. */
export function mergedModelFolder(
  base: Pick<ModelFiles, 'config' | 'weights' | 'tokenizerFiles' | 'sentence'>,
  adapters: { config: LoraConfig; tensors: Map<string, HostTensor>; source?: string }[],
  settings: SentenceSettings,
): FolderFiles {
  return sentenceTransformersFolder(base, mergeAdapters(base.config, base.weights, adapters), settings);
}
