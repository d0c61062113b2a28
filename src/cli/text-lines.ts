/** A texts file as the CLI reads it: one text per line, blank lines skipped. */
import { readFile } from 'node:fs/promises';
import { UsageError } from './errors.ts';

export async function readTextLines(option: string, path: string): Promise<string[]> {
  const text = await readFile(path, 'utf8').catch((e: Error) => {
    throw new UsageError(`cannot read --${option} ${path}: ${e.message}`);
  });
  const lines = text.split(/\r?\n/).filter((line) => line.trim() !== '');
  if (lines.length === 0) throw new UsageError(`${path} has no non-empty lines`);
  return lines;
}
