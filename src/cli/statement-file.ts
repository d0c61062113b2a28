/**
 * Labelled statements for `qlora-lab score`: one per line, the statement, a tab and its label
 * (true/false, yes/no or 1/0). An optional header line "statement<TAB>label" is skipped; blank
 * lines are ignored. A bad line is refused by its number, as a mislabelled statement would bias
 * the accuracy silently.
 */
import { readFile } from 'node:fs/promises';
import { UsageError } from './errors.ts';

export interface LabelledStatement {
  statement: string;
  label: boolean;
}

const LABELS: Record<string, boolean> = { true: true, yes: true, '1': true, false: false, no: false, '0': false };

export function parseStatementLines(text: string, where: string): LabelledStatement[] {
  const out: LabelledStatement[] = [];
  text.split(/\r?\n/).forEach((line, k) => {
    if (line.trim() === '') return;
    const cells = line.split('\t');
    if (k === 0 && cells[0].trim().toLowerCase() === 'statement' && cells[1]?.trim().toLowerCase() === 'label') return;
    if (cells.length !== 2) throw new UsageError(`${where}:${k + 1}: expected the statement, a tab and its label, got ${cells.length - 1} tabs`);
    const statement = cells[0].trim();
    const label = LABELS[cells[1].trim().toLowerCase()];
    if (statement === '') throw new UsageError(`${where}:${k + 1}: the statement is empty`);
    if (label === undefined) throw new UsageError(`${where}:${k + 1}: label ${JSON.stringify(cells[1].trim())} is not true/false, yes/no or 1/0`);
    out.push({ statement, label });
  });
  if (out.length === 0) throw new UsageError(`${where} has no statements`);
  return out;
}

export async function readStatementFile(path: string): Promise<LabelledStatement[]> {
  const text = await readFile(path, 'utf8').catch((e: Error) => {
    throw new UsageError(`cannot read --statements ${path}: ${e.message}`);
  });
  return parseStatementLines(text, path);
}
