/**
 * Text-pair files: CSV, TSV (with a header row) or JSON Lines, in one of two layouts.
 *  - triplets: anchor, positive and optional negatives (a `negative` column, `negative_1..n`
 *    columns, or a `negatives` list), including CardioEmbed's JSONL {anchor, positive, negatives[], metadata};
 *  - labelled pairs: text_a, text_b, label (plus an optional category column), where the label is
 *    a similarity score in [0, 1] (1 similar, 0 different), or in [0, S] with a score scale S
 *    (STS-B rates 0–5) and divided by S; or an NLI class, as in sentence-transformers' all-nli
 *    "pair-class" (premise, hypothesis, label 0 entailment / 1 neutral / 2 contradiction):
 *    entailment reads as 1, contradiction as 0, and neutral pairs, neither, are left out (counted
 *    as skipped). Files with premise/hypothesis columns are read as NLI; the `labels` option says
 *    otherwise. Text labels (entailment, contradiction, neutral, yes/no, true/false) read the same way
 *    in both.
 * Before any row is read, the labels of the file's first rows are checked against the chosen
 * reading: a file that looks like class ids or like another score scale is refused with the option
 * that reads it, rather than misread.
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
  /** Well-formed rows left out on purpose: NLI pairs labelled neutral. */
  skipped: number;
  /** Resume point after this chunk (see RecordChunk). */
  nextLine: number;
}

export interface PairHeader {
  format: PairFormat;
  layout: PairLayout;
  /** Labelled pairs: how their labels were read. */
  labels?: LabelReading;
}

/** How numeric labels read: NLI class ids (0 entailment, 1 neutral, 2 contradiction) or similarity scores. */
export type LabelScheme = 'nli' | 'score';
export type LabelReading = { scheme: 'nli' } | { scheme: 'score'; scale: number };

export interface PairOptions {
  /** Resume: skip records that start before this line. */
  skipBeforeLine?: number;
  /** How numeric labels read (default: 'nli' for premise/hypothesis columns, else 'score'). */
  labels?: LabelScheme;
  /** The top of the score range, e.g. 5 for STS-B's 0–5 ratings; scores are divided by it. Implies labels 'score'. Default 1. */
  scoreScale?: number;
}

const LABEL = ['label', 'score', 'similarity', 'similarity_score', 'relatedness_score', 'gold_label', 'is_duplicate'];
const TEXT_A = ['text_a', 'sentence1', 'sentence_a', 'sentence_1', 's1', 'text1', 'premise', 'question1', 'anchor', 'query', 'question'];
const TEXT_B = ['text_b', 'sentence2', 'sentence_b', 'sentence_2', 's2', 'text2', 'hypothesis', 'question2', 'positive', 'answer', 'document', 'passage', 'response'];
const GROUP = ['category', 'group', 'type'];
const ANCHOR = ['anchor', 'query', 'question', 'sentence1', 'sentence_a', 'text_a', 'text1', 'premise'];
const POSITIVE = ['positive', 'pos', 'answer', 'document', 'passage', 'response', 'sentence2', 'sentence_b', 'text_b', 'text2', 'hypothesis'];
const NEGATIVE = /^(negatives?|neg|hard_negatives?)(_?\d+)?$/;
const TEXT_LABELS: Record<string, number> = { entailment: 1, contradiction: 0, true: 1, false: 0, yes: 1, no: 0 };
/** Bytes of a file's start read before its rows: the format, and the labels of its first rows. */
const HEAD_BYTES = 4096;

/** Where each role's value is found: a column index (CSV/TSV) or a key (JSONL). */
interface Roles<K> {
  layout: PairLayout;
  a: K;
  b: K;
  label?: K;
  group?: K;
  negatives: K[];
  /** The text columns are premise and hypothesis: an NLI file. */
  nli?: boolean;
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
      const nli = lower[a] === 'premise' && lower[b] === 'hypothesis';
      return { layout: 'labelled', a: keys[a], b: keys[b], label: keys[label], group: group >= 0 ? keys[group] : undefined, negatives: [], nli };
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

/** A label as a number, or NaN when it is not one. */
function numberOf(value: unknown): number {
  if (typeof value === 'number') return value;
  const text = typeof value === 'string' ? value.trim() : '';
  return text === '' ? NaN : Number(text);
}

/** A label in [0, 1], null for a pair left out on purpose (neutral), or why the label is bad. */
function labelOf(value: unknown, reading: LabelReading): number | string | null {
  if (typeof value === 'boolean') return value ? 1 : 0;
  const text = String(value ?? '').trim().toLowerCase();
  if (text in TEXT_LABELS) return TEXT_LABELS[text];
  if (text === 'neutral') return null;
  const n = numberOf(value);
  if (Number.isNaN(n)) return `label "${String(value)}" is not a number`;
  if (reading.scheme === 'nli') {
    if (n === 0 || n === 2) return n === 0 ? 1 : 0;
    return n === 1 ? null : `label ${n} is not an NLI class (0 entailment, 1 neutral, 2 contradiction)`;
  }
  if (!(n >= 0 && n <= reading.scale)) return `label ${n} is outside [0, ${reading.scale}]${reading.scale === 1 ? ' (scores on another scale need a score scale, e.g. 5 for 0–5)' : ''}`;
  return n / reading.scale;
}

/**
 * How this file's labels read: the options, else NLI for premise/hypothesis files, else scores in
 * [0, 1]. Without options, the first rows' labels must fit that guess: NLI files need whole
 * numbers with a 2 among them (0/1 alone could as well be scores), and other files must not look
 * like scores mostly above 1 or like class ids (whole numbers, 2 more than once).
 */
function labelReading(nliColumns: boolean, options: PairOptions, firstLabels: unknown[]): LabelReading {
  const { labels, scoreScale } = options;
  if (scoreScale !== undefined && !(Number.isFinite(scoreScale) && scoreScale > 0)) throw new RangeError(`the score scale must be a positive number, got ${scoreScale}`);
  if (labels === 'nli' && scoreScale !== undefined) throw new RangeError('a score scale applies to scores, not to NLI class labels');
  if (labels === 'nli') return { scheme: 'nli' };
  if (labels === 'score' || scoreScale !== undefined) return { scheme: 'score', scale: scoreScale ?? 1 };
  const numbers = firstLabels.map(numberOf).filter((n) => !Number.isNaN(n));
  const integers = numbers.every(Number.isInteger);
  const twos = numbers.filter((n) => n === 2).length;
  const shown = [...new Set(numbers)].slice(0, 6).join(', ');
  if (nliColumns) {
    if (numbers.length === 0 || (integers && twos > 0)) return { scheme: 'nli' };
    throw new DataFormatError(
      `This premise/hypothesis file has labels ${shown} in its first rows: NLI classes (0 entailment, 1 neutral, 2 contradiction) or similarity scores? ` +
        'Say which: labels nli, or labels score (qlora-lab: --labels nli|score).',
    );
  }
  const above = numbers.filter((n) => n > 1);
  if (above.length * 2 > numbers.length) {
    throw new DataFormatError(
      `Most labels in this file's first rows are above 1 (up to ${Math.max(...above)}): scores on another scale. ` +
        "Give the score scale, e.g. 5 for STS-B's 0–5 ratings (qlora-lab: --score-scale 5); scores are divided by it.",
    );
  }
  if (integers && twos >= 2) {
    throw new DataFormatError(
      `The labels of this file's first rows are ${shown}: class ids, not similarity scores. For NLI classes (0 entailment, 1 neutral, 2 contradiction) ` +
        'name the text columns premise and hypothesis or read the labels as nli; for scores from 0 to 2 give a score scale of 2 (qlora-lab: --labels nli, --score-scale 2).',
    );
  }
  return { scheme: 'score', scale: 1 };
}

/** The label values of the whole records in a file's first bytes, in a CSV/TSV (label: column) or JSONL (label: key) file. */
function firstLabels(head: string, whole: boolean, format: PairFormat, label: number | string): unknown[] {
  const lines = head.replace(/^\uFEFF/, '').split('\n');
  if (!whole) lines.pop(); // cut off by the byte limit
  const values: unknown[] = [];
  for (const line of format === 'jsonl' ? lines : lines.slice(1)) {
    const text = line.replace(/\r$/, '');
    if (text.trim() === '') continue;
    if (format === 'jsonl') {
      try {
        const record: unknown = JSON.parse(text);
        if (record !== null && typeof record === 'object' && !Array.isArray(record)) values.push((record as Record<string, unknown>)[label]);
      } catch {
        // a broken line is reported when the rows are read
      }
      continue;
    }
    // A CSV record with a quoted line break spans lines; its pieces either fail to split or yield some other column.
    const fields = format === 'tsv' ? text.split('\t') : splitCsv(text, ',');
    if (typeof fields !== 'string') values.push(fields[label as number]);
  }
  return values;
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

/** A row, why it is bad, or null for a pair left out on purpose. */
function rowOf<K>(line: number, roles: Roles<K>, get: (k: K) => unknown, reading: LabelReading | null, metadata?: unknown): PairRow | string | null {
  const names = roles.layout === 'labelled' ? ['first text', 'second text'] : ['anchor', 'positive'];
  const a = textField(get(roles.a), names[0]);
  if (typeof a !== 'string') return a.problem;
  const b = textField(get(roles.b), names[1]);
  if (typeof b !== 'string') return b.problem;
  if (roles.layout === 'labelled') {
    const label = labelOf(get(roles.label as K), reading as LabelReading);
    if (typeof label === 'string' || label === null) return label;
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
export async function* parsePairs(bytes: ReadableStream<Uint8Array>, options: PairOptions = {}): AsyncGenerator<PairChunk & { header: PairHeader }> {
  const skipBefore = options.skipBeforeLine ?? 0;
  const peeked = await peek(bytes, HEAD_BYTES);
  const head = new TextDecoder().decode(peeked.head);
  const format = detectPairFormat(head);
  let columns: Roles<number> | null = null;
  let keys: Roles<string> | null = null;
  let header: PairHeader | null = null;
  let reading: LabelReading | null = null;
  /** The header for a layout, deciding how labels read (from the whole file's head, so a resumed run reads them alike). */
  const headerOf = <K extends number | string>(roles: Roles<K>): PairHeader => {
    if (roles.layout !== 'labelled') return { format, layout: roles.layout };
    reading = labelReading(roles.nli === true, options, firstLabels(head, peeked.head.length < HEAD_BYTES, format, roles.label as K));
    return { format, layout: roles.layout, labels: reading };
  };
  let good = 0;
  const badRows = new BadRowLog(3);
  for await (const chunk of readRecords(peeked.stream, { multiline: format === 'csv' })) {
    const out: PairChunk = { rows: [], bad: chunk.bad, skipped: 0, nextLine: chunk.nextLine };
    badRows.add(chunk.bad);
    for (const { text, line } of chunk.records) {
      if (text.trim() === '') continue;
      let row: PairRow | string | null;
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
          header ??= headerOf(keys);
          if (line < skipBefore) continue;
          row = rowOf(line, optionalKeysOf(keys, record), (k) => record[k], reading, record.metadata);
        }
      } else {
        const delimiter = format === 'tsv' ? '\t' : ',';
        const fields = format === 'tsv' ? text.split('\t') : splitCsv(text, delimiter);
        if (columns === null) {
          if (typeof fields === 'string') throw new DataFormatError(`The header row of this ${format.toUpperCase()} file is malformed: ${fields}.`);
          columns = rolesOf(fields, fields.map((_, i) => i), 'header row');
          header = headerOf(columns);
          continue;
        }
        if (line < skipBefore) continue;
        row = typeof fields === 'string' ? fields : rowOf(line, columns, (i) => fields[i], reading);
      }
      if (row === null) {
        out.skipped++;
      } else if (typeof row === 'string') {
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
