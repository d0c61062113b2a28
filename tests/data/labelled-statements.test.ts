/** Labelled statements: the lines read (tests/cli/statement-file.test.ts covers their refusals) and the held-out split stratified by label. */
import { describe, expect, it } from 'vitest';
import { type LabelledStatement, parseStatementLines, splitLabelledStatements } from '../../src/data/labelled-statements.ts';
import { DataFormatError } from '../../src/data/errors.ts';

const rows = (trues: number, falses: number): LabelledStatement[] => [
  ...Array.from({ length: trues }, (_, i) => ({ statement: `true ${i}`, label: true })),
  ...Array.from({ length: falses }, (_, i) => ({ statement: `false ${i}`, label: false })),
];

describe('splitLabelledStatements', () => {
  it('holds out a seeded share of the true and of the false statements, keeping the file order on each side', () => {
    const all = rows(10, 5);
    const { train, heldOut } = splitLabelledStatements(all, 0.2, 4);
    expect(heldOut.filter((r) => r.label)).toHaveLength(2);
    expect(heldOut.filter((r) => !r.label)).toHaveLength(1);
    expect([...train, ...heldOut].map((r) => r.statement).sort()).toEqual(all.map((r) => r.statement).sort());
    const order = (side: LabelledStatement[]) => side.map((r) => all.indexOf(r));
    for (const side of [train, heldOut]) expect(order(side)).toEqual([...order(side)].sort((a, b) => a - b));
    expect(splitLabelledStatements(all, 0.2, 4)).toEqual({ train, heldOut });
    expect(splitLabelledStatements(all, 0.2, 5).heldOut).not.toEqual(heldOut);
  });

  it('holds out at least one and keeps at least one of each label', () => {
    expect(splitLabelledStatements(rows(2, 2), 0.01, 0).heldOut.map((r) => r.label).sort()).toEqual([false, true]);
    expect(splitLabelledStatements(rows(2, 2), 0.99, 0).train.map((r) => r.label).sort()).toEqual([false, true]);
  });

  it('refuses a label with fewer than 2 statements and a share out of range', () => {
    expect(() => splitLabelledStatements(rows(3, 1), 0.2, 0)).toThrow(new DataFormatError('holding out false statements and training on others takes at least 2 of them; there is 1: add false statements'));
    expect(() => splitLabelledStatements(rows(0, 3), 0.2, 0)).toThrow('there are none: add true statements');
    expect(() => splitLabelledStatements(rows(3, 3), 0, 0)).toThrow('the held-out share of statements must be above 0 and below 1, got 0');
  });

  it('reads the lines the command line reads, refusals as data errors', () => {
    expect(parseStatementLines('A treats B\tyes\nC treats D\t0\n', 'task.tsv')).toEqual([
      { statement: 'A treats B', label: true },
      { statement: 'C treats D', label: false },
    ]);
    expect(() => parseStatementLines('A treats B', 'task.tsv')).toThrow(DataFormatError);
  });
});
