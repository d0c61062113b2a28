import { describe, expect, it } from 'vitest';
import { Rng } from '../../src/data/rng.ts';
import { DataFormatError } from '../../src/data/errors.ts';
import { type RecordChunk, badRow, describeBadRows, readRecords, splitCsv } from '../../src/data/text.ts';
import { collect, streamOf, textStream } from './streams.ts';

const ALPHABET = ['a', 'b', 'Z', '0', ' ', ',', '"', '\n', '|', '#', 'é', '漢', '🫀', '\t'];

function randomField(rng: Rng, alphabet: string[]): string {
  const n = rng.int(8);
  let s = '';
  for (let i = 0; i < n; i++) s += alphabet[rng.int(alphabet.length)];
  return s;
}

/** The CSV writer the fuzz test checks the reader against: quote a field when it needs it. */
function csvLine(fields: string[]): string {
  if (fields.length === 1 && fields[0] === '') return '""';
  return fields.map((f) => (/[",\n]/.test(f) || f.startsWith(' ') ? `"${f.replaceAll('"', '""')}"` : f)).join(',');
}

function flatten(chunks: RecordChunk[]) {
  return { records: chunks.flatMap((c) => c.records), bad: chunks.flatMap((c) => c.bad) };
}

describe('readRecords + splitCsv (fuzz: write rows, cut the bytes anywhere, read them back)', () => {
  it('round-trips 300 random CSV files with quoted commas, quotes, line breaks and multi-byte characters', async () => {
    const rng = new Rng(20240611);
    for (let file = 0; file < 300; file++) {
      const rows: string[][] = [];
      const nRows = 1 + rng.int(30);
      for (let r = 0; r < nRows; r++) {
        const nFields = 1 + rng.int(5);
        rows.push(Array.from({ length: nFields }, () => randomField(rng, ALPHABET.filter((c) => c !== '\t'))));
      }
      const eol = rng.next() < 0.5 ? '\n' : '\r\n';
      const lines = rows.map(csvLine);
      const text = lines.join(eol) + (rng.next() < 0.5 ? eol : '');
      const expectedLines: number[] = [];
      let line = 1;
      for (const l of lines) {
        expectedLines.push(line);
        line += l.split('\n').length;
      }
      const { records, bad } = flatten(await collect(readRecords(textStream(text, rng, 1 + rng.int(40)), { multiline: true })));
      expect(bad).toEqual([]);
      expect(records.map((r) => splitCsv(r.text))).toEqual(rows);
      expect(records.map((r) => r.line)).toEqual(expectedLines);
    }
  });

  it('round-trips random TSV files line by line', async () => {
    const rng = new Rng(7);
    for (let file = 0; file < 100; file++) {
      const rows = Array.from({ length: 1 + rng.int(20) }, () =>
        Array.from({ length: 1 + rng.int(6) }, () => randomField(rng, ALPHABET.filter((c) => c !== '\t' && c !== '\n'))),
      );
      const text = rows.map((r) => `${r.join('\t')}\n`).join('');
      const { records } = flatten(await collect(readRecords(textStream(text, rng, 7))));
      expect(records.map((r) => r.text.split('\t'))).toEqual(rows);
    }
  });

  it('reports an unterminated quote as one bad row and reads the following lines again', async () => {
    const text = 'a,b\n"open,c\nd,e\nf,g\n';
    const { records, bad } = flatten(await collect(readRecords(textStream(text), { multiline: true, maxRecordChars: 12 })));
    expect(bad).toEqual([{ line: 2, reason: 'unterminated quoted field (record longer than 12 characters)', text: '"open,c' }]);
    expect(records).toEqual([
      { text: 'a,b', line: 1 },
      { text: 'd,e', line: 3 },
      { text: 'f,g', line: 4 },
    ]);
    const atEnd = flatten(await collect(readRecords(textStream('x,y\n"never closed\nz'), { multiline: true })));
    expect(atEnd.records).toEqual([{ text: 'x,y', line: 1 }]);
    expect(atEnd.bad[0]).toMatchObject({ line: 2, reason: 'unterminated quoted field at the end of the file' });
  });

  it('reports bytes that are not UTF-8 on their own line and keeps the rest', async () => {
    const good = new TextEncoder().encode('first line\n');
    const broken = new Uint8Array([0x61, 0xff, 0x62, 0x0a]);
    const after = new TextEncoder().encode('third line\n'.repeat(400));
    const { records, bad } = flatten(await collect(readRecords(streamOf([good, broken, after]))));
    expect(bad).toEqual([{ line: 2, reason: 'not valid UTF-8 text', text: 'a\uFFFDb' }]);
    expect(records.length).toBe(401);
    expect(records[1]).toEqual({ text: 'third line', line: 3 });
  });

  it('drops a byte-order mark, skips an over-long line, and refuses binary input', async () => {
    const bom = flatten(await collect(readRecords(textStream('\uFEFFanchor,positive\nx,y'))));
    expect(bom.records[0].text).toBe('anchor,positive');
    const long = flatten(await collect(readRecords(textStream(`ok\n${'x'.repeat(5000)}\nafter\n`, new Rng(3), 100), { maxRecordChars: 1000 })));
    expect(long.records).toEqual([
      { text: 'ok', line: 1 },
      { text: 'after', line: 3 },
    ]);
    expect(long.bad[0]).toMatchObject({ line: 2, reason: 'line longer than 1000 characters' });
    // Also when the whole line arrives in one chunk.
    const inOneChunk = flatten(await collect(readRecords(textStream(`ok\n${'x'.repeat(1001)}\nafter\n`), { maxRecordChars: 1000 })));
    expect(inOneChunk.records.map((r) => r.text)).toEqual(['ok', 'after']);
    expect(inOneChunk.bad.map((b) => [b.line, b.reason])).toEqual([[2, 'line longer than 1000 characters']]);
    const png = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0x0d]);
    await expect(collect(readRecords(streamOf([png])))).rejects.toThrow(DataFormatError);
  });

  it('splitCsv names malformed quoting', () => {
    expect(splitCsv('A,50518,"Diabetes Mellitus, Type 2",MESH:D003924')).toEqual(['A', '50518', 'Diabetes Mellitus, Type 2', 'MESH:D003924']);
    expect(splitCsv('a,"b""c",d')).toEqual(['a', 'b"c', 'd']);
    expect(splitCsv('a,')).toEqual(['a', '']);
    expect(splitCsv('"x"y,z')).toBe('unexpected text after the closing quote in column 1');
    expect(splitCsv('a,5" tall')).toBe('stray quote in unquoted column 2');
    expect(splitCsv('a,"open')).toBe('unterminated quoted field in column 2');
  });

  it('describeBadRows: the count, the first three with line, reason and the start of the text, and how many more', () => {
    const bad = [badRow(2, 'empty positive', 'a,'), badRow(5, 'not valid UTF-8 text', 'caf\uFFFD'), badRow(9, 'label 7 is outside [0, 1]', `x,y,7${' '.repeat(80)}`), badRow(11, 'empty anchor', ',b')];
    expect(describeBadRows(0, [])).toBe('');
    expect(describeBadRows(1, bad.slice(0, 1))).toBe(' 1 bad row(s) were skipped: line 2: empty positive ("a,").');
    expect(describeBadRows(12, bad)).toBe(
      ` 12 bad row(s) were skipped: line 2: empty positive ("a,"); line 5: not valid UTF-8 text ("caf\uFFFD"); line 9: label 7 is outside [0, 1] ("x,y,7${' '.repeat(55)}…"); and 9 more.`,
    );
  });
});
