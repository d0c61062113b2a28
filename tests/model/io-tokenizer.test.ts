import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { bertTokenizerJson, loadTokenizer } from '../../src/model/tokenizer.ts';

// Reference ids from an independent Python re-statement of BERT's tokenizer
// (tests/model/io-fixtures/make_tokenizer_reference.py), for an uncased and a cased vocabulary.
const dir = (name: string) => `tests/model/io-fixtures/tokenizer/${name}`;
const text = (path: string) => readFileSync(path, 'utf8');
const reference = (name: string) => JSON.parse(text(`${dir(name)}/reference.json`)) as { texts: string[]; ids: number[][] };

function idsOf(tok: ReturnType<typeof loadTokenizer>, texts: string[], maxLength = 512): number[][] {
  const { inputIds, attentionMask, batch, seq } = tok.encode(texts, maxLength);
  return Array.from({ length: batch }, (_, b) => Array.from(inputIds.subarray(b * seq, (b + 1) * seq)).filter((_, k) => attentionMask[b * seq + k] === 1));
}

describe('BERT tokenizer through @huggingface/transformers', () => {
  for (const variant of ['uncased', 'cased']) {
    const ref = reference(variant);
    const tokenizerConfig = text(`${dir(variant)}/tokenizer_config.json`);

    it(`${variant}: vocab.txt + tokenizer_config.json gives the reference ids on biomedical sentences`, () => {
      const tok = loadTokenizer({ vocabTxt: text(`${dir(variant)}/vocab.txt`), tokenizerConfig });
      expect(idsOf(tok, ref.texts)).toEqual(ref.ids);
    });

    it(`${variant}: tokenizer.json (HF layout) gives the same ids as vocab.txt`, () => {
      const fromJson = loadTokenizer({ tokenizerJson: text(`${dir(variant)}/tokenizer.json`), tokenizerConfig });
      const fromVocab = loadTokenizer({ vocabTxt: text(`${dir(variant)}/vocab.txt`), tokenizerConfig });
      expect(idsOf(fromJson, ref.texts)).toEqual(ref.ids);
      expect(idsOf(fromJson, ref.texts)).toEqual(idsOf(fromVocab, ref.texts));
      expect(fromJson.vocabSize).toBe(fromVocab.vocabSize);
    });
  }

  it('the tokenizer.json built from vocab.txt equals the fixture one (HF layout, written by the Python reference)', () => {
    const built = bertTokenizerJson(text(`${dir('uncased')}/vocab.txt`), JSON.parse(text(`${dir('uncased')}/tokenizer_config.json`)));
    expect(built).toEqual(JSON.parse(text(`${dir('uncased')}/tokenizer.json`)));
  });

  it('pads to the longest text, truncates keeping [CLS] … [SEP], masks padding, token types 0', () => {
    const ref = reference('uncased');
    const tok = loadTokenizer({ vocabTxt: text(`${dir('uncased')}/vocab.txt`), tokenizerConfig: text(`${dir('uncased')}/tokenizer_config.json`) });
    const texts = [ref.texts[0], ref.texts[10], ref.texts[3]]; // 16 ids, 2 ids (empty text), 47 ids
    const out = tok.encode(texts, 12);
    expect(out.batch).toBe(3);
    expect(out.seq).toBe(12);
    const rows = [0, 1, 2].map((b) => Array.from(out.inputIds.subarray(b * 12, b * 12 + 12)));
    const [first, empty, long] = [ref.ids[0], ref.ids[10], ref.ids[3]];
    expect(rows[0]).toEqual([...first.slice(0, 11), first.at(-1)]);
    expect(rows[1]).toEqual([...empty, ...Array(10).fill(0)]);
    expect(rows[2]).toEqual([...long.slice(0, 11), long.at(-1)]);
    expect(Array.from(out.attentionMask.subarray(12, 24))).toEqual([1, 1, ...Array(10).fill(0)]);
    expect(out.tokenTypeIds.every((t) => t === 0)).toBe(true);
    // Shorter batch: padded only to its own longest text.
    expect(tok.encode([ref.texts[10], ref.texts[11]], 64).seq).toBe(ref.ids[11].length);
  });

  it('reports the vocabulary size and gives clear errors', () => {
    const vocabTxt = text(`${dir('uncased')}/vocab.txt`);
    const tok = loadTokenizer({ vocabTxt });
    expect(tok.vocabSize).toBe(vocabTxt.trimEnd().split('\n').length);
    expect(() => tok.encode([], 8)).toThrow(/need at least one text/);
    expect(() => tok.encode(['a'], 1)).toThrow(/maxLength must be an integer ≥ 2/);
    expect(() => loadTokenizer({})).toThrow(/neither tokenizer\.json nor vocab\.txt/);
    expect(() => loadTokenizer({ vocabTxt: 'a\nb\n' })).toThrow(/vocab\.txt has no unk token \[UNK\]/);
    expect(() => loadTokenizer({ tokenizerJson: '{oops' })).toThrow(/tokenizer\.json is not valid JSON/);
    expect(() => loadTokenizer({ vocabTxt, tokenizerConfig: '[]' })).toThrow(/tokenizer_config\.json must be a JSON object/);
  });

  it('the fixture BERTs (vocab.txt only) tokenize with their own special ids', () => {
    const tok = loadTokenizer({ vocabTxt: text('tests/fixtures/bert/tiny/vocab.txt'), tokenizerConfig: text('tests/fixtures/bert/tiny/tokenizer_config.json') });
    const vocab = text('tests/fixtures/bert/tiny/vocab.txt').split('\n');
    const { inputIds, seq } = tok.encode(['The patient'], 16);
    expect(Array.from(inputIds.subarray(0, seq)).map((id) => vocab[id])).toEqual(['[CLS]', 'the', 'patient', '[SEP]']);
  });
});

describe('tokenizer.json of the RoBERTa family (byte-level BPE, Unigram)', () => {
  // Reference ids from an independent Python re-statement of both algorithms (tests/fixtures/subword_tokenizers.py).
  const families = [
    ['roberta', 'byte-level BPE'],
    ['xlm-roberta', 'Unigram'],
  ] as const;
  const dir = (name: string) => `tests/fixtures/families/${name}`;
  const load = (name: string, withConfig = true) =>
    loadTokenizer({ tokenizerJson: text(`${dir(name)}/tokenizer.json`), ...(withConfig ? { tokenizerConfig: text(`${dir(name)}/tokenizer_config.json`) } : {}) });

  for (const [name, kind] of families) {
    const ref = JSON.parse(text(`${dir(name)}/tokenizer_reference.json`)) as { texts: string[]; ids: number[][] };

    it(`${name} (${kind}): the reference ids, wrapped in <s> … </s>`, () => {
      expect(idsOf(load(name), ref.texts)).toEqual(ref.ids);
    });

    it(`${name}: pads with <pad> (also without tokenizer_config.json) and truncates keeping </s>`, () => {
      for (const tok of [load(name), load(name, false)]) {
        const out = tok.encode([ref.texts[1], ref.texts[7]], 6);
        expect(Array.from(out.inputIds.subarray(0, 6))).toEqual([...ref.ids[1].slice(0, 5), 2]);
        expect(Array.from(out.inputIds.subarray(6 + ref.ids[7].length, 12))).toEqual(Array(6 - ref.ids[7].length).fill(1));
      }
    });
  }
});
