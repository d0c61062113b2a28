/**
 * A tiny byte-level BPE tokenizer.json in the layout of Llama 3's and Qwen2's (GPT-2 byte-to-unicode
 * alphabet, ByteLevel pre-tokenizer and decoder, a few merges, special tokens after the vocabulary),
 * with Llama 3's "<|begin_of_text|> $A" template or none (Qwen2), and a chat template in
 * tokenizer_config.json. For the bundled demo decoder and the tests, which cannot download a real one.
 */

/** GPT-2's bytes_to_unicode: printable bytes stand for themselves, the rest for code points from 256 on. */
export function byteAlphabet(): string[] {
  const printable = (b: number) => (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
  let next = 256;
  return Array.from({ length: 256 }, (_, b) => String.fromCodePoint(printable(b) ? b : next++));
}

const MERGES: [string, string][] = [
  ['Ġ', 't'],
  ['h', 'e'],
  ['Ġt', 'he'],
  ['i', 's'],
  ['Ġ', 'is'],
  ['Ġ', 'a'],
  ['Ġa', 's'],
];

export const SPECIAL = { bos: '<|begin_of_text|>', eos: '<|end_of_text|>', eot: '<|eot_id|>', header: '<|start_header_id|>', headerEnd: '<|end_header_id|>' };

/** Llama 3's chat template, shortened (no tools, no date): header, content, <|eot_id|> per message. */
export const CHAT_TEMPLATE =
  "{{ bos_token }}{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}";

export function byteLevelTokenizer(options: { bosTemplate: boolean }): { tokenizerJson: string; tokenizerConfig: (extra?: Record<string, unknown>) => string } {
  const vocab: Record<string, number> = {};
  for (const ch of byteAlphabet()) vocab[ch] = Object.keys(vocab).length;
  for (const [a, b] of MERGES) vocab[a + b] = Object.keys(vocab).length;
  const specials = Object.values(SPECIAL);
  const firstSpecial = Object.keys(vocab).length;
  const id = (token: string) => firstSpecial + specials.indexOf(token);
  const json = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: specials.map((content) => ({ id: id(content), content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: options.bosTemplate
      ? {
          type: 'TemplateProcessing',
          single: [{ SpecialToken: { id: SPECIAL.bos, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
          pair: [{ SpecialToken: { id: SPECIAL.bos, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { Sequence: { id: 'B', type_id: 1 } }],
          special_tokens: { [SPECIAL.bos]: { id: SPECIAL.bos, ids: [id(SPECIAL.bos)], tokens: [SPECIAL.bos] } },
        }
      : { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: true },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab, merges: MERGES.map(([a, b]) => `${a} ${b}`) },
  };
  const tokenizerConfig = (extra: Record<string, unknown> = {}) =>
    JSON.stringify({ bos_token: SPECIAL.bos, eos_token: options.bosTemplate ? SPECIAL.eot : SPECIAL.eos, chat_template: CHAT_TEMPLATE, model_max_length: 131072, tokenizer_class: 'PreTrainedTokenizerFast', ...extra });
  return { tokenizerJson: JSON.stringify(json), tokenizerConfig };
}
