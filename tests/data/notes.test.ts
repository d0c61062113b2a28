import { describe, expect, it } from 'vitest';
import { DataFormatError } from '../../src/data/errors.ts';
import { type NoteDocument, chunkText, decodeNoteFiles, sortNoteFiles, splitNotes } from '../../src/data/notes.ts';
import { loadDecoderTokenizer } from '../../src/model/decoder-tokenizer.ts';
import { byteLevelTokenizer } from '../../src/model/tiny-byte-tokenizer.ts';

const utf8 = (text: string) => new TextEncoder().encode(text);
/** One token per whitespace-separated word, plus one for a BOS, as a decoder's count has. */
const words = (text: string) => text.split(/\s+/).filter(Boolean).length + 1;

describe('decodeNoteFiles', () => {
  it('decodes UTF-8 (no BOM, \\n line ends), drops blank files, skips hidden ones and sorts by name', () => {
    const docs = decodeNoteFiles([
      { name: 'notes/b.txt', bytes: utf8('\uFEFFDyspnoea on exertion.\r\nNo oedema.\r\n') },
      { name: 'notes/.DS_Store', bytes: new Uint8Array([0, 0, 1, 0]) },
      { name: 'notes/empty.txt', bytes: utf8(' \n\t\n') },
      { name: 'notes/a.txt', bytes: utf8('Échocardiographie : FEVG 35 %.') },
    ]);
    expect(docs).toEqual([
      { name: 'notes/a.txt', text: 'Échocardiographie : FEVG 35 %.' },
      { name: 'notes/b.txt', text: 'Dyspnoea on exertion.\nNo oedema.\n' },
    ]);
  });

  it('refuses binary and non-UTF-8 files by name, duplicate names, and sets without text', () => {
    const refusal = (files: { name: string; bytes: Uint8Array }[]) => {
      try {
        decodeNoteFiles(files);
      } catch (e) {
        expect(e).toBeInstanceOf(DataFormatError);
        return (e as Error).message;
      }
      throw new Error('accepted');
    };
    expect(refusal([{ name: 'scan.pdf', bytes: new Uint8Array([0x25, 0x50, 0x44, 0x46, 0, 1]) }])).toBe('scan.pdf is not a plain-text file (a zero byte at byte 4): notes must be .txt-style text');
    expect(refusal([{ name: 'latin1.txt', bytes: new Uint8Array([0x63, 0x61, 0x66, 0xe9]) }])).toBe('latin1.txt is not UTF-8 text: save it as UTF-8 (plain text) and add it again');
    expect(refusal([{ name: 'a.txt', bytes: utf8('x') }, { name: 'a.txt', bytes: utf8('y') }])).toBe('two note files are named a.txt');
    expect(refusal([{ name: 'a.txt', bytes: utf8('\n\n') }])).toBe('no text: the 1 note file(s) given are empty');
    expect(refusal([])).toBe('no note files were given');
    expect(refusal([{ name: 'd/.hidden', bytes: utf8('text') }])).toBe('no note files: the 1 given are all hidden files (names starting with ".")');
  });
});

describe('sortNoteFiles', () => {
  it('keeps the good files sorted by name and refuses each bad one by name, counting hidden files', () => {
    const { documents, refused, hidden } = sortNoteFiles(
      [
        { name: 'n/b.txt', bytes: utf8('Review in clinic.\r\n') },
        { name: 'n/latin1.txt', bytes: new Uint8Array([0x63, 0x61, 0x66, 0xe9]) },
        { name: 'n/.DS_Store', bytes: new Uint8Array([0, 1]) },
        { name: 'n/blank.txt', bytes: utf8(' \n') },
        { name: 'n/scan.pdf', bytes: new Uint8Array([0x25, 0, 1]) },
        { name: 'n/a.txt', bytes: utf8('\uFEFFChest pain.') },
        { name: 'n/old.txt', bytes: utf8('again') },
      ],
      [{ name: 'n/old.txt', text: 'added before' }],
    );
    expect(documents).toEqual([
      { name: 'n/a.txt', text: 'Chest pain.' },
      { name: 'n/b.txt', text: 'Review in clinic.\n' },
    ]);
    expect(refused).toEqual([
      { name: 'n/latin1.txt', reason: 'n/latin1.txt is not UTF-8 text: save it as UTF-8 (plain text) and add it again' },
      { name: 'n/blank.txt', reason: 'n/blank.txt is empty' },
      { name: 'n/scan.pdf', reason: 'n/scan.pdf is not a plain-text file (a zero byte at byte 1): notes must be .txt-style text' },
      { name: 'n/old.txt', reason: 'n/old.txt is already added' },
    ]);
    expect(hidden).toBe(1);
  });
});

describe('chunkText', () => {
  it('keeps a text that fits whole, and packs paragraphs greedily in order', () => {
    expect(chunkText('  one two three  ', 10, words)).toEqual(['one two three']);
    expect(chunkText('\n \n', 10, words)).toEqual([]);
    // Paragraphs of 3, 2, 4 and 1 words; 6 tokens = 5 words + BOS.
    const text = 'a b c\n\nd e\n \nf g h i\n\nj';
    expect(chunkText(text, 6, words)).toEqual(['a b c\n\nd e', 'f g h i\n\nj']);
  });

  it('cuts a long paragraph at sentences, a long sentence at words, a long word at characters', () => {
    const paragraph = 'Chest pain at rest. ECG normal! Troponin negative twice over six hours. Discharged?';
    const chunks = chunkText(paragraph, 6, words);
    expect(chunks).toEqual(['Chest pain at rest.', 'ECG normal!', 'Troponin negative twice over six', 'hours. Discharged?']);
    const characters = (t: string) => [...t].length;
    expect(chunkText('abcdefg', 3, characters)).toEqual(['abc', 'def', 'g']);
    for (const c of chunks) expect(words(c)).toBeLessThanOrEqual(6);
  });

  it('never exceeds the limit by a real tokenizer and loses no word', () => {
    const tokenizer = loadDecoderTokenizer({ tokenizerJson: byteLevelTokenizer({ bosTemplate: true }).tokenizerJson, tokenizerConfig: byteLevelTokenizer({ bosTemplate: true }).tokenizerConfig() });
    const count = (t: string) => tokenizer.encode(t).length;
    const text = 'The patient is a 64-year-old man with heart failure.\n\nHe is on furosemide; the oedema is better. Next review in two weeks.\n\nSupercalifragilisticexpialidocious.';
    for (const max of [8, 16, 40]) {
      const chunks = chunkText(text, max, count);
      for (const c of chunks) expect(count(c), c).toBeLessThanOrEqual(max);
      expect(chunks.join(' ').replace(/\s+/g, '')).toBe(text.replace(/\s+/g, ''));
    }
  });

  it('refuses a limit that leaves no room for text', () => {
    expect(() => chunkText('abc', 1, words)).toThrow('a chunk of at most 1 tokens has no room for text: "a" alone takes 2');
    expect(() => chunkText('abc', 0, words)).toThrow('whole number ≥ 1, got 0');
  });
});

describe('splitNotes', () => {
  const docs: NoteDocument[] = Array.from({ length: 10 }, (_, i) => ({ name: `note-${i}.txt`, text: `First paragraph of note ${i}.\n\nSecond paragraph of note ${i}, a little longer.` }));
  const options = { maxTokens: 10, count: words, heldOutFraction: 0.2, seed: 3 };

  it('holds out whole documents, seeded, whatever order the documents come in', () => {
    const split = splitNotes(docs, options);
    expect(split.heldOutDocuments).toHaveLength(2);
    expect(split.trainDocuments).toHaveLength(8);
    const heldOut = new Set(split.heldOutDocuments);
    expect(split.train.every((c) => !heldOut.has(c.document))).toBe(true);
    expect(split.heldOut.every((c) => heldOut.has(c.document))).toBe(true);
    expect(split.train.length + split.heldOut.length).toBe(20); // two chunks a document
    expect(split.heldOut.map((c) => c.index).sort()).toEqual([0, 0, 1, 1]);
    for (const c of [...split.train, ...split.heldOut]) expect(c.tokens).toBe(words(c.text));
    expect(splitNotes([...docs].reverse(), options)).toEqual(split);
    const others = [4, 5, 6, 7].map((seed) => splitNotes(docs, { ...options, seed }).heldOutDocuments.join());
    expect(new Set(others).size).toBeGreaterThan(1);
  });

  it('holds out at least one document when asked, none at share 0', () => {
    expect(splitNotes(docs.slice(0, 3), { ...options, heldOutFraction: 0.01 }).heldOutDocuments).toHaveLength(1);
    const none = splitNotes(docs.slice(0, 3), { ...options, heldOutFraction: 0 });
    expect(none.heldOut).toEqual([]);
    expect(none.trainDocuments).toHaveLength(3);
  });

  it('refuses a split that leaves a side empty or a share out of range', () => {
    expect(() => splitNotes(docs.slice(0, 1), options)).toThrow('holding some out takes at least 2 documents; there is 1 (note-0.txt)');
    expect(() => splitNotes(docs.slice(0, 2), { ...options, heldOutFraction: 0.9 })).toThrow('all 2 documents would be held out (share 0.9), leaving none to train on');
    expect(() => splitNotes(docs, { ...options, heldOutFraction: 1 })).toThrow('must be at least 0 and below 1, got 1');
    expect(() => splitNotes([], options)).toThrow('no text');
  });
});
