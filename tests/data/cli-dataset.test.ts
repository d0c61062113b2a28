import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/temp-dir.ts';
import { CTD_CURATED } from './streams.ts';

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, ['bin/qlora-lab.js', 'dataset', ...args], { encoding: 'utf8' });
  return { status: r.status, stderr: r.stderr };
}

const readJsonl = (path: string) =>
  readFileSync(path, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));

describe('qlora-lab dataset', () => {
  it('writes an entity-held-out CTD dataset: train/test JSONL and stats with zero overlap', () => {
    const out = tempDir('qlora-dataset-');
    const r = cli('--ctd', CTD_CURATED, '--split', 'entity', '--negatives', 'hard', '--seed', '7', '--template', '{GeneSymbol} and {DiseaseName}', '--out', out);
    expect(r.stderr).toMatch(/wrote \d+ train and \d+ test rows/);
    expect(r.status).toBe(0);
    const stats = JSON.parse(readFileSync(join(out, 'stats.json'), 'utf8'));
    expect(stats).toMatchObject({ seed: 7, split: 'entity', negatives: 'hard', positives: 34_222, uniqueGenes: 9_111, uniqueDiseases: 5_858 });
    expect(stats.overlap).toEqual({ genes: 0, diseases: 0, pairs: 0 });
    expect(stats.source).toMatchObject({ rowsRead: 34_222, bad: 0, duplicates: 0 });
    expect(stats.source.citation.doi).toBe('10.1093/nar/gkae883');
    const train = readJsonl(join(out, 'train.jsonl'));
    const test = readJsonl(join(out, 'test.jsonl'));
    expect(train.length).toBe(stats.train.rows);
    expect(test.length).toBe(stats.test.rows);
    const trainGenes = new Set(train.map((x) => x.gene_id));
    const trainDiseases = new Set(train.map((x) => x.disease_id));
    expect(test.filter((x) => trainGenes.has(x.gene_id) || trainDiseases.has(x.disease_id)).length).toBe(0);
    expect(test[0].sentence).toBe(`${test[0].text_a} and ${test[0].text_b}`);
    expect(test.filter((x) => x.label === 1).length).toBe(test.filter((x) => x.label === 0).length);
  });

  it('splits a pair file, and fails with a clear message and a non-zero exit on bad input', () => {
    const dir = tempDir('qlora-dataset-');
    const pairs = join(dir, 'pairs.csv');
    writeFileSync(pairs, `text_a,text_b,label,category\n${Array.from({ length: 10 }, (_, i) => `a${i},b${i},${i % 2},similar`).join('\n')}\nx,y,7,bad\n`);
    const ok = cli('--pairs', pairs, '--seed', '3', '--out', join(dir, 'out'));
    expect(ok.status).toBe(0);
    expect(ok.stderr).toMatch(/1 bad row\(s\) skipped[\s\S]*line 12: label 7 is outside \[0, 1\]/);
    const test = readJsonl(join(dir, 'out', 'test.jsonl'));
    expect(test).toHaveLength(2);
    expect(Object.keys(test[0])).toEqual(['text_a', 'text_b', 'label', 'category']);

    const wrong = cli('--ctd', pairs, '--out', join(dir, 'never'));
    expect(wrong.status).toBe(1);
    expect(wrong.stderr).toMatch(/^qlora-lab dataset: DataFormatError: This is not a CTD gene–disease file/);
    const missing = cli('--ctd', join(dir, 'nope.csv'), '--out', join(dir, 'never'));
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(/cannot read .*nope\.csv/);
    const usage = cli('--ctd', pairs, '--split', 'sideways', '--out', dir);
    expect(usage.stderr).toMatch(/--split must be random or entity, got sideways/);
    expect(cli('--ctd', pairs).stderr).toMatch(/--out is required/);
  });

  it('reads an all-nli pair-class file as NLI classes, and STS-B 0–5 scores with --score-scale 5', () => {
    const dir = tempDir('qlora-dataset-');
    const nli = join(dir, 'pair-class.csv');
    writeFileSync(nli, `premise,hypothesis,label\n${Array.from({ length: 12 }, (_, i) => `p${i},h${i},${i % 3}`).join('\n')}\n`);
    expect(cli('--pairs', nli, '--out', join(dir, 'nli')).status).toBe(0);
    const stats = JSON.parse(readFileSync(join(dir, 'nli', 'stats.json'), 'utf8'));
    expect(stats.source).toMatchObject({ rowsRead: 12, accepted: 8, skipped: 4, bad: 0, labels: { scheme: 'nli' } });
    const written = [...readJsonl(join(dir, 'nli', 'train.jsonl')), ...readJsonl(join(dir, 'nli', 'test.jsonl'))];
    // p0, p3, ... were entailment (0): similar; p2, p5, ... contradiction (2): different.
    expect(written.map((x) => [Number(x.text_a.slice(1)) % 3, x.label]).sort()).toEqual([...Array(4).fill([0, 1]), ...Array(4).fill([2, 0])]);

    const stsb = join(dir, 'stsb.tsv');
    writeFileSync(stsb, `sentence1\tsentence2\tscore\n${Array.from({ length: 10 }, (_, i) => `a${i}\tb${i}\t${(i * 0.5).toFixed(1)}`).join('\n')}\nx\ty\t6\n`);
    const refused = cli('--pairs', stsb, '--out', join(dir, 'never'));
    expect(refused.status).toBe(1);
    expect(refused.stderr).toMatch(/Most labels in this file's first rows are above 1 \(up to 6\).*--score-scale 5/);
    const scaled = cli('--pairs', stsb, '--score-scale', '5', '--out', join(dir, 'stsb'));
    expect(scaled.status).toBe(0);
    expect(scaled.stderr).toMatch(/line 12: label 6 is outside \[0, 5\]/);
    const labels = [...readJsonl(join(dir, 'stsb', 'train.jsonl')), ...readJsonl(join(dir, 'stsb', 'test.jsonl'))].map((x) => x.label).sort((a, b) => a - b);
    expect(labels).toEqual(Array.from({ length: 10 }, (_, i) => (i * 0.5) / 5));

    expect(cli('--ctd', stsb, '--score-scale', '5', '--out', dir).stderr).toMatch(/--score-scale applies to --pairs only/);
    expect(cli('--pairs', stsb, '--labels', 'classes', '--out', dir).stderr).toMatch(/--labels must be nli or score, got classes/);
    expect(cli('--pairs', stsb, '--score-scale', '0', '--out', dir).stderr).toMatch(/--score-scale got 0, which is not valid/);
  });

  it('keeps duplicate rows on one side of the split and says so in stats.json', () => {
    const dir = tempDir('qlora-dataset-');
    const pairs = join(dir, 'dupes.csv');
    const distinct = Array.from({ length: 20 }, (_, i) => `q${i},d${i}`);
    writeFileSync(pairs, `anchor,positive\n${['chest pain,angina', 'chest pain,angina', 'chest pain,angina', 'Chest  Pain,ischaemia', 'chest pain,angina', ...distinct].join('\n')}\n`);
    for (const seed of ['1', '2', '3']) {
      const r = cli('--pairs', pairs, '--seed', seed, '--out', join(dir, seed));
      expect(r.status).toBe(0);
      expect(r.stderr).toMatch(/3 exact duplicate row\(s\) removed/);
      expect(r.stderr).toMatch(/22 rows form 21 groups of rows sharing a text \(largest: 2 rows\)/);
      const stats = JSON.parse(readFileSync(join(dir, seed, 'stats.json'), 'utf8'));
      expect(stats).toMatchObject({ rows: 22, duplicatesRemoved: 3, groups: 21, largestGroup: 2 });
      const anchors = (split: string) => readJsonl(join(dir, seed, `${split}.jsonl`)).map((x) => x.anchor.toLowerCase().replace(/\s+/g, ' '));
      const test = anchors('test');
      expect(anchors('train').filter((a) => test.includes(a))).toEqual([]);
    }
  });

  it('too few rows left: the error names how many rows were bad and why, with their lines', () => {
    const dir = tempDir('qlora-dataset-');
    const write = (name: string, bytes: string | Uint8Array) => {
      writeFileSync(join(dir, name), bytes);
      return join(dir, name);
    };
    // An unterminated quote on line 3 swallows the rest of the file.
    const quote = cli('--pairs', write('quote.csv', 'anchor,positive\nchest pain,angina\n"syncope,fainting\nAF,atrial fibrillation\nMI,heart attack\n'), '--out', join(dir, 'o1'));
    expect(quote.status).toBe(1);
    expect(quote.stderr).toMatch(/needs at least 2 rows to split; this one has 1\. 1 bad row\(s\) were skipped: line 3: unterminated quoted field at the end of the file \("\\"syncope,fainting"\)\./);
    // Invalid UTF-8 (a Latin-1 é) and a line over the record limit (1 MiB characters).
    const utf8 = (t: string) => [...new TextEncoder().encode(t)];
    const mixed = write('mixed.csv', new Uint8Array([...utf8('anchor,positive\ncaf'), 0xe9, ...utf8(`,coffee\nq,${'x'.repeat((1 << 20) + 10)}\nok,fine\n`)]));
    const r = cli('--pairs', mixed, '--out', join(dir, 'o2'));
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/this one has 1\. 2 bad row\(s\) were skipped: line 2: not valid UTF-8 text \("caf\uFFFD,coffee"\); line 3: line longer than 1048576 characters \("q,xxx/);
    expect(existsSync(join(dir, 'o2'))).toBe(false);
  });
});
