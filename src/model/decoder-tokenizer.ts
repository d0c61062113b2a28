/**
 * Tokenisation for decoder LLMs through @huggingface/transformers: byte-level BPE (Llama 3, Qwen2/3,
 * SmolLM2) or SentencePiece-style BPE (Mistral, Phi-3) tokenizer.json files, with the chat template of
 * tokenizer_config.json. Unlike an encoder's [CLS] text [SEP], a decoder's own template decides the
 * special tokens: Llama 3 puts <|begin_of_text|> first, Qwen adds nothing. Those are kept whatever the
 * truncation, and padding (on the right, masked out) uses pad_token, else eos_token as transformers.js does.
 */
import { PreTrainedTokenizer } from '@huggingface/transformers';
import { padRows, parseJsonObject } from './tokenizer.ts';

export interface ChatMessage {
  role: string;
  content: string;
}

export interface DecoderTokenizer {
  vocabSize: number;
  /** The tokens the tokenizer's template puts before and after a text (Llama 3: [<|begin_of_text|>] and []). */
  prefixIds: number[];
  suffixIds: number[];
  /** tokenizer_config.json's eos_token (Llama 3 Instruct: <|eot_id|>), null when it has none. */
  eosId: number | null;
  padId: number;
  /** A text's ids, with the template's special tokens unless `specialTokens` is false. */
  encode(text: string, options?: { specialTokens?: boolean }): number[];
  decode(ids: ArrayLike<number>, options?: { skipSpecialTokens?: boolean }): string;
  /** Texts with their special tokens, cut to maxLength (the text's end goes first), right-padded with padId. */
  encodeBatch(texts: string[], maxLength: number): { inputIds: Uint32Array; attentionMask: Float32Array; batch: number; seq: number };
  hasChatTemplate: boolean;
  /** The chat template rendered (special tokens written out in the text) and its ids. */
  applyChatTemplate(messages: ChatMessage[], options?: { addGenerationPrompt?: boolean }): { text: string; ids: number[] };
}

export function loadDecoderTokenizer(files: { tokenizerJson: string; tokenizerConfig?: string }): DecoderTokenizer {
  const config = files.tokenizerConfig === undefined ? {} : parseJsonObject(files.tokenizerConfig, 'tokenizer_config.json');
  let tok: PreTrainedTokenizer;
  try {
    tok = new PreTrainedTokenizer(parseJsonObject(files.tokenizerJson, 'tokenizer.json'), config);
  } catch (e) {
    throw new Error(`tokenizer.json could not be loaded: ${(e as Error).message}`);
  }
  const ids = (text: string, specialTokens: boolean) => tok.encode(text, { add_special_tokens: specialTokens });
  // The template's own tokens: what encoding adds around a plain text.
  const bare = ids('a', false);
  const full = ids('a', true);
  const at = full.findIndex((_, k) => bare.every((t, j) => full[k + j] === t));
  if (at < 0) throw new Error("tokenizer: the text's own tokens are not inside its encoding with special tokens; its template is not supported");
  const prefixIds = full.slice(0, at);
  const suffixIds = full.slice(at + bare.length);
  const eosId = typeof tok.eos_token_id === 'number' ? tok.eos_token_id : null;
  const padId = [tok.pad_token_id, eosId].find((id): id is number => typeof id === 'number' && Number.isInteger(id) && id >= 0);
  if (padId === undefined) throw new Error('tokenizer has neither pad_token nor eos_token in tokenizer_config.json, so batches cannot be padded');
  let vocabSize = 0;
  for (const id of tok.get_vocab().values()) vocabSize = Math.max(vocabSize, id + 1);
  const hasChatTemplate = typeof config.chat_template === 'string' || Array.isArray(config.chat_template);
  return {
    vocabSize,
    prefixIds,
    suffixIds,
    eosId,
    padId,
    encode: (text, options = {}) => ids(text, options.specialTokens ?? true),
    decode: (tokens, options = {}) => tok.decode(Array.from(tokens), { skip_special_tokens: options.skipSpecialTokens ?? false }),
    encodeBatch(texts, maxLength) {
      if (!Array.isArray(texts) || texts.length === 0) throw new Error('tokenizer: need at least one text');
      const room = maxLength - prefixIds.length - suffixIds.length;
      if (!Number.isInteger(maxLength) || room < 1) throw new Error(`tokenizer: maxLength must be an integer leaving room for a token after ${prefixIds.length + suffixIds.length} special ones, got ${maxLength}`);
      const rows = texts.map((text, k) => {
        if (typeof text !== 'string') throw new Error(`tokenizer: text ${k} is not a string`);
        return [...prefixIds, ...ids(text, false).slice(0, room), ...suffixIds];
      });
      return padRows(rows, padId);
    },
    hasChatTemplate,
    applyChatTemplate(messages, options = {}) {
      if (!hasChatTemplate) throw new Error('tokenizer_config.json has no chat_template, so chat messages cannot be formatted for this model');
      const text = tok.apply_chat_template(messages, { tokenize: false, add_generation_prompt: options.addGenerationPrompt ?? false }) as string;
      // The template writes its special tokens itself; adding the encoding's own would double them.
      return { text, ids: ids(text, false) };
    },
  };
}
