import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readPairFile } from '../../src/cli/pair-file.ts';
import { tempDir } from '../helpers/temp-dir.ts';

const quiet = { write: () => true };

describe('readPairFile', () => {
  it('a file with no usable rows: the error gives the count and the first bad rows with their lines', async () => {
    const dir = tempDir('qlora-pairs-');
    const labelled = join(dir, 'labelled.csv');
    writeFileSync(labelled, 'text_a,text_b,label\na,,1\n,d,0\n"e,f,1\n');
    await expect(readPairFile(labelled, quiet)).rejects.toThrow(
      `${labelled} has no usable rows. 3 bad row(s) were skipped: line 2: empty second text ("a,,1"); line 3: empty first text (",d,0"); line 4: unterminated quoted field at the end of the file ("\\"e,f,1").`,
    );
    const triplets = join(dir, 'triplets.jsonl');
    writeFileSync(triplets, '{"anchor": "a", "positive": ""}\n');
    await expect(readPairFile(triplets, quiet)).rejects.toThrow(/has no usable rows\. 1 bad row\(s\) were skipped: line 1: empty positive/);
  });
});
