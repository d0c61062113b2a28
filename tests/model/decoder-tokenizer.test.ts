/**
 * Decoder tokenizers on tiny tokenizer.json files (tests/helpers/decoder-tokenizers.ts): byte-level BPE in
 * Llama 3's layout (a <|begin_of_text|> template, eos <|eot_id|>, no pad token) and Qwen2's (no template
 * tokens), SentencePiece-style BPE with byte fallback in Mistral's and Phi-3's, truncation that keeps the template's tokens, right padding, byte-exact decoding, and the
 * chat template.
 */
import { describe, expect, it } from 'vitest';
import { loadDecoderTokenizer } from '../../src/model/decoder-tokenizer.ts';
import { SPECIAL, byteLevelTokenizer, sentencePieceTokenizer } from '../helpers/decoder-tokenizers.ts';

const llama3 = byteLevelTokenizer({ bosTemplate: true });
const qwen = byteLevelTokenizer({ bosTemplate: false });
// 256 byte tokens, 7 merges, then the special tokens in SPECIAL's order.
const BOS = 263;
const EOT = 265;

describe('decoder tokenizer', () => {
  it('Llama 3 layout: BOS first, merges applied, bytes of any text decode back exactly', () => {
    const tok = loadDecoderTokenizer({ tokenizerJson: llama3.tokenizerJson, tokenizerConfig: llama3.tokenizerConfig() });
    expect(tok).toMatchObject({ prefixIds: [BOS], suffixIds: [], eosId: EOT, padId: EOT, vocabSize: 268 });
    // "the" = t + he; " is" = Ġis; " a" = Ġa; " tea" = Ġt e a.
    expect(tok.encode('the is a tea')).toEqual([BOS, 116, 257, 260, 261, 256, 101, 97]);
    const text = 'Gène TP53 — is associated with 🧬\n\tcancer';
    expect(tok.decode(tok.encode(text), { skipSpecialTokens: true })).toBe(text);
    expect(tok.decode(tok.encode(text))).toBe(`${SPECIAL.bos}${text}`);
  });

  it('batches: truncation keeps BOS, padding on the right with eos, masked', () => {
    const tok = loadDecoderTokenizer({ tokenizerJson: llama3.tokenizerJson, tokenizerConfig: llama3.tokenizerConfig() });
    const { inputIds, attentionMask, batch, seq } = tok.encodeBatch(['the is a tea', 'a'], 4);
    expect([batch, seq]).toEqual([2, 4]);
    expect([...inputIds]).toEqual([BOS, 116, 257, 260, BOS, 97, EOT, EOT]);
    expect([...attentionMask]).toEqual([1, 1, 1, 1, 1, 1, 0, 0]);
    expect(() => tok.encodeBatch(['a'], 1)).toThrow(/maxLength must be an integer leaving room for a token after 1 special ones, got 1/);
  });

  it('Qwen2 layout: no template tokens; pad_token when tokenizer_config.json names one', () => {
    const tok = loadDecoderTokenizer({ tokenizerJson: qwen.tokenizerJson, tokenizerConfig: qwen.tokenizerConfig({ pad_token: SPECIAL.eot }) });
    expect(tok).toMatchObject({ prefixIds: [], suffixIds: [], eosId: 264, padId: EOT });
    expect(tok.encode('the')).toEqual([116, 257]);
  });

  it('chat template: rendered once, its special tokens read as such and not doubled', () => {
    const tok = loadDecoderTokenizer({ tokenizerJson: llama3.tokenizerJson, tokenizerConfig: llama3.tokenizerConfig() });
    const { text, ids } = tok.applyChatTemplate([{ role: 'user', content: ' the ' }], { addGenerationPrompt: true });
    expect(text).toBe(`${SPECIAL.bos}${SPECIAL.header}user${SPECIAL.headerEnd}\n\nthe${SPECIAL.eot}${SPECIAL.header}assistant${SPECIAL.headerEnd}\n\n`);
    expect(ids.filter((id) => id === BOS)).toHaveLength(1);
    expect(ids.slice(0, 2)).toEqual([BOS, 266]);
    expect(tok.decode(ids)).toBe(text);
    const plain = loadDecoderTokenizer({ tokenizerJson: qwen.tokenizerJson, tokenizerConfig: JSON.stringify({ eos_token: SPECIAL.eos }) });
    expect(plain.hasChatTemplate).toBe(false);
    expect(() => plain.applyChatTemplate([{ role: 'user', content: 'x' }])).toThrow('tokenizer_config.json has no chat_template');
  });

  it('a tokenizer with nothing to pad with is refused', () => {
    expect(() => loadDecoderTokenizer({ tokenizerJson: qwen.tokenizerJson, tokenizerConfig: '{}' })).toThrow(/neither pad_token nor eos_token/);
  });

  it('SentencePiece-style (Mistral, Phi-3): ▁ for spaces, <s> first, byte fallback for unknown characters', () => {
    const sp = sentencePieceTokenizer();
    const tok = loadDecoderTokenizer(sp);
    expect(tok).toMatchObject({ prefixIds: [1], suffixIds: [], eosId: 2, padId: 2 });
    // ▁the, ▁can c er, ▁is, ▁ then é as its two UTF-8 bytes <0xC3> <0xA9>.
    expect(tok.encode('the cancer is é')).toEqual([1, 270, 274, 266, 273, 272, 259, 3 + 0xc3, 3 + 0xa9]);
    expect(tok.decode(tok.encode('the cancer is é'), { skipSpecialTokens: true })).toBe('the cancer is é');
    expect(tok.applyChatTemplate([{ role: 'user', content: 'the' }]).text).toBe('<s>[INST] the [/INST]');
  });
});
