import { describe, expect, it } from 'vitest';
import { DataFormatError } from '../../src/data/errors.ts';
import { type LabelledRow, type TripletRow, parsePairs } from '../../src/data/pairs.ts';
import { Rng } from '../../src/engine/rng.ts';
import { collect, textStream } from './streams.ts';

async function parseAll(text: string, rng?: Rng) {
  const chunks = await collect(parsePairs(textStream(text, rng, 17)));
  return { header: chunks[0]?.header, rows: chunks.flatMap((c) => c.rows), bad: chunks.flatMap((c) => c.bad) };
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

  it('keeps a category column, and reports bad labels with line numbers', async () => {
    const text = 'text_a,text_b,label,category\na,b,1,similar\nc,d,0,different\ne,f,neutral,x\ng,h,3.5,x\ni,j,,x\n';
    const { rows, bad } = await parseAll(text);
    expect(rows).toEqual([
      { kind: 'labelled', line: 2, textA: 'a', textB: 'b', label: 1, group: 'similar' },
      { kind: 'labelled', line: 3, textA: 'c', textB: 'd', label: 0, group: 'different' },
    ]);
    expect(bad.map((b) => [b.line, b.reason])).toEqual([
      [4, 'label "neutral" has no 0/1 meaning'],
      [5, 'label 3.5 is outside [0, 1] (scale scores to 0–1)'],
      [6, 'label "" is not a number'],
    ]);
    const jsonl = '{"sentence1": "a", "sentence2": "b", "score": 0.25}\n{"sentence1": "c", "sentence2": "d", "score": "x"}\n';
    const j = await parseAll(jsonl);
    expect(j.rows).toEqual([{ kind: 'labelled', line: 1, textA: 'a', textB: 'b', label: 0.25 }]);
    expect(j.bad[0]).toMatchObject({ line: 2, reason: 'label "x" is not a number' });
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
