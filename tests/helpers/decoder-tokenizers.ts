/**
 * Tiny tokenizer.json files for decoders: the byte-level one the demo decoder ships with
 * (src/model/tiny-byte-tokenizer.ts) and a SentencePiece-style one. Written here because tests
 * cannot download a real one.
 */
export { SPECIAL, byteAlphabet, byteLevelTokenizer } from '../../src/model/tiny-byte-tokenizer.ts';

/**
 * A tiny SentencePiece-style BPE tokenizer.json in the layout of Mistral's and Phi-3's (Llama 2's):
 * spaces as ▁ with one prepended, byte fallback to <0xNN> tokens for characters outside the
 * vocabulary, and a "<s> $A" template.
 */
export function sentencePieceTokenizer(): { tokenizerJson: string; tokenizerConfig: string } {
  const vocab: Record<string, number> = { '<unk>': 0, '<s>': 1, '</s>': 2 };
  for (let b = 0; b < 256; b++) vocab[`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`] = 3 + b;
  const pieces = ['▁', 't', 'h', 'e', 'a', 'i', 's', 'c', 'n', 'r', 'th', '▁the', '▁a', '▁is', 'er', '▁can', 'ca', 'an', 'nc', 'ce', '▁c'];
  for (const p of pieces) vocab[p] = Object.keys(vocab).length;
  const merges = ['t h', '▁ th', '▁th e', '▁ a', 'i s', '▁ is', 'e r', '▁ c', '▁c a', '▁ca n'];
  const json = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: ['<unk>', '<s>', '</s>'].map((content, id) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
    normalizer: { type: 'Sequence', normalizers: [{ type: 'Prepend', prepend: '▁' }, { type: 'Replace', pattern: { String: ' ' }, content: '▁' }] },
    pre_tokenizer: null,
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '<s>', type_id: 1 } }, { Sequence: { id: 'B', type_id: 1 } }],
      special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] } },
    },
    decoder: {
      type: 'Sequence',
      decoders: [{ type: 'Replace', pattern: { String: '▁' }, content: ' ' }, { type: 'ByteFallback' }, { type: 'Fuse' }, { type: 'Strip', content: ' ', start: 1, stop: 0 }],
    },
    model: { type: 'BPE', dropout: null, unk_token: '<unk>', continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: true, byte_fallback: true, ignore_merges: false, vocab, merges },
  };
  const tokenizerConfig = { bos_token: '<s>', eos_token: '</s>', unk_token: '<unk>', add_bos_token: true, add_eos_token: false, chat_template: "{{ bos_token }}{% for message in messages %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% endfor %}" };
  return { tokenizerJson: JSON.stringify(json), tokenizerConfig: JSON.stringify(tokenizerConfig) };
}
