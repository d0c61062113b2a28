// `npm run bench -- make-ctd-like [--rows N] [--out file.csv.gz]`: writes a synthetic file in the
// layout of CTD's CTD_genes_diseases.csv.gz (comment header with `# Fields:`, 9 columns, rows
// sorted by gene, quoted names with commas, `|` lists, DirectEvidence on about 12% of rows and an
// inference chemical with InferenceScore on the rest) for ingest benchmarks. Every (gene, disease)
// pair is distinct, so every row is stored. The content is made up: it is not CTD data.
import { createWriteStream, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';

const GENES = 50_000;
const DISEASES = 7_000;

const HEADER = `# Synthetic file in the layout of the Comparative Toxicogenomics Database's CTD_genes_diseases.csv.gz,
# written by qlora-lab bench/make-ctd-like.ts for benchmarks. It is NOT CTD data.
#
# Fields:
# GeneSymbol,GeneID,DiseaseName,DiseaseID,DirectEvidence,InferenceChemicalName,InferenceScore,OmimIDs,PubMedIDs
#
`;

function diseaseName(d: number): string {
  // Every 5th name has a comma, as CTD's "Diabetes Mellitus, Type 2" does, so it is quoted.
  return d % 5 === 0 ? `"Synthetic Disorder ${d}, Type ${1 + (d % 3)}"` : `Synthetic Disorder ${d}`;
}

/** Row i of the file: genes in order, each with rowsPerGene distinct diseases. */
function row(i: number, rowsPerGene: number): string {
  const g = Math.floor(i / rowsPerGene) % GENES;
  const j = i % rowsPerGene;
  const d = (g * 7919 + j * 6733 + Math.floor(i / (rowsPerGene * GENES)) * 4099) % DISEASES;
  const kind = (Math.imul(i, 0x9e3779b1) >>> 0) % 100;
  const direct = kind < 10 ? 'marker/mechanism' : kind < 12 ? 'therapeutic' : '';
  const chemical = direct ? '' : `Synthetic Chemical ${(i * 31) % 9000}`;
  const score = direct ? '' : ((i % 9973) / 100 + 1).toFixed(2);
  const omim = d % 11 === 0 ? String(100000 + d) : '';
  const pubmed = Array.from({ length: 1 + (i % 3) }, (_, k) => String(10_000_000 + ((i * 7 + k * 104729) % 30_000_000))).join('|');
  return `SYN${g},${900000 + g},${diseaseName(d)},MESH:D${String(d).padStart(6, '0')},${direct},${chemical},${score},${omim},${pubmed}\n`;
}

export async function makeCtdLike(path: string, rows: number): Promise<void> {
  // Up to DISEASES rows per gene keep pairs distinct; past GENES * DISEASES rows the file would repeat.
  const rowsPerGene = Math.min(DISEASES, Math.max(1, Math.ceil(rows / GENES)));
  mkdirSync(dirname(path), { recursive: true });
  async function* text() {
    yield HEADER;
    for (let at = 0; at < rows; at += 10_000) {
      let block = '';
      for (let i = at; i < Math.min(rows, at + 10_000); i++) block += row(i, rowsPerGene);
      yield block;
    }
  }
  await pipeline(text(), createGzip({ level: 6 }), createWriteStream(path));
}

export function defaultPath(rows: number): string {
  return join(tmpdir(), 'qlora-lab-bench', `ctd-like-${rows}.csv.gz`);
}

export default async function (args: string[]): Promise<void> {
  const rowsAt = args.indexOf('--rows');
  const outAt = args.indexOf('--out');
  const rows = rowsAt >= 0 ? Number(args[rowsAt + 1]) : 5_000_000;
  if (!Number.isInteger(rows) || rows < 1) throw new Error(`--rows must be a positive integer, got ${args[rowsAt + 1]}`);
  const path = outAt >= 0 ? args[outAt + 1] : defaultPath(rows);
  const started = performance.now();
  await makeCtdLike(path, rows);
  const seconds = (performance.now() - started) / 1000;
  console.log(`wrote ${rows} CTD-format rows to ${path} in ${seconds.toFixed(1)} s`);
  console.log(JSON.stringify({ path, rows, seconds: Number(seconds.toFixed(1)) }));
}
