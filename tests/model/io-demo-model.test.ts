import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { basicWords, buildVocab, makeDemoModel, textsFromFile } from '../../scripts/make-demo-model.ts';
import { loadModelFiles } from '../../src/model/checkpoint.ts';
import { fileMapSource } from '../../src/model/file-source.ts';
import { loadTokenizer } from '../../src/model/tokenizer.ts';
import { tempDir } from '../helpers/temp-dir.ts';

const TEXTS = (JSON.parse(readFileSync('tests/model/io-fixtures/tokenizer/uncased/reference.json', 'utf8')) as { texts: string[] }).texts;

const asBlobs = (files: Record<string, string | Uint8Array>) =>
  new Map(Object.entries(files).map(([name, content]) => [name, new Blob([content as string | Uint8Array<ArrayBuffer>])]));

describe('demo model script', () => {
  it('builds a loadable random BERT whose tokenizer.json and vocab.txt agree, well under 2 MB', async () => {
    const files = makeDemoModel(TEXTS, { seed: 1, vocabSize: 2000, sources: ['reference.json'] });
    const model = await loadModelFiles(fileMapSource(asBlobs(files), 'demo'));
    expect(model.config).toMatchObject({ hiddenSize: 64, numHiddenLayers: 2, numAttentionHeads: 4, intermediateSize: 128 });
    expect(model.source.files).toContain('tokenizer.json');
    // A sentence-transformers folder, so the app reads its settings (and finds every file it asks for offline).
    expect(model.sentence).toMatchObject({ pooling: 'mean', normalize: true, maxSeqLength: 64, lowercase: false, prompts: {}, unsupported: [] });
    const size = Object.values(files).reduce((n, c) => n + (typeof c === 'string' ? c.length : c.byteLength), 0);
    expect(size).toBeLessThan(2e6);
    const fromVocab = loadTokenizer({ vocabTxt: files['vocab.txt'] as string, tokenizerConfig: files['tokenizer_config.json'] as string });
    const a = model.tokenizer.encode(TEXTS.slice(0, 9), 64);
    expect(a.inputIds).toEqual(fromVocab.encode(TEXTS.slice(0, 9), 64).inputIds);
    // Every character of the texts is in the vocabulary, so no word of these texts becomes [UNK].
    const unk = 1;
    expect(Array.from(a.inputIds).filter((id) => id === unk)).toHaveLength(0);
    expect(files['README.md']).toMatch(/random-weights smoke-test model[\s\S]*\*\*This is not a trained model\.\*\*/);
    const embeddings = model.weights.get('embeddings.word_embeddings.weight')!;
    expect(Array.from(embeddings.data.subarray(0, 64)).every((v) => v === 0)).toBe(true); // [PAD] row
  });

  it('is deterministic for a seed and changes with it', () => {
    const a = makeDemoModel(TEXTS, { seed: 7, vocabSize: 500, sources: [] });
    const b = makeDemoModel(TEXTS, { seed: 7, vocabSize: 500, sources: [] });
    const c = makeDemoModel(TEXTS, { seed: 8, vocabSize: 500, sources: [] });
    expect(a).toEqual(b);
    expect(a['model.safetensors']).not.toEqual(c['model.safetensors']);
    expect(a['vocab.txt']).toEqual(c['vocab.txt']);
  });

  it('builds the vocabulary: specials, characters (word-initial and ##), then frequent words', () => {
    expect(basicWords('Café-au-lait: TNF-α, 5%')).toEqual(['cafe', '-', 'au', '-', 'lait', ':', 'tnf', '-', 'α', ',', '5', '%']);
    const vocab = buildVocab(['the cell the cell the gene', 'gene x'], 100);
    expect(vocab.slice(0, 5)).toEqual(['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]']);
    expect(vocab).toContain('##x');
    expect(vocab.slice(-3)).toEqual(['the', 'cell', 'gene']);
    expect(() => buildVocab(['abcdefghij'], 20)).toThrow(/10 distinct characters; a vocabulary of 20 cannot hold them/);
  });

  it('reads texts from txt, csv (after the header) and jsonl (string values)', () => {
    expect(textsFromFile('a.txt', 'one\ntwo')).toEqual(['one\ntwo']);
    expect(textsFromFile('a.csv', 'text_a,text_b,label\nx,y,1\n')).toEqual(['x,y,1', '']);
    expect(textsFromFile('a.jsonl', '{"anchor":"p53","positive":"tumor","n":1}\n\n{"anchor":"x"}\n')).toEqual(['p53', 'tumor', 'x']);
  });

  it('runs as a script and writes the model folder', () => {
    const dir = tempDir('demo-model-');
    writeFileSync(join(dir, 'texts.txt'), TEXTS.join('\n'));
    execFileSync(process.execPath, ['--import', 'tsx', 'scripts/make-demo-model.ts', '--out', join(dir, 'out'), '--seed', '3', join(dir, 'texts.txt')], { stdio: 'pipe' });
    expect(readdirSync(join(dir, 'out')).sort()).toEqual([
      '1_Pooling',
      'README.md',
      'config.json',
      'config_sentence_transformers.json',
      'model.safetensors',
      'modules.json',
      'sentence_bert_config.json',
      'special_tokens_map.json',
      'tokenizer.json',
      'tokenizer_config.json',
      'vocab.txt',
    ]);
    expect(readdirSync(join(dir, 'out', '1_Pooling'))).toEqual(['config.json']);
    const again = makeDemoModel([TEXTS.join('\n')], { seed: 3, vocabSize: 2000, sources: ['texts.txt'] });
    expect(new Uint8Array(readFileSync(join(dir, 'out', 'model.safetensors')))).toEqual(again['model.safetensors']);
  });
});
