import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { EVIDENCE_INFERRED, EVIDENCE_MARKER, EVIDENCE_THERAPEUTIC, type CtdChunk, type CtdOptions, evidenceClass, parseCtd } from '../../src/data/ctd.ts';
import { DataFormatError, TruncatedInputError } from '../../src/data/errors.ts';
import { blobSource, openText } from '../../src/data/source.ts';
import { Rng } from '../../src/data/rng.ts';
import { CTD_CURATED, collect, fileStream, textStream } from './streams.ts';

async function parseAll(stream: ReadableStream<Uint8Array>, options?: CtdOptions) {
  const chunks: CtdChunk[] = await collect(parseCtd(stream, options));
  return { rows: chunks.flatMap((c) => c.rows), bad: chunks.flatMap((c) => c.bad), skipped: chunks.reduce((s, c) => s + c.skipped, 0) };
}

const FULL_HEADER = [
  '# The Comparative Toxicogenomics Database (CTD) - http://ctdbase.org/',
  '#',
  '# Fields:',
  '# GeneSymbol\tGeneID\tDiseaseName\tDiseaseID\tDirectEvidence\tInferenceChemicalName\tInferenceScore\tOmimIDs\tPubMedIDs',
  '#',
].join('\n');

/** A small CTD_genes_diseases-style TSV: direct rows, inferred rows with scores, and two bad rows. */
const FULL_TSV = `${FULL_HEADER}
CFTR\t1080\tCystic Fibrosis\tMESH:D003550\tmarker/mechanism\t\t\t219700\t111|222
CFTR\t1080\tCystic Fibrosis\tMESH:D003550\t\tCurcumin\t5.5\t219700\t333
CFTR\t1080\tAsthma\tMESH:D001249\t\tOzone\t2.25\t\t444|555
HBB\t3043\tAnemia, Sickle Cell\tMESH:D000755\tmarker/mechanism|therapeutic\t\t\t603903\t666
HBB\tnot-a-number\tbeta-Thalassemia\tMESH:D017086\tmarker/mechanism\t\t\t\t777
HBB\t3043\tbeta-Thalassemia\tMESH:D017086\tmarker/mechanism\t\t\t
TTN\t7273\tCardiomyopathy, Dilated\tMESH:D002311\t\tDoxorubicin\t12.01\t\t888
`;

describe('parseCtd on the real CTD_curated_genes_diseases.csv (../shared/data/ctd)', () => {
  it('reads all 34,222 rows: 9,111 genes, 5,858 diseases, CTD evidence mix, no bad or skipped rows', async () => {
    const { rows, bad, skipped } = await parseAll(await fileStream(CTD_CURATED));
    expect(bad).toEqual([]);
    expect(skipped).toBe(0);
    expect(rows.length).toBe(34_222);
    expect(new Set(rows.map((r) => r.geneId)).size).toBe(9_111);
    expect(new Set(rows.map((r) => r.diseaseId)).size).toBe(5_858);
    expect(new Set(rows.map((r) => `${r.geneId} ${r.diseaseId}`)).size).toBe(34_222);
    const mix: Record<string, number> = {};
    for (const r of rows) mix[evidenceClass(r.evidence)] = (mix[evidenceClass(r.evidence)] ?? 0) + 1;
    expect(mix).toEqual({ markerMechanism: 31_986, therapeutic: 1_928, both: 308 });
    // The header has 29 comment lines, so the first row is line 30; a quoted name keeps its comma.
    expect(rows[0]).toMatchObject({ line: 30, geneSymbol: 'A', geneId: '50518', diseaseName: 'Dermatitis', diseaseId: 'MESH:D003872', pubmedIds: ['32937126'] });
    expect(rows[2]).toMatchObject({ diseaseName: 'Diabetes Mellitus, Type 2', diseaseId: 'MESH:D003924' });
    expect(rows[1].pubmedIds).toEqual(['1473152', '25620042']);
    expect(rows.at(-1)!.line).toBe(34_251);
  });

  it('gives the same rows when the bytes arrive gzip-compressed in random pieces', async () => {
    const { readFileSync } = await import('node:fs');
    const plain = readFileSync(CTD_CURATED);
    const opened = await openText(blobSource(new Blob([gzipSync(plain)]), 'CTD_curated_genes_diseases.csv.gz'));
    expect(opened.gzip).toBe(true);
    const { rows } = await parseAll(opened.stream);
    expect(rows.length).toBe(34_222);
    const direct = await parseAll(textStream(plain.toString('utf8'), new Rng(5), 5000));
    expect(direct.rows).toEqual(rows);
  });
});

describe('parseCtd on the CTD_genes_diseases layout (TSV, inferred rows)', () => {
  it('keeps DirectEvidence rows by default, counts inferred rows as skipped, reports bad rows with line numbers', async () => {
    const { rows, bad, skipped } = await parseAll(textStream(FULL_TSV));
    expect(rows.map((r) => [r.geneSymbol, r.diseaseName, r.evidence])).toEqual([
      ['CFTR', 'Cystic Fibrosis', EVIDENCE_MARKER],
      ['HBB', 'Anemia, Sickle Cell', EVIDENCE_MARKER | EVIDENCE_THERAPEUTIC],
    ]);
    expect(skipped).toBe(3);
    expect(bad.map((b) => [b.line, b.reason])).toEqual([
      [10, 'GeneID "not-a-number" is not an NCBI Gene number'],
      [11, 'expected 9 fields, found 8'],
    ]);
    expect(rows[0]).toMatchObject({ line: 6, omimIds: ['219700'], pubmedIds: ['111', '222'], inferenceScore: null });
  });

  it('keeps inferred rows at or above minInferenceScore when asked', async () => {
    const all = await parseAll(textStream(FULL_TSV), { keepInferred: true });
    expect(all.rows.length).toBe(5);
    expect(all.skipped).toBe(0);
    const strong = await parseAll(textStream(FULL_TSV), { keepInferred: true, minInferenceScore: 5.5 });
    expect(strong.rows.map((r) => [r.geneSymbol, r.diseaseName, r.evidence, r.inferenceScore])).toEqual([
      ['CFTR', 'Cystic Fibrosis', EVIDENCE_MARKER, null],
      ['CFTR', 'Cystic Fibrosis', EVIDENCE_INFERRED, 5.5],
      ['HBB', 'Anemia, Sickle Cell', EVIDENCE_MARKER | EVIDENCE_THERAPEUTIC, null],
      ['TTN', 'Cardiomyopathy, Dilated', EVIDENCE_INFERRED, 12.01],
    ]);
    expect(strong.skipped).toBe(1);
  });

  it('passes over lines before skipBeforeLine (resume) and reads headerless files by column count', async () => {
    const resumed = await parseAll(textStream(FULL_TSV), { keepInferred: true, skipBeforeLine: 9 });
    expect(resumed.rows.map((r) => r.line)).toEqual([9, 12]);
    const headerless = 'CFTR,1080,Cystic Fibrosis,MESH:D003550,marker/mechanism,219700,\nFBN1,2200,Marfan Syndrome,MESH:D008382,marker/mechanism,154700,\n';
    const { rows } = await parseAll(textStream(headerless));
    expect(rows.map((r) => r.geneSymbol)).toEqual(['CFTR', 'FBN1']);
    const withHeaderRow = `GeneSymbol,GeneID,DiseaseName,DiseaseID,DirectEvidence\n${'FBN1,2200,Marfan Syndrome,MESH:D008382,marker/mechanism\n'}`;
    expect((await parseAll(textStream(withHeaderRow))).rows.length).toBe(1);
  });
});

describe('parseCtd refuses the wrong file with a clear message', () => {
  it('names the missing columns of another CTD file', async () => {
    const chemicals = '# Fields:\n# ChemicalName,ChemicalID,CasRN,DiseaseName,DiseaseID,DirectEvidence\n#\nAspirin,D001241,50-78-2,Asthma,MESH:D001249,therapeutic\n';
    await expect(parseAll(textStream(chemicals))).rejects.toThrow(/not a CTD gene–disease file.*Missing: GeneSymbol, GeneID/);
  });

  it('refuses a pair file, an empty file, a binary file and rows that never parse', async () => {
    await expect(parseAll(textStream('anchor,positive\nchest pain,angina\n'))).rejects.toThrow(DataFormatError);
    await expect(parseAll(textStream('# only a comment\n'))).rejects.toThrow(/no CTD gene–disease rows/);
    await expect(parseAll(textStream('\u0000\u0001PK\u0003'))).rejects.toThrow(/not a text file/);
    const junk = `# Fields:\n# GeneSymbol,GeneID,DiseaseName,DiseaseID,DirectEvidence\n${'x,y,z,w,v\n'.repeat(150)}`;
    await expect(parseAll(textStream(junk))).rejects.toThrow(/None of the first 100 rows.*line 3: GeneID "y"/);
  });

  it('turns a truncated gzip download into TruncatedInputError after the rows it could read', async () => {
    const { readFileSync } = await import('node:fs');
    const gz = gzipSync(readFileSync(CTD_CURATED));
    const opened = await openText(blobSource(new Blob([gz.subarray(0, gz.length >> 1)]), 'cut.csv.gz'));
    let rowsBeforeError = 0;
    await expect(
      (async () => {
        for await (const chunk of parseCtd(opened.stream)) rowsBeforeError += chunk.rows.length;
      })(),
    ).rejects.toThrow(TruncatedInputError);
    expect(rowsBeforeError).toBeGreaterThan(1000);
    expect(rowsBeforeError).toBeLessThan(34_222);
  });
});
