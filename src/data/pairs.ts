/**
 * Text-pair files: CSV, TSV (with a header row) or JSON Lines, in one of two layouts.
 *  - triplets: anchor, positive and optional negatives (a `negative` column, `negative_1..n`
 *    columns, or a `negatives` list), including CardioEmbed's JSONL {anchor, positive, negatives[], metadata};
 *  - labelled pairs: text_a, text_b, label in [0, 1] (plus an optional category column).
 * Column names follow sentence-transformers' usual ones (sentence1/sentence2/score,
 * query/positive/negative, premise/hypothesis/label, question1/question2/is_duplicate, ...).
 */
import { DataFormatError } from './errors.ts';
import { type BadRow, BadRowLog, badRow, peek, readRecords, splitCsv } from './text.ts';

export interface TripletRow {
  kind: 'triplet';
  line: number;
  anchor: string;
  positive: string;
  negatives: string[];
  /** A JSONL record's `metadata` object, kept as is. */
  metadata?: unknown;
}

export interface LabelledRow {
  kind: 'labelled';
  line: number;
  textA: string;
  textB: string;
  /** 1 = similar/related, 0 = not; graded scores in between. */
  label: number;
  /** An optional category column (e.g. similar / different / negation in an evaluation set). */
  group?: string;
}

export type PairRow = TripletRow | LabelledRow;
export type PairLayout = 'triplets' | 'labelled';
export type PairFormat = 'csv' | 'tsv' | 'jsonl';

export interface PairChunk {
  rows: PairRow[];
  bad: BadRow[];
  /** Resume point after this chunk (see RecordChunk). */
  nextLine: number;
}

export interface PairHeader {
  format: PairFormat;
  layout: PairLayout;
}

const LABEL = ['label', 'score', 'similarity', 'similarity_score', 'relatedness_score', 'gold_label', 'is_duplicate'];
const TEXT_A = ['text_a', 'sentence1', 'sentence_a', 'sentence_1', 's1', 'text1', 'premise', 'question1', 'anchor', 'query', 'question'];
const TEXT_B = ['text_b', 'sentence2', 'sentence_b', 'sentence_2', 's2', 'text2', 'hypothesis', 'question2', 'positive', 'answer', 'document', 'passage', 'response'];
const GROUP = ['category', 'group', 'type'];
const ANCHOR = ['anchor', 'query', 'question', 'sentence1', 'sentence_a', 'text_a', 'text1', 'premise'];
const POSITIVE = ['positive', 'pos', 'answer', 'document', 'passage', 'response', 'sentence2', 'sentence_b', 'text_b', 'text2', 'hypothesis'];
const NEGATIVE = /^(negatives?|neg|hard_negatives?)(_?\d+)?$/;
const TEXT_LABELS: Record<string, number> = { entailment: 1, contradiction: 0, true: 1, false: 0, yes: 1, no: 0 };

/** Where each role's value is found: a column index (CSV/TSV) or a key (JSONL). */
interface Roles<K> {
  layout: PairLayout;
  a: K;
  b: K;
  label?: K;
  group?: K;
  negatives: K[];
}

function rolesOf<K>(names: string[], keys: K[], describe: string): Roles<K> {
  const lower = names.map((n) => n.trim().toLowerCase());
  const find = (aliases: string[]) => {
    for (const alias of aliases) {
      const i = lower.indexOf(alias);
      if (i >= 0) return i;
    }
    return -1;
  };
  const label = find(LABEL);
  if (label >= 0) {
    const a = find(TEXT_A);
    const b = find(TEXT_B.filter((n) => n !== lower[a]));
    if (a >= 0 && b >= 0) {
      const group = find(GROUP);
      return { layout: 'labelled', a: keys[a], b: keys[b], label: keys[label], group: group >= 0 ? keys[group] : undefined, negatives: [] };
    }
  }
  const a = find(ANCHOR);
  const b = find(POSITIVE.filter((n) => n !== lower[a]));
  if (a >= 0 && b >= 0) {
    const negatives = lower.flatMap((n, i) => (NEGATIVE.test(n) ? [keys[i]] : []));
    return { layout: 'triplets', a: keys[a], b: keys[b], negatives };
  }
  throw new DataFormatError(
    `Cannot tell the text columns of this pair file (${describe}: ${names.join(', ')}). Use anchor, positive[, negative | negatives] ` +
      'for pairs, or text_a, text_b, label for labelled pairs (sentence-transformers names such as sentence1/sentence2/score, ' +
      'query/positive/negative and premise/hypothesis/label also work).',
  );
}

/**
 * A JSONL record's roles: the text and label keys of the first record, and the optional keys
 * (negatives, category) of this one, which need not carry the same optional keys as the first.
 */
function optionalKeysOf(roles: Roles<string>, record: Record<string, unknown>): Roles<string> {
  const names = Object.keys(record);
  const lower = names.map((n) => n.trim().toLowerCase());
  if (roles.layout === 'triplets') return { ...roles, negatives: names.filter((_, i) => NEGATIVE.test(lower[i])) };
  const group = GROUP.map((alias) => lower.indexOf(alias)).find((i) => i >= 0);
  return { ...roles, group: group === undefined ? undefined : names[group] };
}

function labelOf(value: unknown): number | string {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 && value <= 1 ? value : `label ${value} is outside [0, 1] (scale scores to 0–1)`;
  if (typeof value === 'boolean') return value ? 1 : 0;
  const text = String(value ?? '').trim().toLowerCase();
  if (text in TEXT_LABELS) return TEXT_LABELS[text];
  if (text === 'neutral') return 'label "neutral" has no 0/1 meaning';
  const n = text === '' ? NaN : Number(text);
  return Number.isFinite(n) ? labelOf(n) : `label "${String(value)}" is not a number`;
}

function textOf(value: unknown): string | null {
  if (typeof value !== 'string') return null;
  const t = value.trim();
  return t === '' ? null : t;
}

/** "a number", "a list", "an object"... for messages about a JSON value of the wrong type. */
function jsonType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

/** A text field (JSONL values must be strings; CSV/TSV cells always are), or what is wrong with it. */
function textField(value: unknown, name: string): string | { problem: string } {
  if (value !== undefined && value !== null && typeof value !== 'string') return { problem: `${name} must be a string, got ${jsonType(value)}` };
  return textOf(value) ?? { problem: `empty ${name}` };
}

/** JSONL keys that hold a list of negatives (`negative`, `neg_2`... hold one). */
const NEGATIVE_LIST = /^(hard_)?negatives$/i;

/**
 * The negatives in a row, empty ones dropped: a JSONL list key's list of strings, a JSONL single
 * key's string (or list), or a CSV/TSV cell holding one text or a JSON list.
 */
function negativesOf<K>(keys: K[], get: (k: K) => unknown): string[] | string {
  const out: string[] = [];
  for (const key of keys) {
    const v = get(key);
    let items: unknown = v;
    if (typeof key === 'string' && NEGATIVE_LIST.test(key) && v !== null && v !== undefined && !Array.isArray(v)) {
      return `${key} must be a list of strings, got ${jsonType(v)}`;
    }
    if (typeof v === 'string' && v.trim().startsWith('[')) {
      try {
        items = JSON.parse(v);
      } catch {
        return 'negatives cell is not a valid JSON list';
      }
    }
    const list = Array.isArray(items) ? items : [items];
    for (const [i, item] of list.entries()) {
      if (item === null || item === undefined || item === '') continue;
      const t = textOf(item);
      if (t === null) return Array.isArray(items) ? `negatives must be a list of strings, but item ${i + 1} is ${jsonType(item)}` : `a negative must be a string, got ${jsonType(item)}`;
      out.push(t);
    }
  }
  return out;
}

function rowOf<K>(line: number, roles: Roles<K>, get: (k: K) => unknown, metadata?: unknown): PairRow | string {
  const names = roles.layout === 'labelled' ? ['first text', 'second text'] : ['anchor', 'positive'];
  const a = textField(get(roles.a), names[0]);
  if (typeof a !== 'string') return a.problem;
  const b = textField(get(roles.b), names[1]);
  if (typeof b !== 'string') return b.problem;
  if (roles.layout === 'labelled') {
    const label = labelOf(get(roles.label as K));
    if (typeof label === 'string') return label;
    const group = roles.group === undefined ? undefined : textOf(get(roles.group)) ?? undefined;
    return { kind: 'labelled', line, textA: a, textB: b, label, ...(group !== undefined ? { group } : {}) };
  }
  const negatives = negativesOf(roles.negatives, get);
  if (typeof negatives === 'string') return negatives;
  return { kind: 'triplet', line, anchor: a, positive: b, negatives, ...(metadata !== undefined ? { metadata } : {}) };
}

/** JSON Lines when the first non-blank character opens an object; TSV when the first line has a tab. */
export function detectPairFormat(head: string): PairFormat {
  const text = head.replace(/^\uFEFF/, '').trimStart();
  if (text.startsWith('{')) return 'jsonl';
  const firstLine = text.split('\n', 1)[0];
  return firstLine.includes('\t') ? 'tsv' : 'csv';
}

/**
 * Rows of a pair file. The first chunk yielded carries the detected format and layout in `header`.
 * Bad rows are reported with line numbers and never stop the parse; a file whose columns cannot be
 * mapped raises DataFormatError.
 */
export async function* parsePairs(
  bytes: ReadableStream<Uint8Array>,
  options: { skipBeforeLine?: number } = {},
): AsyncGenerator<PairChunk & { header: PairHeader }> {
  const skipBefore = options.skipBeforeLine ?? 0;
  const peeked = await peek(bytes, 4096);
  const format = detectPairFormat(new TextDecoder().decode(peeked.head));
  let columns: Roles<number> | null = null;
  let keys: Roles<string> | null = null;
  let header: PairHeader | null = null;
  let good = 0;
  const badRows = new BadRowLog(3);
  for await (const chunk of readRecords(peeked.stream, { multiline: format === 'csv' })) {
    const out: PairChunk = { rows: [], bad: chunk.bad, nextLine: chunk.nextLine };
    badRows.add(chunk.bad);
    for (const { text, line } of chunk.records) {
      if (text.trim() === '') continue;
      let row: PairRow | string;
      if (format === 'jsonl') {
        let value: unknown;
        try {
          value = JSON.parse(text);
        } catch (e) {
          value = (e as Error).message;
        }
        if (value === null || typeof value !== 'object' || Array.isArray(value)) {
          row = typeof value === 'string' ? `not valid JSON (${value})` : 'not a JSON object';
        } else {
          const record = value as Record<string, unknown>;
          keys ??= rolesOf(Object.keys(record), Object.keys(record), 'keys of the first record');
          header ??= { format, layout: keys.layout };
          if (line < skipBefore) continue;
          row = rowOf(line, optionalKeysOf(keys, record), (k) => record[k], record.metadata);
        }
      } else {
        const delimiter = format === 'tsv' ? '\t' : ',';
        const fields = format === 'tsv' ? text.split('\t') : splitCsv(text, delimiter);
        if (columns === null) {
          if (typeof fields === 'string') throw new DataFormatError(`The header row of this ${format.toUpperCase()} file is malformed: ${fields}.`);
          columns = rolesOf(fields, fields.map((_, i) => i), 'header row');
          header = { format, layout: columns.layout };
          continue;
        }
        if (line < skipBefore) continue;
        row = typeof fields === 'string' ? fields : rowOf(line, columns, (i) => fields[i]);
      }
      if (typeof row === 'string') {
        const b = badRow(line, row, text);
        out.bad.push(b);
        badRows.add([b]);
        if (good === 0 && badRows.count >= 100) throw new DataFormatError(`None of the first ${badRows.count} rows is a valid pair.${badRows.describe()}`);
      } else {
        good++;
        out.rows.push(row);
      }
    }
    if (header === null && out.bad.length > 0 && format === 'jsonl') {
      throw new DataFormatError(`This JSON Lines file does not start with a JSON object (line ${out.bad[0].line}: ${out.bad[0].reason}).`);
    }
    if (header !== null) yield { ...out, header };
  }
  if (header === null) throw new DataFormatError(`This pair file has no rows.${badRows.describe()}`);
}
