/** Building evaluation sets from what the data layer parses (labelled pair rows, associations). */
import type { EvalPair, GeneDiseaseAssociation, LabelledText, RetrievalSet } from './types.ts';

const GROUPS = new Set<EvalPair['group']>(['similar', 'different', 'negation']);

/** A labelled pair row as src/data/pairs.ts yields it. */
export interface LabelledPairRow {
  textA: string;
  textB: string;
  label: number;
  group?: string;
  line?: number;
}

/**
 * Eval pairs from labelled rows: the row's group column when it names similar / different /
 * negation, otherwise label 1 → similar and 0 → different.
 */
export function evalPairsFromRows(rows: readonly LabelledPairRow[]): EvalPair[] {
  return rows.map((row, i) => {
    const where = row.line !== undefined ? `line ${row.line}` : `row ${i}`;
    const group = row.group?.trim().toLowerCase();
    if (group && GROUPS.has(group as EvalPair['group'])) return { a: row.textA, b: row.textB, group: group as EvalPair['group'] };
    if (group) throw new Error(`${where}: group "${row.group}" is not similar, different or negation`);
    if (row.label === 1) return { a: row.textA, b: row.textB, group: 'similar' };
    if (row.label === 0) return { a: row.textA, b: row.textB, group: 'different' };
    throw new Error(`${where}: label ${row.label} is neither 1 (similar) nor 0 (different), and there is no group column`);
  });
}

/** Retrieval over similar pairs: each pair's first text queries the corpus of all second texts. */
export function retrievalFromPairs(pairs: readonly EvalPair[]): RetrievalSet {
  const similar = pairs.filter((p) => p.group === 'similar');
  const ids = new Map<string, string>();
  for (const p of similar) if (!ids.has(p.b)) ids.set(p.b, `c${ids.size}`);
  return {
    corpus: [...ids].map(([text, id]) => ({ id, text })),
    queries: similar.map((p) => ({ text: p.a, relevant: [ids.get(p.b)!] })),
  };
}

/** Association sentences labelled "associated" / "not associated" (linear probe, silhouette, t-SNE). */
export function labelledFromAssociations(associations: readonly GeneDiseaseAssociation[]): LabelledText[] {
  return associations.map((a) => ({ text: a.sentence, label: a.associated ? 'associated' : 'not associated' }));
}
