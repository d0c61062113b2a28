/**
 * Streaming text records over bytes: UTF-8 decoding across chunk boundaries, line splitting,
 * CSV quoted fields that span lines, and CSV/TSV field splitting. Hand-written rather than
 * papaparse/csv-parse because those read Files, URLs or Node streams, not a WHATWG byte stream
 * coming out of a DecompressionStream in a worker, and neither reports the physical line number of
 * each record, which bad-row reports and line-based resume need. Fuzz-tested in tests/data.
 */
import { DataFormatError } from './errors.ts';

export interface TextRecord {
  text: string;
  /** 1-based physical line on which the record starts. */
  line: number;
}

export interface BadRow {
  line: number;
  reason: string;
  /** The start of the offending text (at most 200 characters). */
  text: string;
}

export interface RecordChunk {
  records: TextRecord[];
  bad: BadRow[];
  /** Every record that starts before this line has been yielded (the resume point after this chunk). */
  nextLine: number;
}

export interface RecordOptions {
  /** CSV: a quoted field may contain line breaks (the record ends where its count of `"` is even). */
  multiline?: boolean;
  /** A record longer than this is reported bad and reading goes on at the line after its start. */
  maxRecordChars?: number;
}

const SAMPLE_CHARS = 200;
/** Characters of a bad row quoted in an error message. */
const EXCERPT_CHARS = 60;

export function badRow(line: number, reason: string, text: string): BadRow {
  return { line, reason, text: text.length > SAMPLE_CHARS ? `${text.slice(0, SAMPLE_CHARS)}…` : text };
}

/**
 * ` N bad row(s) were skipped: line 2: reason ("text"); line 7: …; and 5 more.` — appended to an error
 * whose cause may be those rows (too few rows left), so that it shows them; '' when there were none.
 */
export function describeBadRows(count: number, samples: readonly BadRow[], shown = 3): string {
  if (count === 0) return '';
  const listed = samples.slice(0, shown);
  const more = count - listed.length;
  const excerpt = (t: string) => JSON.stringify(t.length > EXCERPT_CHARS ? `${t.slice(0, EXCERPT_CHARS)}…` : t);
  return ` ${count} bad row(s) were skipped: ${listed.map((b) => `line ${b.line}: ${b.reason} (${excerpt(b.text)})`).join('; ')}${more > 0 ? `; and ${more} more` : ''}.`;
}

/** The bad rows of a parse: how many, and the first few. */
export interface BadRows {
  count: number;
  samples: readonly BadRow[];
}

/** Collects BadRows, keeping the first `keep` as samples. */
export class BadRowLog implements BadRows {
  count = 0;
  readonly samples: BadRow[] = [];

  constructor(private readonly keep = 10) {}

  add(rows: readonly BadRow[]): void {
    this.count += rows.length;
    for (const b of rows) if (this.samples.length < this.keep) this.samples.push(b);
  }

  describe(): string {
    return describeBadRows(this.count, this.samples);
  }
}

/** Chunks of a byte stream, through a reader (not every runtime's ReadableStream is async-iterable). */
export async function* chunksOf(stream: ReadableStream<Uint8Array>): AsyncGenerator<Uint8Array> {
  const reader = stream.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      if (value.length > 0) yield value;
    }
  } finally {
    reader.releaseLock();
  }
}

/** The first `minBytes` (or all, if fewer) of a stream, and a stream that still yields every byte. */
export async function peek(stream: ReadableStream<Uint8Array>, minBytes: number): Promise<{ head: Uint8Array; stream: ReadableStream<Uint8Array> }> {
  const reader = stream.getReader();
  const pieces: Uint8Array[] = [];
  let size = 0;
  let ended = false;
  while (size < minBytes) {
    const { done, value } = await reader.read();
    if (done) {
      ended = true;
      break;
    }
    pieces.push(value);
    size += value.length;
  }
  const head = new Uint8Array(size);
  let at = 0;
  for (const p of pieces) {
    head.set(p, at);
    at += p.length;
  }
  let pending: Uint8Array | null = head;
  const rest = new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (pending) {
        const first = pending;
        pending = null;
        if (first.length > 0) return controller.enqueue(first);
      }
      if (ended) return controller.close();
      const { done, value } = await reader.read();
      if (done) controller.close();
      else controller.enqueue(value);
    },
    cancel: (reason) => reader.cancel(reason),
  });
  return { head, stream: rest };
}

function countQuotes(line: string): number {
  let n = 0;
  for (let i = line.indexOf('"'); i >= 0; i = line.indexOf('"', i + 1)) n++;
  return n;
}

/** Refuse binary input early, before it turns into thousands of bad rows. */
function checkIsText(sample: string): void {
  if (sample.includes('\u0000')) throw new DataFormatError('This is not a text file (it contains NUL bytes): expected CSV, TSV or JSON Lines.');
  let replaced = 0;
  for (let i = sample.indexOf('\uFFFD'); i >= 0; i = sample.indexOf('\uFFFD', i + 1)) replaced++;
  if (sample.length > 0 && replaced / sample.length > 0.01) {
    throw new DataFormatError('This is not UTF-8 text (many bytes do not decode): expected CSV, TSV or JSON Lines.');
  }
}

/**
 * Records of a text byte stream, one chunk of records per input chunk. Line breaks are \n or \r\n;
 * a UTF-8 byte-order mark is dropped; a record that does not decode as UTF-8 is reported bad.
 */
export async function* readRecords(bytes: ReadableStream<Uint8Array>, options: RecordOptions = {}): AsyncGenerator<RecordChunk> {
  const multiline = options.multiline ?? false;
  const maxChars = options.maxRecordChars ?? 1 << 20;
  const decoder = new TextDecoder('utf-8');
  let carry = '';
  let line = 1;
  let checked = false;
  let skipping = false; // inside an over-long line: drop text until its end
  // An open multi-line record: its lines so far, where it started, whether its quote count is odd.
  let open: string[] = [];
  let openLine = 0;
  let openChars = 0;
  let out: RecordChunk = { records: [], bad: [], nextLine: 1 };

  const emit = (text: string, at: number) => {
    if (text.includes('\uFFFD')) out.bad.push(badRow(at, 'not valid UTF-8 text', text));
    else out.records.push({ text, line: at });
  };
  const take = (first: string, firstLine: number) => {
    const queue: Array<[string, number]> = [[first, firstLine]];
    while (queue.length > 0) {
      const [text, at] = queue.shift()!;
      if (!multiline) {
        emit(text, at);
        continue;
      }
      const odd = (countQuotes(text) & 1) === 1;
      if (open.length === 0) {
        if (!odd) emit(text, at);
        else {
          open = [text];
          openLine = at;
          openChars = text.length;
        }
        continue;
      }
      open.push(text);
      openChars += text.length + 1;
      if (odd) {
        emit(open.join('\n'), openLine);
        open = [];
      } else if (openChars > maxChars) {
        // An unterminated quote: report the record and read its later lines again as records.
        out.bad.push(badRow(openLine, `unterminated quoted field (record longer than ${maxChars} characters)`, open[0]));
        const rest = open.slice(1).map((t, i): [string, number] => [t, openLine + 1 + i]);
        open = [];
        queue.unshift(...rest);
      }
    }
  };
  const feed = (text: string, final: boolean) => {
    if (!checked && (text.length >= 4096 || final)) {
      checkIsText(text.slice(0, 4096));
      checked = true;
    }
    const lines = text.split('\n');
    carry = final ? '' : lines.pop()!;
    for (const raw of lines) {
      const l = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
      // A long line that ended inside this chunk never stood in `carry` long enough to be caught below.
      if (l.length > maxChars) out.bad.push(badRow(line++, `line longer than ${maxChars} characters`, l));
      else take(l, line++);
    }
    if (carry.length > maxChars) {
      out.bad.push(badRow(line, `line longer than ${maxChars} characters`, carry));
      carry = '';
      skipping = true;
    }
  };
  for await (const chunk of chunksOf(bytes)) {
    let text = decoder.decode(chunk, { stream: true });
    if (skipping) {
      const nl = text.indexOf('\n');
      if (nl < 0) continue;
      text = text.slice(nl + 1);
      line++;
      skipping = false;
    }
    feed(carry + text, false);
    out.nextLine = open.length > 0 ? openLine : line;
    yield out;
    out = { records: [], bad: [], nextLine: 1 };
  }
  const tail = carry + decoder.decode();
  if (!skipping && tail.length > 0) feed(tail.endsWith('\n') ? tail.slice(0, -1) : tail, true);
  else if (!checked) checkIsText(tail);
  if (open.length > 0) out.bad.push(badRow(openLine, 'unterminated quoted field at the end of the file', open[0]));
  out.nextLine = line;
  if (out.records.length > 0 || out.bad.length > 0) yield out;
}

/**
 * The fields of one CSV record (RFC 4180 quoting: `"a, b"`, `""` for a quote inside quotes).
 * Returns a string (the problem) for a malformed record.
 */
export function splitCsv(text: string, delimiter = ','): string[] | string {
  if (!text.includes('"')) return text.split(delimiter);
  const fields: string[] = [];
  let i = 0;
  const n = text.length;
  for (;;) {
    if (text[i] === '"') {
      let value = '';
      let j = i + 1;
      for (;;) {
        const q = text.indexOf('"', j);
        if (q < 0) return `unterminated quoted field in column ${fields.length + 1}`;
        value += text.slice(j, q);
        if (text[q + 1] === '"') {
          value += '"';
          j = q + 2;
          continue;
        }
        i = q + 1;
        break;
      }
      if (i < n && text[i] !== delimiter) return `unexpected text after the closing quote in column ${fields.length + 1}`;
      fields.push(value);
    } else {
      const d = text.indexOf(delimiter, i);
      const end = d < 0 ? n : d;
      const value = text.slice(i, end);
      if (value.includes('"')) return `stray quote in unquoted column ${fields.length + 1}`;
      fields.push(value);
      i = end;
    }
    if (i >= n) return fields;
    i++; // past the delimiter
    if (i === n) {
      fields.push('');
      return fields;
    }
  }
}
