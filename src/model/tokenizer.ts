/**
 * Tokenisation through @huggingface/transformers. A model ships either `tokenizer.json` (any kind
 * transformers.js reads: BERT's WordPiece, RoBERTa's byte-level BPE, XLM-RoBERTa's Unigram) or the
 * older `vocab.txt`; for the latter we build the tokenizer.json that HF's BertTokenizerFast converter
 * would produce (BertNormalizer, BertPreTokenizer, WordPiece, [CLS] $A [SEP] template), so both go
 * through the same code.
 */
import { PreTrainedTokenizer } from '@huggingface/transformers';

export interface Tokenizer {
  /** Pads to the longest text in the batch (at most maxLength), truncates, adds [CLS]/[SEP] (RoBERTa: <s>/</s>). */
  encode(
    texts: string[],
    maxLength: number,
  ): { inputIds: Uint32Array; tokenTypeIds: Uint32Array; attentionMask: Float32Array; batch: number; seq: number };
  vocabSize: number;
}

export interface TokenizerFiles {
  /** tokenizer.json text, preferred when present. */
  tokenizerJson?: string;
  /** vocab.txt text, used when there is no tokenizer.json. */
  vocabTxt?: string;
  /** tokenizer_config.json text (optional). */
  tokenizerConfig?: string;
}

export function loadTokenizer(files: TokenizerFiles): Tokenizer {
  const config = files.tokenizerConfig === undefined ? {} : parseJsonObject(files.tokenizerConfig, 'tokenizer_config.json');
  if (files.tokenizerJson !== undefined) return createTokenizer(parseJsonObject(files.tokenizerJson, 'tokenizer.json'), config);
  if (files.vocabTxt !== undefined) return createTokenizer(bertTokenizerJson(files.vocabTxt, config), config);
  throw new Error('no tokenizer: the model has neither tokenizer.json nor vocab.txt');
}

export function parseJsonObject(text: string, name: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new Error(`${name} is not valid JSON (${(e as Error).message})`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error(`${name} must be a JSON object`);
  return value as Record<string, unknown>;
}

/** A special token named in tokenizer_config.json (a string, or an AddedToken object), or the BERT default. */
function specialToken(config: Record<string, unknown>, key: string, fallback: string): string {
  const value = config[key];
  if (typeof value === 'string') return value;
  if (typeof value === 'object' && value !== null && typeof (value as { content?: unknown }).content === 'string') return (value as { content: string }).content;
  return fallback;
}

/** The tokenizer.json equivalent of BertTokenizer(vocab.txt, **tokenizer_config). */
export function bertTokenizerJson(vocabTxt: string, config: Record<string, unknown>): Record<string, unknown> {
  const vocab: Record<string, number> = {};
  const lines = vocabTxt.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  // Like BertTokenizer.load_vocab: one token per line, later duplicates win.
  lines.forEach((line, id) => (vocab[line.endsWith('\r') ? line.slice(0, -1) : line] = id));
  const tokens = {
    unk: specialToken(config, 'unk_token', '[UNK]'),
    sep: specialToken(config, 'sep_token', '[SEP]'),
    pad: specialToken(config, 'pad_token', '[PAD]'),
    cls: specialToken(config, 'cls_token', '[CLS]'),
    mask: specialToken(config, 'mask_token', '[MASK]'),
  };
  for (const key of ['unk', 'sep', 'pad', 'cls'] as const) {
    if (!Object.hasOwn(vocab, tokens[key])) throw new Error(`vocab.txt has no ${key} token ${tokens[key]}`);
  }
  const lowercase = config.do_lower_case ?? true;
  const special = [tokens.pad, tokens.unk, tokens.cls, tokens.sep, tokens.mask].filter((t) => Object.hasOwn(vocab, t));
  const id = (t: string) => vocab[t];
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: special
      .sort((a, b) => id(a) - id(b))
      .map((t) => ({ id: id(t), content: t, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
    normalizer: {
      type: 'BertNormalizer',
      clean_text: true,
      handle_chinese_chars: config.tokenize_chinese_chars ?? true,
      strip_accents: config.strip_accents ?? null,
      lowercase,
    },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: tokens.cls, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: tokens.sep, type_id: 0 } }],
      pair: [
        { SpecialToken: { id: tokens.cls, type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: tokens.sep, type_id: 0 } },
        { Sequence: { id: 'B', type_id: 1 } },
        { SpecialToken: { id: tokens.sep, type_id: 1 } },
      ],
      special_tokens: Object.fromEntries([tokens.cls, tokens.sep].map((t) => [t, { id: t, ids: [id(t)], tokens: [t] }])),
    },
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    model: { type: 'WordPiece', unk_token: tokens.unk, continuing_subword_prefix: '##', max_input_chars_per_word: 100, vocab },
  };
}

/**
 * The padding id: tokenizer_config.json's pad_token (transformers.js falls back to eos_token), else
 * tokenizer.json's padding settings, else a [PAD] or <pad> token. Which one it is never changes an
 * embedding: padding is masked out, and positions here count from the row's start.
 */
function paddingId(tok: PreTrainedTokenizer, tokenizerJson: Record<string, unknown>): number | undefined {
  const padding = tokenizerJson.padding as { pad_id?: unknown } | null | undefined;
  const candidates = [tok.pad_token_id, padding?.pad_id, tok.convert_tokens_to_ids('[PAD]'), tok.convert_tokens_to_ids('<pad>')];
  return candidates.find((id): id is number => typeof id === 'number' && Number.isInteger(id) && id >= 0);
}

export function createTokenizer(tokenizerJson: Record<string, unknown>, tokenizerConfig: Record<string, unknown>): Tokenizer {
  let tok: PreTrainedTokenizer;
  try {
    tok = new PreTrainedTokenizer(tokenizerJson, tokenizerConfig);
  } catch (e) {
    throw new Error(`tokenizer.json could not be loaded: ${(e as Error).message}`);
  }
  // Truncation must drop text tokens and keep [CLS]/[SEP] (transformers.js would cut the [SEP]),
  // so texts are encoded bare and wrapped here with the ids the tokenizer's own template adds.
  const bare = tok.encode('a', { add_special_tokens: false });
  const full = tok.encode('a', { add_special_tokens: true });
  if (full.length !== bare.length + 2 || bare.some((t, k) => full[k + 1] !== t)) {
    throw new Error('tokenizer does not wrap a text in one start and one end token ([CLS] text [SEP], <s> text </s>); not supported yet');
  }
  const [clsId, sepId] = [full[0], full[full.length - 1]];
  const padId = paddingId(tok, tokenizerJson);
  if (padId === undefined) throw new Error('tokenizer has no padding token (pad_token in tokenizer_config.json, padding in tokenizer.json, [PAD] or <pad>)');
  let vocabSize = 0;
  for (const id of tok.get_vocab().values()) vocabSize = Math.max(vocabSize, id + 1);
  return {
    vocabSize,
    encode(texts, maxLength) {
      if (!Array.isArray(texts) || texts.length === 0) throw new Error('tokenizer: need at least one text');
      if (!Number.isInteger(maxLength) || maxLength < 2) throw new Error(`tokenizer: maxLength must be an integer ≥ 2, got ${maxLength}`);
      const rows = texts.map((text, k) => {
        if (typeof text !== 'string') throw new Error(`tokenizer: text ${k} is not a string`);
        return [clsId, ...tok.encode(text, { add_special_tokens: false }).slice(0, maxLength - 2), sepId];
      });
      const padded = padRows(rows, padId);
      return { ...padded, tokenTypeIds: new Uint32Array(padded.batch * padded.seq) };
    },
  };
}

/** Rows of token ids as one batch, right-padded to the longest with padId; the mask is 1 on real tokens. */
export function padRows(rows: number[][], padId: number): { inputIds: Uint32Array; attentionMask: Float32Array; batch: number; seq: number } {
  const batch = rows.length;
  const seq = Math.max(...rows.map((r) => r.length));
  const inputIds = new Uint32Array(batch * seq).fill(padId);
  const attentionMask = new Float32Array(batch * seq);
  rows.forEach((row, b) => {
    inputIds.set(row, b * seq);
    attentionMask.fill(1, b * seq, b * seq + row.length);
  });
  return { inputIds, attentionMask, batch, seq };
}
