import { describe, expect, it } from 'vitest';
import { DataFormatError } from '../../src/data/errors.ts';
import { type LabelledRow, type PairOptions, type TripletRow, parsePairs } from '../../src/data/pairs.ts';
import { Rng } from '../../src/data/rng.ts';
import { collect, textStream } from './streams.ts';

async function parseAll(text: string, rng?: Rng, options: PairOptions = {}) {
  const chunks = await collect(parsePairs(textStream(text, rng, 17), options));
  return { header: chunks[0]?.header, rows: chunks.flatMap((c) => c.rows), bad: chunks.flatMap((c) => c.bad), skipped: chunks.reduce((n, c) => n + c.skipped, 0) };
}

describe('parsePairs: triplets', () => {
  it('reads the CardioEmbed JSONL layout {anchor, positive, negatives[], metadata}', async () => {
    const jsonl = [
      JSON.stringify({ anchor: 'The patient had a myocardial infarction.', positive: 'The patient had a heart attack.', negatives: ['The patient had a stroke.', 'No infarction was seen.'], metadata: { sentence_id: 4 }, model: 'x', source: 'y' }),
      '',
      JSON.stringify({ anchor: 'Echo showed a reduced ejection fraction.', positive: 'Echocardiography revealed decreased EF.', negatives: [] }),
      '{"anchor": "broken',
      JSON.stringify({ anchor: '  ', positive: 'x' }),
    ].join('\n');
    const { header, rows, bad } = await parseAll(jsonl, new Rng(1));
    expect(header).toEqual({ format: 'jsonl', layout: 'triplets' });
    expect(rows).toEqual([
      { kind: 'triplet', line: 1, anchor: 'The patient had a myocardial infarction.', positive: 'The patient had a heart attack.', negatives: ['The patient had a stroke.', 'No infarction was seen.'], metadata: { sentence_id: 4 } },
      { kind: 'triplet', line: 3, anchor: 'Echo showed a reduced ejection fraction.', positive: 'Echocardiography revealed decreased EF.', negatives: [] },
    ]);
    expect(bad.map((b) => b.line)).toEqual([4, 5]);
    expect(bad[0].reason).toMatch(/^not valid JSON/);
    expect(bad[1].reason).toBe('empty anchor');
  });

  it('reads query/positive/negative CSV with quoted commas and line breaks, and negative_1..n columns in TSV', async () => {
    const csv = 'query,positive,negative\n"chest pain, exertional",stable angina,"pericarditis\nwith rub"\nsyncope,fainting,\n';
    const { header, rows } = await parseAll(csv, new Rng(2));
    expect(header).toEqual({ format: 'csv', layout: 'triplets' });
    expect((rows as TripletRow[]).map((r) => [r.line, r.anchor, r.positive, r.negatives])).toEqual([
      [2, 'chest pain, exertional', 'stable angina', ['pericarditis\nwith rub']],
      [4, 'syncope', 'fainting', []],
    ]);
    const tsv = 'anchor\tpositive\tnegative_1\tnegative_2\nAF\tatrial fibrillation\tatrial flutter\tsinus rhythm\n';
    const t = await parseAll(tsv);
    expect(t.header).toEqual({ format: 'tsv', layout: 'triplets' });
    expect((t.rows[0] as TripletRow).negatives).toEqual(['atrial flutter', 'sinus rhythm']);
  });
});

describe('parsePairs: labelled pairs with sentence-transformers column names', () => {
  it.each([
    ['text_a,text_b,label', 'text_a,text_b,label\nmitral stenosis,aortic stenosis,1\n'],
    ['sentence1,sentence2,score', 'sentence1,sentence2,score\nmitral stenosis,aortic stenosis,0.8\n'],
    ['premise,hypothesis,label', 'premise,hypothesis,label\nmitral stenosis,aortic stenosis,entailment\n'],
    ['question1,question2,is_duplicate', 'question1,question2,is_duplicate\nmitral stenosis,aortic stenosis,1\n'],
  ])('%s', async (_, text) => {
    const { header, rows, bad } = await parseAll(text);
    expect(bad).toEqual([]);
    expect(header?.layout).toBe('labelled');
    expect(rows[0]).toMatchObject({ kind: 'labelled', textA: 'mitral stenosis', textB: 'aortic stenosis' });
    expect((rows[0] as LabelledRow).label).toBeGreaterThan(0.5);
  });

  it('keeps a category column, leaves neutral pairs out, and reports bad labels with line numbers', async () => {
    const text = 'text_a,text_b,label,category\na,b,1,similar\nc,d,0,different\ne,f,neutral,x\ng,h,3.5,x\ni,j,,x\n';
    const { header, rows, bad, skipped } = await parseAll(text);
    expect(header).toEqual({ format: 'csv', layout: 'labelled', labels: { scheme: 'score', scale: 1 } });
    expect(rows).toEqual([
      { kind: 'labelled', line: 2, textA: 'a', textB: 'b', label: 1, group: 'similar' },
      { kind: 'labelled', line: 3, textA: 'c', textB: 'd', label: 0, group: 'different' },
    ]);
    expect(skipped).toBe(1);
    expect(bad.map((b) => [b.line, b.reason])).toEqual([
      [5, 'label 3.5 is outside [0, 1] (scores on another scale need a score scale, e.g. 5 for 0–5)'],
      [6, 'label "" is not a number'],
    ]);
    const jsonl = '{"sentence1": "a", "sentence2": "b", "score": 0.25}\n{"sentence1": "c", "sentence2": "d", "score": "x"}\n';
    const j = await parseAll(jsonl);
    expect(j.rows).toEqual([{ kind: 'labelled', line: 1, textA: 'a', textB: 'b', label: 0.25 }]);
    expect(j.bad[0]).toMatchObject({ line: 2, reason: 'label "x" is not a number' });
  });
});

describe("parsePairs: NLI class labels (sentence-transformers' all-nli pair-class)", () => {
  const rows3 = ['a,b,0', 'c,d,1', 'e,f,2', 'g,h,0', 'i,j,2'];
  const labelsOf = (rows: unknown[]) => (rows as LabelledRow[]).map((r) => [r.line, r.label]);

  it('reads premise/hypothesis files as NLI: entailment (0) similar, contradiction (2) different, neutral (1) left out', async () => {
    const csv = await parseAll(`premise,hypothesis,label\n${rows3.join('\n')}\n`, new Rng(3));
    expect(csv.header).toEqual({ format: 'csv', layout: 'labelled', labels: { scheme: 'nli' } });
    expect(labelsOf(csv.rows)).toEqual([[2, 1], [4, 0], [5, 1], [6, 0]]);
    expect(csv.skipped).toBe(1);
    expect(csv.bad).toEqual([]);
    const jsonl = ['{"premise": "p", "hypothesis": "h", "label": 2}', '{"premise": "p", "hypothesis": "h", "label": 0}', '{"premise": "p", "hypothesis": "h", "label": 1}', '{"premise": "p", "hypothesis": "h", "label": 7}'];
    const j = await parseAll(`${jsonl.join('\n')}\n`);
    expect(labelsOf(j.rows)).toEqual([[1, 0], [2, 1]]);
    expect(j.skipped).toBe(1);
    expect(j.bad.map((b) => [b.line, b.reason])).toEqual([[4, 'label 7 is not an NLI class (0 entailment, 1 neutral, 2 contradiction)']]);
    // Text labels read the same either way.
    const text = await parseAll('premise,hypothesis,label\na,b,entailment\nc,d,neutral\ne,f,contradiction\n');
    expect(labelsOf(text.rows)).toEqual([[2, 1], [4, 0]]);
  });

  it('asks which reading a premise/hypothesis file with 0/1 labels needs, and takes the one given', async () => {
    const binary = 'premise,hypothesis,label\na,b,1\nc,d,0\ne,f,1\n';
    await expect(parseAll(binary)).rejects.toThrow(/premise\/hypothesis file has labels 1, 0 in its first rows: NLI classes .* or similarity scores\? Say which/);
    expect(labelsOf((await parseAll(binary, undefined, { labels: 'score' })).rows)).toEqual([[2, 1], [3, 0], [4, 1]]);
    const nli = await parseAll(binary, undefined, { labels: 'nli' });
    expect(labelsOf(nli.rows)).toEqual([[3, 1]]);
    expect(nli.skipped).toBe(2);
    await expect(parseAll('premise,hypothesis,label\na,b,0.5\nc,d,2\n')).rejects.toThrow(/labels 0\.5, 2 in its first rows/);
  });

  it('refuses class ids 0/1/2 under other column names instead of reading 0 and 1 as scores', async () => {
    const renamed = `sentence1,sentence2,label\n${rows3.join('\n')}\n`;
    await expect(parseAll(renamed)).rejects.toThrow(/first rows are 0, 1, 2: class ids, not similarity scores.*--labels nli, --score-scale 2/);
    expect(labelsOf((await parseAll(renamed, undefined, { labels: 'nli' })).rows)).toEqual([[2, 1], [4, 0], [5, 1], [6, 0]]);
    expect(labelsOf((await parseAll(renamed, undefined, { scoreScale: 2 })).rows)).toEqual([[2, 0], [3, 0.5], [4, 1], [5, 0], [6, 1]]);
  });

  it('decides from the start of the file, also when resuming further on', async () => {
    const text = `premise,hypothesis,label\n${rows3.join('\n')}\n`;
    const resumed = await parseAll(text, undefined, { skipBeforeLine: 5 });
    expect(labelsOf(resumed.rows)).toEqual([[5, 1], [6, 0]]);
  });
});

describe('parsePairs: a score scale for 0–5 ratings (STS-B)', () => {
  const stsb = 'sentence1,sentence2,score\na,b,5.0\nc,d,3.8\ne,f,0\ng,h,2.5\ni,j,5.5\nk,l,-1\n';

  it('refuses scores mostly above 1 without a scale, naming the option', async () => {
    await expect(parseAll(stsb)).rejects.toThrow(/Most labels in this file's first rows are above 1 \(up to 5\.5\).*--score-scale 5/);
  });

  it('divides by the scale, and reports scores outside it as bad rows', async () => {
    const { header, rows, bad } = await parseAll(stsb, new Rng(4), { scoreScale: 5 });
    expect(header?.labels).toEqual({ scheme: 'score', scale: 5 });
    expect((rows as LabelledRow[]).map((r) => r.label)).toEqual([1, 0.76, 0, 0.5]);
    expect(bad.map((b) => [b.line, b.reason])).toEqual([
      [6, 'label 5.5 is outside [0, 5]'],
      [7, 'label -1 is outside [0, 5]'],
    ]);
    const jsonl = '{"sentence1": "a", "similarity": 4}\n{"sentence1": "b", "similarity": "1"}\n'.replace(/"sentence1": "(\w)"/g, '"sentence1": "$1", "sentence2": "x"');
    expect((await parseAll(jsonl, undefined, { scoreScale: 5 })).rows.map((r) => (r as LabelledRow).label)).toEqual([0.8, 0.2]);
  });

  it('refuses options that contradict each other', async () => {
    await expect(parseAll(stsb, undefined, { labels: 'nli', scoreScale: 5 })).rejects.toThrow(/score scale applies to scores, not to NLI class labels/);
    await expect(parseAll(stsb, undefined, { scoreScale: 0 })).rejects.toThrow(/score scale must be a positive number, got 0/);
  });
});

describe('parsePairs: JSONL field types', () => {
  it('says which field has the wrong JSON type instead of calling it empty, and refuses negatives that are not a list of strings', async () => {
    const jsonl = [
      { anchor: 5, positive: 'b' },
      { anchor: 'a', positive: ['b'] },
      { anchor: 'a', positive: 'b', negatives: 'notalist' },
      { anchor: 'a', positive: 'b', negatives: ['x', 5] },
      { anchor: 'a', positive: 'b', negatives: { x: 1 } },
      { anchor: 'a', positive: 'b', negatives: null },
      { anchor: 'a', positive: 'b', negatives: ['x', '', null] },
    ]
      .map((x) => JSON.stringify(x))
      .join('\n');
    const { rows, bad } = await parseAll(jsonl);
    expect(bad.map((b) => [b.line, b.reason])).toEqual([
      [1, 'anchor must be a string, got a number'],
      [2, 'positive must be a string, got a list'],
      [3, 'negatives must be a list of strings, got a string'],
      [4, 'negatives must be a list of strings, but item 2 is a number'],
      [5, 'negatives must be a list of strings, got an object'],
    ]);
    expect((rows as TripletRow[]).map((r) => [r.line, r.negatives])).toEqual([
      [6, []],
      [7, ['x']],
    ]);
    const labelled = await parseAll('{"text_a": "a", "text_b": true, "label": 1}\n{"text_a": "a", "text_b": "b", "label": 1}\n');
    expect(labelled.bad.map((b) => b.reason)).toEqual(['second text must be a string, got a boolean']);
    // A single-negative key holds one text; in CSV a negatives cell may hold one text.
    const single = await parseAll('{"anchor": "a", "positive": "b", "negative": "c"}\n');
    expect((single.rows[0] as TripletRow).negatives).toEqual(['c']);
    const csv = await parseAll('anchor,positive,negatives\na,b,c\n');
    expect((csv.rows[0] as TripletRow).negatives).toEqual(['c']);
  });
});

describe('parsePairs refuses files it cannot map', () => {
  it('names the accepted columns', async () => {
    await expect(parseAll('foo,bar\n1,2\n')).rejects.toThrow(/Cannot tell the text columns.*header row: foo, bar/);
    await expect(parseAll('{"x": 1}\n')).rejects.toThrow(/keys of the first record: x/);
    await expect(parseAll('[1,2]\n')).rejects.toThrow(DataFormatError);
    await expect(parseAll('')).rejects.toThrow(/no rows/);
  });
});
