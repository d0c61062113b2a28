/** The statements file of `qlora-lab score`: tab-separated statement and label, header and blank lines skipped, bad lines refused by number. */
import { describe, expect, it } from 'vitest';
import { parseStatementLines } from '../../src/cli/statement-file.ts';

describe('statement files', () => {
  it('reads statements and labels in their spellings, skipping the header and blank lines', () => {
    expect(parseStatementLines('statement\tlabel\nA is associated with B\ttrue\n\nC is associated with D\t0\r\nE is associated with F\tYes\n', 'f.tsv')).toEqual([
      { statement: 'A is associated with B', label: true },
      { statement: 'C is associated with D', label: false },
      { statement: 'E is associated with F', label: true },
    ]);
  });

  it('refuses a line without exactly one tab, an empty statement, an unknown label and an empty file', () => {
    expect(() => parseStatementLines('A is B\ttrue\nC is D', 'f.tsv')).toThrow('f.tsv:2: expected the statement, a tab and its label, got 0 tabs');
    expect(() => parseStatementLines(' \tfalse', 'f.tsv')).toThrow('f.tsv:1: the statement is empty');
    expect(() => parseStatementLines('A is B\tmaybe', 'f.tsv')).toThrow('f.tsv:1: label "maybe" is not true/false, yes/no or 1/0');
    expect(() => parseStatementLines('statement\tlabel\n\n', 'f.tsv')).toThrow('f.tsv has no statements');
  });
});
