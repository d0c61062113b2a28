/**
 * A clinician's own notes as training texts for a domain adapter: plain-text files (a dropped
 * folder's, or a few files) decoded strictly as UTF-8, each a document; documents split into chunks
 * of at most N tokens by the model's tokenizer, at paragraph, else sentence, else word boundaries;
 * and a seeded held-out split by whole documents, so that no held-out chunk shares a document (a
 * patient's letter, a day's notes) with training and perplexity on it measures what training did
 * not see.
 */
import { DataFormatError, DatasetError } from './errors.ts';
import { ContentHash } from './hash.ts';
import { Rng } from './rng.ts';

/** Share of note documents held out unless the user says (the command line's --held-out, the app's form). */
export const DEFAULT_NOTES_HELD_OUT = 0.2;

/** A file as read from disk or a dropped folder: its name (the path within the folder) and bytes. */
export interface NoteFile {
  name: string;
  bytes: Uint8Array;
}

export interface NoteDocument {
  name: string;
  text: string;
}

export interface NoteChunk {
  /** The document it comes from. */
  document: string;
  /** Its place in that document, from 0. */
  index: number;
  text: string;
  /** Its length by the counter it was cut with (the model's tokens, special ones included). */
  tokens: number;
}

/** Tokens a text takes for the model (e.g. the tokenizer's encode(text).length, with its special tokens). */
export type TokenCounter = (text: string) => number;

export interface NoteSplitOptions {
  /** Most tokens a chunk may take. */
  maxTokens: number;
  count: TokenCounter;
  /** Share of the documents held out (0 ≤ f < 1); with f > 0 at least one document is. */
  heldOutFraction: number;
  seed: number;
}

export interface NoteSplit {
  train: NoteChunk[];
  heldOut: NoteChunk[];
  /** The documents on each side, by name. */
  trainDocuments: string[];
  heldOutDocuments: string[];
}

/** A name's last path component starts with a dot: .DS_Store, ._x (macOS), .gitkeep — never notes. */
function isHidden(name: string): boolean {
  const base = name.split(/[\\/]/).pop() ?? name;
  return base.startsWith('.');
}

/** A file's text: strict UTF-8 without its byte-order mark, line ends made \n; a binary or non-UTF-8 file is refused by name. */
function noteText({ name, bytes }: NoteFile): string {
  const nul = bytes.indexOf(0);
  if (nul >= 0) throw new DataFormatError(`${name} is not a plain-text file (a zero byte at byte ${nul}): notes must be .txt-style text`);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new DataFormatError(`${name} is not UTF-8 text: save it as UTF-8 (plain text) and add it again`);
  }
  return text.replace(/^\uFEFF/, '').replace(/\r\n?/g, '\n');
}

/**
 * The files' documents, sorted by name (a folder's listing order varies by browser and system, and
 * the held-out split should not): text decoded as strict UTF-8 without its byte-order mark, line ends
 * made \n. Hidden files are skipped and whitespace-only ones dropped; a binary or non-UTF-8 file is
 * refused by name, as are two files of one name and a set with no text at all.
 */
export function decodeNoteFiles(files: readonly NoteFile[]): NoteDocument[] {
  const shown = files.filter((f) => !isHidden(f.name));
  if (shown.length === 0) throw new DataFormatError(files.length === 0 ? 'no note files were given' : `no note files: the ${files.length} given are all hidden files (names starting with ".")`);
  const names = new Set<string>();
  const documents: NoteDocument[] = [];
  for (const file of shown) {
    if (names.has(file.name)) throw new DataFormatError(`two note files are named ${file.name}`);
    names.add(file.name);
    const text = noteText(file);
    if (text.trim() !== '') documents.push({ name: file.name, text });
  }
  if (documents.length === 0) throw new DataFormatError(`no text: the ${shown.length} note file(s) given are empty`);
  return byName(documents);
}

/** A note file left out, and why (said with its name). */
export interface RefusedNote {
  name: string;
  reason: string;
}

/**
 * Files a user adds one by one or as a folder, each judged on its own (the app keeps the good ones
 * and names the others): documents as decodeNoteFiles reads them, sorted by name; refused, in the
 * order given, a file that is not UTF-8 text, an empty or whitespace-only one, and a second file of
 * a name already taken (by `existing` too, the documents added before). Hidden files are skipped
 * and counted.
 */
export function sortNoteFiles(files: readonly NoteFile[], existing: readonly NoteDocument[] = []): { documents: NoteDocument[]; refused: RefusedNote[]; hidden: number } {
  const names = new Set(existing.map((d) => d.name));
  const documents: NoteDocument[] = [];
  const refused: RefusedNote[] = [];
  let hidden = 0;
  for (const file of files) {
    if (isHidden(file.name)) {
      hidden++;
      continue;
    }
    if (names.has(file.name)) {
      refused.push({ name: file.name, reason: `${file.name} is already added` });
      continue;
    }
    try {
      const text = noteText(file);
      if (text.trim() === '') refused.push({ name: file.name, reason: `${file.name} is empty` });
      else {
        names.add(file.name);
        documents.push({ name: file.name, text });
      }
    } catch (e) {
      refused.push({ name: file.name, reason: (e as Error).message });
    }
  }
  return { documents: byName(documents), refused, hidden };
}

/** Each document's name and its text's fingerprint (what a share link carries of the notes: never their text). */
export function noteFingerprints(documents: readonly NoteDocument[]): { name: string; fingerprint: string }[] {
  return documents.map((d) => ({ name: d.name, fingerprint: new ContentHash().update(d.text).hex() }));
}

/**
 * Refuse notes that are not the ones `expected` names and fingerprints (a share link's): a note
 * missing, one more, or one whose text differs, each named, in one error.
 */
export function checkNoteFingerprints(documents: readonly NoteDocument[], expected: readonly { name: string; fingerprint: string }[]): void {
  const given = new Map(noteFingerprints(documents).map((n) => [n.name, n.fingerprint]));
  const wanted = new Set(expected.map((n) => n.name));
  const problems: string[] = [];
  const missing = expected.filter((n) => !given.has(n.name)).map((n) => n.name);
  if (missing.length) problems.push(`missing: ${missing.join(', ')}`);
  const extra = [...given.keys()].filter((name) => !wanted.has(name));
  if (extra.length) problems.push(`not in the link's run (remove them): ${extra.join(', ')}`);
  for (const n of expected) {
    const fingerprint = given.get(n.name);
    if (fingerprint !== undefined && fingerprint !== n.fingerprint) problems.push(`${n.name} is not the note the link was made with: its text has fingerprint ${fingerprint}, the link expects ${n.fingerprint}`);
  }
  if (problems.length) throw new DatasetError(`These are not the notes the link was made with: ${problems.join('; ')}. Add the same files (same names, same content).`);
}

/** Boundaries tried in turn for a text too long for one chunk, and what joins the parts again. */
const LEVELS: readonly { split: RegExp; join: string }[] = [
  { split: /\n[ \t]*\n\s*/, join: '\n\n' }, // paragraphs
  { split: /(?<=[.!?])\s+/, join: ' ' }, // sentences
  { split: /\s+/, join: ' ' }, // words
];

/**
 * `text` cut into chunks of at most `maxTokens` by `count`: whole when it fits; else its paragraphs,
 * packed greedily in order (consecutive ones share a chunk while the chunk still fits); a paragraph
 * too long for a chunk by its sentences, a sentence by its words, a word by its characters. Chunks
 * are trimmed and never empty; [] for blank text.
 */
export function chunkText(text: string, maxTokens: number, count: TokenCounter): string[] {
  if (!Number.isInteger(maxTokens) || maxTokens < 1) throw new DataFormatError(`the most tokens a chunk may take must be a whole number ≥ 1, got ${maxTokens}`);
  const fits = (t: string) => count(t) <= maxTokens;

  const pack = (parts: string[], join: string): string[] => {
    const chunks: string[] = [];
    let current = '';
    for (const part of parts) {
      const joined = current === '' ? part : current + join + part;
      // Tokens are not additive (merges across the join), so the joined text itself is counted.
      if (current === '' || fits(joined)) current = joined;
      else {
        chunks.push(current);
        current = part;
      }
    }
    if (current !== '') chunks.push(current);
    return chunks;
  };

  const characters = (word: string): string[] => {
    const chars = [...word];
    const chunks: string[] = [];
    let start = 0;
    while (start < chars.length) {
      // The longest prefix of what is left that fits (binary search on its length).
      let lo = 0;
      let hi = chars.length - start;
      while (lo < hi) {
        const mid = Math.ceil((lo + hi) / 2);
        if (fits(chars.slice(start, start + mid).join(''))) lo = mid;
        else hi = mid - 1;
      }
      if (lo === 0) throw new DataFormatError(`a chunk of at most ${maxTokens} tokens has no room for text: "${chars[start]}" alone takes ${count(chars[start])}`);
      chunks.push(chars.slice(start, start + lo).join(''));
      start += lo;
    }
    return chunks;
  };

  const pieces = (part: string, level: number): string[] => {
    if (fits(part)) return [part];
    if (level === LEVELS.length) return characters(part);
    const parts = part.split(LEVELS[level].split).map((p) => p.trim()).filter((p) => p !== '');
    if (parts.length <= 1) return pieces(part, level + 1);
    return pack(parts.flatMap((p) => pieces(p, level + 1)), LEVELS[level].join);
  };

  const trimmed = text.trim();
  return trimmed === '' ? [] : pieces(trimmed, 0);
}

/** Documents by name: the order a folder's listing gives varies, and the split should not. */
function byName(documents: readonly NoteDocument[]): NoteDocument[] {
  return [...documents].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/**
 * Whole documents split into training and held-out ones, each side in name order: a seeded shuffle
 * of the documents sorted by name (so the seed alone decides), the first max(1, round(f · documents))
 * held out when f > 0.
 */
export function splitDocuments(documents: readonly NoteDocument[], heldOutFraction: number, seed: number): { train: NoteDocument[]; heldOut: NoteDocument[] } {
  const f = heldOutFraction;
  if (!(f >= 0 && f < 1)) throw new DataFormatError(`the held-out share of documents must be at least 0 and below 1, got ${f}`);
  if (documents.length === 0) throw new DataFormatError('no text: there are no note documents to split');
  const sorted = byName(documents);
  const held = f > 0 ? Math.max(1, Math.round(f * sorted.length)) : 0;
  if (held > 0 && sorted.length < 2) throw new DataFormatError(`held-out notes are whole documents, so holding some out takes at least 2 documents; there is 1 (${sorted[0].name}): add files, or hold none out`);
  if (held >= sorted.length) throw new DataFormatError(`all ${sorted.length} documents would be held out (share ${f}), leaving none to train on: lower the held-out share or add files`);
  const heldOut = new Set(new Rng(seed).shuffle(sorted.map((_, i) => i)).slice(0, held));
  return { train: sorted.filter((_, i) => !heldOut.has(i)), heldOut: sorted.filter((_, i) => heldOut.has(i)) };
}

/** The documents split by whole documents (splitDocuments), each side cut into chunks (chunkText). */
export function splitNotes(documents: readonly NoteDocument[], options: NoteSplitOptions): NoteSplit {
  const { maxTokens, count, heldOutFraction, seed } = options;
  const sides = splitDocuments(documents, heldOutFraction, seed);
  const chunks = (docs: NoteDocument[]) => docs.flatMap((doc) => chunkText(doc.text, maxTokens, count).map((text, index) => ({ document: doc.name, index, text, tokens: count(text) })));
  return { train: chunks(sides.train), heldOut: chunks(sides.heldOut), trainDocuments: sides.train.map((d) => d.name), heldOutDocuments: sides.heldOut.map((d) => d.name) };
}
