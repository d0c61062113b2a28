/**
 * Labelled statements for `qlora-lab score`, `eval --statements` and `train --objective
 * statements`: a file of the lines src/data/labelled-statements.ts reads, its problems said as the
 * command line's usage errors.
 */
import { readFile } from 'node:fs/promises';
import { DataFormatError } from '../data/errors.ts';
import { type LabelledStatement, parseStatementLines as parseLines } from '../data/labelled-statements.ts';
import { UsageError } from './errors.ts';

export type { LabelledStatement };

export function parseStatementLines(text: string, where: string): LabelledStatement[] {
  try {
    return parseLines(text, where);
  } catch (e) {
    throw e instanceof DataFormatError ? new UsageError(e.message) : e;
  }
}

export async function readStatementFile(path: string): Promise<LabelledStatement[]> {
  const text = await readFile(path, 'utf8').catch((e: Error) => {
    throw new UsageError(`cannot read --statements ${path}: ${e.message}`);
  });
  return parseStatementLines(text, path);
}
