import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readPairFile } from '../../src/cli/pair-file.ts';
import { CTD_CURATED } from '../data/streams.ts';
import { tempDir } from '../helpers/temp-dir.ts';

const quiet = { write: () => true };

function dataset(...args: string[]): void {
  const r = spawnSync(process.execPath, ['bin/qlora-lab.js', 'dataset', ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
}

const jsonlRows = (path: string) =>
  readFileSync(path, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));

describe('readPairFile', () => {
  it('a file with no usable rows: the error gives the count and the first bad rows with their lines', async () => {
    const dir = tempDir('qlora-pairs-');
    const labelled = join(dir, 'labelled.csv');
    writeFileSync(labelled, 'text_a,text_b,label\na,,1\n,d,0\n"e,f,1\n');
    await expect(readPairFile(labelled, {}, quiet)).rejects.toThrow(
      `${labelled} has no usable rows. 3 bad row(s) were skipped: line 2: empty second text ("a,,1"); line 3: empty first text (",d,0"); line 4: unterminated quoted field at the end of the file ("\\"e,f,1").`,
    );
    const triplets = join(dir, 'triplets.jsonl');
    writeFileSync(triplets, '{"anchor": "a", "positive": ""}\n');
    await expect(readPairFile(triplets, {}, quiet)).rejects.toThrow(/has no usable rows\. 1 bad row\(s\) were skipped: line 1: empty positive/);
  });

  it('reads back what `dataset` writes: CTD positives and negatives, labelled pairs with categories, triplets with negatives', async () => {
    const dir = tempDir('qlora-pairs-');
    dataset('--ctd', CTD_CURATED, '--negatives', 'hard', '--seed', '3', '--out', join(dir, 'ctd'));
    const stats = JSON.parse(readFileSync(join(dir, 'ctd', 'stats.json'), 'utf8'));
    for (const split of ['train', 'test'] as const) {
      const written = jsonlRows(join(dir, 'ctd', `${split}.jsonl`));
      const read = await readPairFile(join(dir, 'ctd', `${split}.jsonl`), {}, quiet);
      expect(read.layout).toBe('labelled');
      expect(read.examples).toEqual(written.map((x) => ({ textA: x.text_a, textB: x.text_b, label: x.label })));
      expect(read.examples.filter((x) => 'label' in x && x.label === 0).length).toBe(stats[split].negatives);
      expect(read.examples.filter((x) => 'label' in x && x.label === 1).length).toBe(stats[split].positives);
    }

    // A category on some rows only: the first row written may lack it.
    const labelled = join(dir, 'labelled.csv');
    const rows = Array.from({ length: 30 }, (_, i) => `a${i},b${i},${i % 2},${i % 3 === 0 ? 'negation' : ''}`);
    writeFileSync(labelled, `text_a,text_b,label,category\n${rows.join('\n')}\n`);
    dataset('--pairs', labelled, '--seed', '1', '--out', join(dir, 'labelled'));
    const back = [
      ...(await readPairFile(join(dir, 'labelled', 'train.jsonl'), {}, quiet)).examples,
      ...(await readPairFile(join(dir, 'labelled', 'test.jsonl'), {}, quiet)).examples,
    ] as { textA: string; group?: string }[];
    expect(back.filter((x) => x.group === 'negation').map((x) => x.textA).sort()).toEqual(rows.flatMap((r, i) => (i % 3 === 0 ? [`a${i}`] : [])).sort());

    const triplets = join(dir, 'triplets.jsonl');
    const written = Array.from({ length: 10 }, (_, i) => ({ anchor: `q${i}`, positive: `p${i}`, negatives: i % 2 ? [`n${i}`] : [] }));
    writeFileSync(triplets, written.map((x) => JSON.stringify(x)).join('\n'));
    dataset('--pairs', triplets, '--seed', '2', '--out', join(dir, 'triplets'));
    const read = [...(await readPairFile(join(dir, 'triplets', 'train.jsonl'), {}, quiet)).examples, ...(await readPairFile(join(dir, 'triplets', 'test.jsonl'), {}, quiet)).examples];
    expect(read.map((x) => ('anchor' in x ? [x.anchor, x.negatives ?? []] : null)).sort()).toEqual(written.map((x) => [x.anchor, x.negatives]).sort());
  });
});
