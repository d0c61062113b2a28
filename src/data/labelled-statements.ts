/**
 * Labelled statements for a decoder's statement objective and zero-shot scoring: one per line, the
 * statement, a tab and its label (true/false, yes/no or 1/0). An optional header line
 * "statement<TAB>label" is skipped; blank lines are ignored. A bad line is refused by its number, as
 * a mislabelled statement would bias the accuracy silently. Read by the command line (a file) and
 * the app (a picked file) alike, so both train on the same rows; and a seeded held-out split of
 * them, stratified by label so both sides keep true and false statements.
 */
import { DataFormatError, DatasetError } from './errors.ts';
import { ContentHash } from './hash.ts';
import { Rng } from './rng.ts';

export interface LabelledStatement {
  statement: string;
  label: boolean;
}

const LABELS: Record<string, boolean> = { true: true, yes: true, '1': true, false: false, no: false, '0': false };

/** The statements of `text`; `where` names it in messages ("task.tsv" gives "task.tsv:3: ..."). */
export function parseStatementLines(text: string, where: string): LabelledStatement[] {
  const out: LabelledStatement[] = [];
  text.split(/\r?\n/).forEach((line, k) => {
    if (line.trim() === '') return;
    const cells = line.split('\t');
    if (k === 0 && cells[0].trim().toLowerCase() === 'statement' && cells[1]?.trim().toLowerCase() === 'label') return;
    if (cells.length !== 2) throw new DataFormatError(`${where}:${k + 1}: expected the statement, a tab and its label, got ${cells.length - 1} tabs`);
    const statement = cells[0].trim();
    const label = LABELS[cells[1].trim().toLowerCase()];
    if (statement === '') throw new DataFormatError(`${where}:${k + 1}: the statement is empty`);
    if (label === undefined) throw new DataFormatError(`${where}:${k + 1}: label ${JSON.stringify(cells[1].trim())} is not true/false, yes/no or 1/0`);
    out.push({ statement, label });
  });
  if (out.length === 0) throw new DataFormatError(`${where} has no statements`);
  return out;
}

/**
 * Statements split into training and held-out ones, each side in the file's order: of the true
 * statements and of the false ones alike, a seeded choice of max(1, round(f · count)) is held out,
 * so accuracy and AUROC on the held-out side see both labels and training keeps both too.
 */
export function splitLabelledStatements(rows: readonly LabelledStatement[], heldOutFraction: number, seed: number): { train: LabelledStatement[]; heldOut: LabelledStatement[] } {
  const f = heldOutFraction;
  if (!(f > 0 && f < 1)) throw new DataFormatError(`the held-out share of statements must be above 0 and below 1, got ${f}`);
  const rng = new Rng(seed);
  const held = new Set<number>();
  for (const label of [true, false]) {
    const indices = rows.flatMap((r, i) => (r.label === label ? [i] : []));
    if (indices.length < 2) throw new DataFormatError(`holding out ${label} statements and training on others takes at least 2 of them; there ${indices.length === 1 ? 'is 1' : 'are none'}: add ${label} statements`);
    const count = Math.min(indices.length - 1, Math.max(1, Math.round(f * indices.length)));
    for (const i of rng.shuffle(indices).slice(0, count)) held.add(i);
  }
  return { train: rows.filter((_, i) => !held.has(i)), heldOut: rows.filter((_, i) => held.has(i)) };
}

/** A hash of every statement and its label, in order: equal fingerprints, the same statements (what a share link checks them by). */
export function labelledStatementsFingerprint(rows: readonly LabelledStatement[]): string {
  const hash = new ContentHash();
  for (const r of rows) hash.update(r.statement).update(String(r.label));
  return hash.hex();
}

/** Refuse statements (from `name`) that are not the ones a share link was made with, before any training. */
export function checkStatementsFingerprint(name: string, rows: readonly LabelledStatement[], expected: string): void {
  const fingerprint = labelledStatementsFingerprint(rows);
  if (fingerprint !== expected) {
    throw new DatasetError(`These are not the labelled statements the link was made with: ${name} gives statements with fingerprint ${fingerprint}, the link expects ${expected}. Choose the same file (same content).`);
  }
}
