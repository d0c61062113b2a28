/**
 * CTD gene–disease files as CTD publishes them: CTD_curated_genes_diseases (7 columns, every row
 * with DirectEvidence) and CTD_genes_diseases (9 columns, mostly inferred rows with an inference
 * chemical and InferenceScore), CSV or TSV, a `#` comment header whose `# Fields:` line names the
 * columns, quoted fields with commas and `|`-separated lists.
 */
import { DataFormatError } from './errors.ts';
import { type BadRow, BadRowLog, badRow, readRecords, splitCsv } from './text.ts';

/** DirectEvidence bits, and a bit for rows that exist only by inference through a chemical. */
export const EVIDENCE_MARKER = 1; // marker/mechanism
export const EVIDENCE_THERAPEUTIC = 2; // therapeutic
export const EVIDENCE_INFERRED = 4;

const DIRECT_EVIDENCE: Record<string, number> = { 'marker/mechanism': EVIDENCE_MARKER, therapeutic: EVIDENCE_THERAPEUTIC };

const REQUIRED = ['GeneSymbol', 'GeneID', 'DiseaseName', 'DiseaseID', 'DirectEvidence'] as const;
const OPTIONAL = ['InferenceChemicalName', 'InferenceScore', 'OmimIDs', 'PubMedIDs'] as const;
type Column = (typeof REQUIRED)[number] | (typeof OPTIONAL)[number];

/** Column orders of CTD's two files, for a file whose `# Fields:` header was cut off. */
const CURATED_LAYOUT: Column[] = ['GeneSymbol', 'GeneID', 'DiseaseName', 'DiseaseID', 'DirectEvidence', 'OmimIDs', 'PubMedIDs'];
const FULL_LAYOUT: Column[] = [
  'GeneSymbol',
  'GeneID',
  'DiseaseName',
  'DiseaseID',
  'DirectEvidence',
  'InferenceChemicalName',
  'InferenceScore',
  'OmimIDs',
  'PubMedIDs',
];

/** A row is checked against the first this many data rows before the file is declared the wrong format. */
const FORMAT_PROBE_ROWS = 100;

export interface CtdRow {
  line: number;
  geneSymbol: string;
  geneId: string;
  diseaseName: string;
  diseaseId: string;
  /** EVIDENCE_* bits. */
  evidence: number;
  inferenceScore: number | null;
  omimIds: string[];
  pubmedIds: string[];
}

export interface CtdOptions {
  /** Keep inferred rows (empty DirectEvidence); by default only DirectEvidence rows are kept. */
  keepInferred?: boolean;
  /** With keepInferred: inferred rows whose InferenceScore is below this are skipped. */
  minInferenceScore?: number;
  /** Resume: records on lines before this one were handled by an earlier run and are passed over. */
  skipBeforeLine?: number;
}

export interface CtdChunk {
  rows: CtdRow[];
  bad: BadRow[];
  /** Well-formed rows left out by the evidence options (inferred rows). */
  skipped: number;
  /** Resume point after this chunk (see RecordChunk). */
  nextLine: number;
}

interface Layout {
  delimiter: ',' | '\t';
  index: Record<Column, number>;
  width: number;
}

function layoutOf(names: string[], delimiter: ',' | '\t'): Layout {
  const clean = names.map((n) => n.trim());
  const missing = REQUIRED.filter((c) => !clean.includes(c));
  if (missing.length > 0) {
    throw new DataFormatError(
      `This is not a CTD gene–disease file: its columns are ${clean.join(', ')}; ` +
        `expected ${REQUIRED.join(', ')} (CTD_curated_genes_diseases or CTD_genes_diseases). Missing: ${missing.join(', ')}.`,
    );
  }
  const index = {} as Record<Column, number>;
  for (const c of [...REQUIRED, ...OPTIONAL]) index[c] = clean.indexOf(c);
  return { delimiter, index, width: clean.length };
}

function fieldsOf(text: string, delimiter: ',' | '\t'): string[] | string {
  return delimiter === ',' ? splitCsv(text) : text.split('\t');
}

function list(value: string | undefined): string[] {
  return value ? value.split('|').filter((v) => v !== '') : [];
}

/** Parse one data record, or say what is wrong with it. */
function parseRow(text: string, line: number, layout: Layout): CtdRow | string {
  const fields = fieldsOf(text, layout.delimiter);
  if (typeof fields === 'string') return fields;
  if (fields.length !== layout.width) return `expected ${layout.width} fields, found ${fields.length}`;
  const get = (c: Column) => (layout.index[c] < 0 ? '' : fields[layout.index[c]].trim());
  const geneSymbol = get('GeneSymbol');
  const geneId = get('GeneID');
  const diseaseName = get('DiseaseName');
  const diseaseId = get('DiseaseID');
  if (!geneSymbol) return 'empty GeneSymbol';
  if (!/^\d+$/.test(geneId)) return `GeneID "${geneId}" is not an NCBI Gene number`;
  if (!diseaseName) return 'empty DiseaseName';
  if (!/^(MESH|OMIM):[A-Za-z0-9.]+$/.test(diseaseId)) return `DiseaseID "${diseaseId}" is not a MESH: or OMIM: identifier`;
  let evidence = 0;
  for (const token of list(get('DirectEvidence'))) {
    const bit = DIRECT_EVIDENCE[token];
    if (bit === undefined) return `unknown DirectEvidence "${token}"`;
    evidence |= bit;
  }
  const scoreText = get('InferenceScore');
  const inferenceScore = scoreText === '' ? null : Number(scoreText);
  if (inferenceScore !== null && !Number.isFinite(inferenceScore)) return `InferenceScore "${scoreText}" is not a number`;
  if (evidence === 0) {
    if (!get('InferenceChemicalName')) return 'neither DirectEvidence nor an inference chemical';
    evidence = EVIDENCE_INFERRED;
  }
  return { line, geneSymbol, geneId, diseaseName, diseaseId, evidence, inferenceScore, omimIds: list(get('OmimIDs')), pubmedIds: list(get('PubMedIDs')) };
}

/** Whether the start of a text file looks like a CTD gene–disease download. */
export function looksLikeCtd(head: string): boolean {
  return head.includes('Comparative Toxicogenomics Database') || /(^|\n)#?\s*GeneSymbol[,\t]GeneID[,\t]/.test(head);
}

/**
 * Rows of a CTD gene–disease file, one chunk per input chunk. Bad rows are reported with their
 * line numbers and never stop the parse; a file whose header or first rows are not CTD's
 * gene–disease layout raises DataFormatError.
 */
export async function* parseCtd(bytes: ReadableStream<Uint8Array>, options: CtdOptions = {}): AsyncGenerator<CtdChunk> {
  const keepInferred = options.keepInferred ?? false;
  const minScore = options.minInferenceScore ?? -Infinity;
  const skipBefore = options.skipBeforeLine ?? 0;
  let layout: Layout | null = null;
  let fieldsLabelSeen = false;
  let good = 0;
  const badRows = new BadRowLog(3);
  const probeFailed = () => new DataFormatError(`None of the first ${badRows.count} rows is a CTD gene–disease row. Is this the right file?${badRows.describe()}`);

  for await (const chunk of readRecords(bytes)) {
    const out: CtdChunk = { rows: [], bad: chunk.bad, skipped: 0, nextLine: chunk.nextLine };
    badRows.add(chunk.bad);
    for (const { text, line } of chunk.records) {
      if (text.startsWith('#')) {
        const comment = text.slice(1).trim();
        if (layout === null && fieldsLabelSeen && comment !== '') layout = layoutOf(comment.split(/\t|,/), comment.includes('\t') ? '\t' : ',');
        fieldsLabelSeen = /^Fields:$/i.test(comment);
        continue;
      }
      if (text.trim() === '') continue;
      if (layout === null) {
        const delimiter = text.includes('\t') ? '\t' : ',';
        const first = fieldsOf(text, delimiter);
        if (typeof first !== 'string' && first.some((f) => f.trim() === 'GeneSymbol')) {
          layout = layoutOf(first, delimiter); // a header row instead of the `# Fields:` comment
          continue;
        }
        const width = typeof first === 'string' ? 0 : first.length;
        if (width !== CURATED_LAYOUT.length && width !== FULL_LAYOUT.length) {
          throw new DataFormatError(
            `This is not a CTD gene–disease file: it has no CTD header ('# Fields:' line or GeneSymbol header row) and its first row has ${width} fields, ` +
              `not the ${CURATED_LAYOUT.length} of CTD_curated_genes_diseases or the ${FULL_LAYOUT.length} of CTD_genes_diseases.`,
          );
        }
        layout = layoutOf(width === CURATED_LAYOUT.length ? CURATED_LAYOUT : FULL_LAYOUT, delimiter);
      }
      if (line < skipBefore) continue;
      const row = parseRow(text, line, layout);
      if (typeof row === 'string') {
        const b = badRow(line, row, text);
        out.bad.push(b);
        badRows.add([b]);
        if (good === 0 && badRows.count >= FORMAT_PROBE_ROWS) throw probeFailed();
        continue;
      }
      good++;
      if (row.evidence === EVIDENCE_INFERRED && (!keepInferred || row.inferenceScore === null || row.inferenceScore < minScore)) out.skipped++;
      else out.rows.push(row);
    }
    yield out;
  }
  if (layout === null) throw new DataFormatError(`This file has no CTD gene–disease rows (it is empty or only comments).${badRows.describe()}`);
  if (good === 0 && badRows.count > 0) throw probeFailed();
}

/** One stored gene–disease association: every accepted row for the pair, merged. */
export interface Association {
  diseaseId: string;
  diseaseName: string;
  evidence: number;
  /** Highest InferenceScore among the pair's inferred rows, or null. */
  inferenceScore: number | null;
  omimIds: string[];
  pubmedIds: string[];
  /** Line of the first row for the pair. */
  line: number;
}

export function associationOf(row: CtdRow): Association {
  return { diseaseId: row.diseaseId, diseaseName: row.diseaseName, evidence: row.evidence, inferenceScore: row.inferenceScore, omimIds: row.omimIds, pubmedIds: row.pubmedIds, line: row.line };
}

/** Merge a duplicate row (the same gene and disease again) into its association. */
export function mergeRow(into: Association, row: CtdRow): void {
  into.evidence |= row.evidence;
  if (row.inferenceScore !== null && (into.inferenceScore === null || row.inferenceScore > into.inferenceScore)) into.inferenceScore = row.inferenceScore;
  into.omimIds = union(into.omimIds, row.omimIds);
  into.pubmedIds = union(into.pubmedIds, row.pubmedIds);
}

function union(a: string[], b: string[]): string[] {
  if (b.length === 0) return a;
  const seen = new Set(a);
  return seen.size === a.length && b.every((x) => seen.has(x)) ? a : [...new Set([...a, ...b])];
}

export type EvidenceClass = 'markerMechanism' | 'therapeutic' | 'both' | 'inferred';

/** The evidence mix category of an association: its direct evidence, or inferred when it has none. */
export function evidenceClass(evidence: number): EvidenceClass {
  const direct = evidence & (EVIDENCE_MARKER | EVIDENCE_THERAPEUTIC);
  if (direct === (EVIDENCE_MARKER | EVIDENCE_THERAPEUTIC)) return 'both';
  if (direct === EVIDENCE_MARKER) return 'markerMechanism';
  if (direct === EVIDENCE_THERAPEUTIC) return 'therapeutic';
  return 'inferred';
}
