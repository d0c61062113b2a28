/**
 * Seeded, reproducible training datasets from a gene–disease graph, and from pair files.
 *
 * Negatives (one per positive, 1:1):
 *  - random: a uniformly random gene and a uniformly random disease (from the same split's
 *    entities) that is not a known association anywhere in the file and not already a negative.
 *  - hard: for positive (g, d), keep g and replace d by a disease two steps away in the graph —
 *    d → another gene g2 of d → another disease d' of g2 (when d has no other gene, start from
 *    another disease of g instead) — that is not a known partner of g. CTD's
 *    files carry no MeSH tree, so "shares a gene with d" stands in for "same disease category";
 *    and because every gene appears in the negatives exactly as often as in the positives, and a
 *    disease is reached about in proportion to its degree, entity frequency gives the label away
 *    far less than with random negatives. When 32 walks find nothing, a random disease of the split
 *    is used and counted in `hardNegativeFallbacks`.
 * Splits: random (positives shuffled, testFraction to test, each negative follows its positive) or
 * entity-held-out (see entity-split.ts; associations that straddle are dropped and counted, and
 * negatives are drawn within each side so the sides share no gene and no disease). Both compare
 * genes and diseases by their normalised text, so associations that read the same stay on one side.
 */
import { Rng } from './rng.ts';
import { hash32 } from '../engine/rng.ts';
import { entityHeldOut } from './entity-split.ts';
import { DatasetError } from './errors.ts';
import { type CtdGraph, adjacency } from './graph.ts';
import { ContentHash } from './hash.ts';
import type { PairLayout, PairRow } from './pairs.ts';
import { KeyIds, UnionFind, normaliseText, splitByGroup } from './text-groups.ts';
import { type BadRows, describeBadRows } from './text.ts';

export const DEFAULT_TEMPLATE = '{GeneSymbol} is associated with {DiseaseName}';
const PLACEHOLDERS = ['GeneSymbol', 'GeneID', 'DiseaseName', 'DiseaseID'] as const;
const HARD_WALKS = 32;
const SAMPLE_TRIES = 10_000;

export type NegativeMode = 'random' | 'hard';
export type SplitMode = 'random' | 'entity';
export type Split = 'train' | 'test';

export interface BuildOptions {
  seed: number;
  negatives: NegativeMode;
  split: SplitMode;
  /** Share of (kept) positives in the test split; default 0.2. */
  testFraction?: number;
  /** Sentence template; default DEFAULT_TEMPLATE. */
  template?: string;
}

/** One training example as every consumer sees it (the batch reader's views are projections of this). */
export interface Example {
  /** Gene text / anchor / first text. */
  textA: string;
  /** Disease text / positive / second text. */
  textB: string;
  label: number;
  /** Explicit negatives for textA (hard negative disease text, or a pair file's negatives). */
  negatives: string[];
  /** CTD builds: the templated sentence. */
  sentence?: string;
  /** Pair files: the category column. */
  group?: string;
  geneId?: string;
  diseaseId?: string;
}

export interface SplitStats {
  rows: number;
  positives: number;
  negatives: number;
  genes: number;
  diseases: number;
}

export interface CtdBuildStats {
  seed: number;
  negatives: NegativeMode;
  split: SplitMode;
  testFraction: number;
  template: string;
  /** Associations in the source graph. */
  positives: number;
  uniqueGenes: number;
  uniqueDiseases: number;
  /** Rows over both splits (positives kept + their negatives). */
  rows: number;
  train: SplitStats;
  test: SplitStats;
  /** Entity split: associations whose gene and disease fell on different sides. */
  droppedStraddling: number;
  hardNegativeFallbacks: number;
  /** Genes, diseases and (gene, disease) pairs present in both splits (pairs compared in words). */
  overlap: { genes: number; diseases: number; pairs: number };
  /** Genes and diseases whose normalised text is an earlier one's, so split and compared as that one. */
  sameText: { genes: number; diseases: number };
  /** Hash of every example in order: equal fingerprints, equal datasets. */
  fingerprint: string;
}

export interface CtdBuild {
  stats: CtdBuildStats;
  train: Example[];
  test: Example[];
}

/** Check a template: known placeholders only, at least one for the gene and one for the disease. */
export function checkTemplate(template: string): void {
  const used = [...template.matchAll(/\{([^{}]*)\}/g)].map((m) => m[1]);
  const unknown = used.filter((p) => !(PLACEHOLDERS as readonly string[]).includes(p));
  if (unknown.length > 0) throw new DatasetError(`Unknown placeholder {${unknown[0]}} in the template; use ${PLACEHOLDERS.map((p) => `{${p}}`).join(', ')}.`);
  if (!used.some((p) => p.startsWith('Gene')) || !used.some((p) => p.startsWith('Disease'))) {
    throw new DatasetError('The template needs a gene placeholder ({GeneSymbol} or {GeneID}) and a disease placeholder ({DiseaseName} or {DiseaseID}).');
  }
}

export function fillTemplate(template: string, gene: { id: string; symbol: string }, disease: { id: string; name: string }): string {
  return compileTemplate(template)(gene, disease);
}

/** The template as a function (split once at its placeholders, then joined per example). */
function compileTemplate(template: string): (gene: { id: string; symbol: string }, disease: { id: string; name: string }) => string {
  const parts = template.split(/\{(GeneSymbol|GeneID|DiseaseName|DiseaseID)\}/);
  return (gene, disease) => {
    let out = parts[0];
    for (let i = 1; i < parts.length; i += 2) {
      const p = parts[i];
      out += (p === 'GeneSymbol' ? gene.symbol : p === 'GeneID' ? gene.id : p === 'DiseaseName' ? disease.name : disease.id) + parts[i + 1];
    }
    return out;
  };
}

/** Independent seeded streams, so that e.g. changing the negative mode leaves the split unchanged. */
function stream(seed: number, purpose: number): Rng {
  return new Rng(hash32((seed ^ Math.imul(purpose, 0x9e3779b1)) >>> 0));
}

interface Side {
  /** Positive edge indices. */
  edges: number[];
  genes: number[];
  diseases: number[];
}

function sideOf(graph: CtdGraph, edges: number[]): Side {
  const genes = new Set<number>();
  const diseases = new Set<number>();
  for (const e of edges) {
    genes.add(graph.edgeGene[e]);
    diseases.add(graph.edgeDisease[e]);
  }
  return { edges, genes: [...genes].sort((a, b) => a - b), diseases: [...diseases].sort((a, b) => a - b) };
}

/** `badRows`: the parse's bad rows, named when too few associations are left to split. */
export function buildCtdDataset(graph: CtdGraph, options: BuildOptions, badRows?: BadRows): CtdBuild {
  const testFraction = options.testFraction ?? 0.2;
  const template = options.template ?? DEFAULT_TEMPLATE;
  if (!(testFraction > 0 && testFraction < 1)) throw new DatasetError(`testFraction must be between 0 and 1, got ${testFraction}`);
  if (!Number.isInteger(options.seed)) throw new DatasetError(`The seed must be an integer, got ${options.seed}`);
  checkTemplate(template);
  const nGenes = graph.genes.length;
  const nDiseases = graph.diseases.length;
  const nEdges = graph.edgeGene.length;
  if (nEdges < 2) throw new DatasetError(`A dataset needs at least 2 associations to split; this graph has ${nEdges}.${describeBad(badRows)}`);
  // Genes or diseases with the same text, normalised (CTD names some diseases under both a MESH and
  // an OMIM id), count as one wherever pairs are compared: no negative reads like a positive, and
  // no pair or entity of test is in train in words.
  const geneAs = firstWithSameText(graph.genes.map((g) => g.symbol));
  const diseaseAs = firstWithSameText(graph.diseases.map((d) => d.name));
  const code = (g: number, d: number) => geneAs[g] * nDiseases + diseaseAs[d];
  const known = new Set<number>();
  for (let e = 0; e < nEdges; e++) known.add(code(graph.edgeGene[e], graph.edgeDisease[e]));

  // Split the positives.
  const splitRng = stream(options.seed, 1);
  let train: number[];
  let test: number[];
  let droppedStraddling = 0;
  if (options.split === 'random') {
    const order = splitRng.shuffle(Array.from({ length: nEdges }, (_, e) => e));
    const nTest = Math.min(nEdges - 1, Math.max(1, Math.round(nEdges * testFraction)));
    const grouped = splitByGroup(order, Array.from({ length: nEdges }, (_, e) => code(graph.edgeGene[e], graph.edgeDisease[e])), nTest);
    if (grouped.groups < 2) throw new DatasetError(`A dataset needs at least 2 different associations to split; this graph has ${nEdges} with the same text.`);
    test = [];
    train = [];
    for (let e = 0; e < nEdges; e++) (grouped.inTest[e] ? test : train).push(e);
  } else {
    const edgeGene = graph.edgeGene.map((g) => geneAs[g]);
    const edgeDisease = graph.edgeDisease.map((d) => diseaseAs[d]);
    const inTest = entityHeldOut(nGenes, nDiseases, edgeGene, edgeDisease, testFraction, splitRng);
    train = [];
    test = [];
    for (let e = 0; e < nEdges; e++) {
      const g = inTest[edgeGene[e]];
      const d = inTest[nGenes + edgeDisease[e]];
      if (g && d) test.push(e);
      else if (!g && !d) train.push(e);
      else droppedStraddling++;
    }
  }
  const sides: Record<Split, Side> = { train: sideOf(graph, train), test: sideOf(graph, test) };
  // Random split: negatives may use any entity; entity split: only the side's own.
  const everything = options.split === 'random' ? sideOf(graph, Array.from({ length: nEdges }, (_, e) => e)) : null;

  const negRng = stream(options.seed, 2);
  const usedNegatives = new Set<number>();
  let hardNegativeFallbacks = 0;
  const pools = (s: Split) => everything ?? sides[s];
  const randomDisease = (pool: Side, g: number): number => {
    for (let t = 0; t < SAMPLE_TRIES; t++) {
      const d = pool.diseases[negRng.int(pool.diseases.length)];
      const c = code(g, d);
      if (!known.has(c) && !usedNegatives.has(c)) return d;
    }
    return -1;
  };
  // hard: the positive's hard negative disease, or -1.
  const examples: Record<Split, Array<{ g: number; d: number; label: 0 | 1; hard: number }>> = { train: [], test: [] };
  for (const s of ['train', 'test'] as const) {
    const pool = pools(s);
    const adj = options.negatives === 'hard' ? adjacency(nGenes, nDiseases, ...edgeArrays(graph, everything ? null : sides[s].edges)) : null;
    for (const e of sides[s].edges) {
      const g = graph.edgeGene[e];
      const d = graph.edgeDisease[e];
      let ng = -1;
      let nd = -1;
      if (adj) {
        ng = g;
        nd = hardNegativeDisease(adj, nGenes, g, d, negRng, (c) => known.has(c) || usedNegatives.has(c), code);
        if (nd < 0) {
          hardNegativeFallbacks++;
          nd = randomDisease(pool, g);
        }
      } else {
        for (let t = 0; t < SAMPLE_TRIES && nd < 0; t++) {
          const cg = pool.genes[negRng.int(pool.genes.length)];
          const cd = pool.diseases[negRng.int(pool.diseases.length)];
          const c = code(cg, cd);
          if (!known.has(c) && !usedNegatives.has(c)) {
            ng = cg;
            nd = cd;
          }
        }
      }
      if (nd < 0) {
        throw new DatasetError(
          `Could not find a negative for ${graph.genes[g].symbol} – ${graph.diseases[d].name} in the ${s} split: ` +
            `its ${pool.genes.length} genes × ${pool.diseases.length} diseases are nearly all known associations.`,
        );
      }
      usedNegatives.add(code(ng, nd));
      examples[s].push({ g, d, label: 1, hard: adj ? nd : -1 });
      examples[s].push({ g: ng, d: nd, label: 0, hard: -1 });
    }
  }

  // Shuffle each split, make texts, count.
  const orderRng = stream(options.seed, 3);
  const hash = new ContentHash().update(template);
  const out: Record<Split, Example[]> = { train: [], test: [] };
  const fill = compileTemplate(template);
  // Per split, marks of the genes and diseases it uses; train's pairs, to count pairs in both.
  const geneIn = { train: new Uint8Array(nGenes), test: new Uint8Array(nGenes) };
  const diseaseIn = { train: new Uint8Array(nDiseases), test: new Uint8Array(nDiseases) };
  const trainPairs = new Set<number>();
  let pairsInBoth = 0;
  for (const s of ['train', 'test'] as const) {
    for (const x of orderRng.shuffle(examples[s])) {
      const gene = graph.genes[x.g];
      const disease = graph.diseases[x.d];
      out[s].push({
        textA: gene.symbol,
        textB: disease.name,
        label: x.label,
        negatives: x.hard < 0 ? [] : [graph.diseases[x.hard].name],
        sentence: fill(gene, disease),
        geneId: gene.id,
        diseaseId: disease.id,
      });
      geneIn[s][x.g] = 1;
      diseaseIn[s][x.d] = 1;
      if (s === 'train') trainPairs.add(code(x.g, x.d));
      else if (trainPairs.has(code(x.g, x.d))) pairsInBoth++;
      hash.update(s).update(gene.id).update(disease.id).update(x.label === 1 ? '1' : '0');
    }
  }
  const count = (marks: Uint8Array, other?: Uint8Array) => marks.reduce((n, m, i) => n + (m && (!other || other[i]) ? 1 : 0), 0);
  const splitStats = (s: Split): SplitStats => {
    const positives = sides[s].edges.length;
    return { rows: out[s].length, positives, negatives: out[s].length - positives, genes: count(geneIn[s]), diseases: count(diseaseIn[s]) };
  };
  return {
    train: out.train,
    test: out.test,
    stats: {
      seed: options.seed,
      negatives: options.negatives,
      split: options.split,
      testFraction,
      template,
      positives: nEdges,
      uniqueGenes: nGenes,
      uniqueDiseases: nDiseases,
      rows: out.train.length + out.test.length,
      train: splitStats('train'),
      test: splitStats('test'),
      droppedStraddling,
      hardNegativeFallbacks,
      overlap: { genes: count(geneIn.train, geneIn.test), diseases: count(diseaseIn.train, diseaseIn.test), pairs: pairsInBoth },
      sameText: { genes: geneAs.filter((g, i) => g !== i).length, diseases: diseaseAs.filter((d, i) => d !== i).length },
      fingerprint: hash.hex(),
    },
  };
}

/** For each text, the index of the first text equal to it after normaliseText. */
function firstWithSameText(texts: string[]): Int32Array {
  const first = new Map<string, number>();
  return Int32Array.from(texts, (t, i) => {
    const key = normaliseText(t);
    if (!first.has(key)) first.set(key, i);
    return first.get(key)!;
  });
}

const describeBad = (badRows: BadRows | undefined) => (badRows ? describeBadRows(badRows.count, badRows.samples) : '');

function edgeArrays(graph: CtdGraph, edges: number[] | null): [ArrayLike<number>, ArrayLike<number>] {
  if (edges === null) return [graph.edgeGene, graph.edgeDisease];
  return [edges.map((e) => graph.edgeGene[e]), edges.map((e) => graph.edgeDisease[e])];
}

/**
 * A disease that shares a gene with d (d → gene g2 ≠ g → disease d' ≠ d) — or, when g is d's only
 * gene, with another disease of g — that `taken` does not exclude for g; -1 when walks find none.
 */
function hardNegativeDisease(
  adj: { offsets: Int32Array; neighbours: Int32Array },
  nGenes: number,
  g: number,
  d: number,
  rng: Rng,
  taken: (code: number) => boolean,
  code: (g: number, d: number) => number,
): number {
  const { offsets, neighbours } = adj;
  const pick = (v: number) => neighbours[offsets[v] + rng.int(offsets[v + 1] - offsets[v])];
  const degree = (v: number) => offsets[v + 1] - offsets[v];
  const dn = nGenes + d;
  if (degree(dn) <= 1 && degree(g) <= 1) return -1; // an isolated pair: nothing is related
  for (let walk = 0; walk < HARD_WALKS; walk++) {
    const start = degree(dn) > 1 ? dn : pick(g);
    if (start === dn && degree(dn) <= 1) continue;
    const g2 = pick(start);
    if (g2 === g) continue;
    const d2 = pick(g2) - nGenes;
    if (d2 !== d && !taken(code(g, d2))) return d2;
  }
  return -1;
}

export interface PairBuildStats {
  seed: number;
  testFraction: number;
  layout: PairLayout;
  /** Rows split: the file's rows less exact duplicates. */
  rows: number;
  /** Rows repeating an earlier row exactly (same texts, label and negatives), left out. */
  duplicatesRemoved: number;
  /** Groups of rows sharing a normalised text (see buildPairDataset); each lies in one split. */
  groups: number;
  /** Rows in the largest group: a group larger than the test share cannot go to test. */
  largestGroup: number;
  train: { rows: number };
  test: { rows: number };
  fingerprint: string;
}

export interface PairBuild {
  stats: PairBuildStats;
  train: Example[];
  test: Example[];
}

export function exampleOfPair(row: PairRow): Example {
  return row.kind === 'triplet'
    ? { textA: row.anchor, textB: row.positive, label: 1, negatives: row.negatives }
    : { textA: row.textA, textB: row.textB, label: row.label, negatives: [], ...(row.group !== undefined ? { group: row.group } : {}) };
}

/**
 * A seeded train/test split of a pair file's rows in which no text of the test split is in train.
 * Exact repeats of a row (every field equal) are removed first. Then rows are grouped by a union-find over their
 * normalised texts (normaliseText): each row joins its first and second text (anchor and positive),
 * so rows that share a text on either side — one question with two answers, an answer that is
 * another row's question, "AF" and " af" — form one group, and a group never straddles the split.
 * Negatives are left out of the grouping: they are distractors, not the row's meaning.
 * `badRows`: the parse's bad rows, named when too few rows are left to split.
 */
export function buildPairDataset(rows: PairRow[], layout: PairLayout, options: { seed: number; testFraction?: number }, badRows?: BadRows): PairBuild {
  const testFraction = options.testFraction ?? 0.2;
  if (!(testFraction > 0 && testFraction < 1)) throw new DatasetError(`testFraction must be between 0 and 1, got ${testFraction}`);
  const examples: Example[] = [];
  const seen = new Set<string>();
  for (const row of rows) {
    const x = exampleOfPair(row);
    const key = JSON.stringify([x.textA, x.textB, x.label, x.negatives, x.group]);
    if (seen.has(key)) continue;
    seen.add(key);
    examples.push(x);
  }
  const n = examples.length;
  const duplicatesRemoved = rows.length - n;
  const repeats = duplicatesRemoved > 0 ? ` after removing ${duplicatesRemoved} exact duplicate row(s)` : '';
  if (n < 2) throw new DatasetError(`A dataset needs at least 2 rows to split; this one has ${n}${repeats}.${describeBad(badRows)}`);
  const texts = new KeyIds();
  const ends = examples.map((x) => [texts.id(normaliseText(x.textA)), texts.id(normaliseText(x.textB))]);
  const sets = new UnionFind(texts.size);
  for (const [a, b] of ends) sets.union(a, b);
  const groupOf = ends.map(([a]) => sets.find(a));
  const order = stream(options.seed, 4).shuffle(examples.map((_, i) => i));
  const nTest = Math.min(n - 1, Math.max(1, Math.round(n * testFraction)));
  const { inTest, groups, largestGroup } = splitByGroup(order, groupOf, nTest);
  if (groups < 2) {
    throw new DatasetError(
      `The ${n} rows cannot be split: they are linked into one group by shared texts (rows sharing a text, ignoring case and spaces, ` +
        'must stay on one side so that no test text is seen in training).',
    );
  }
  const test = order.filter((i) => inTest[i]).map((i) => examples[i]);
  const train = order.filter((i) => !inTest[i]).map((i) => examples[i]);
  const hash = new ContentHash();
  for (const [s, xs] of [['train', train], ['test', test]] as const) {
    for (const x of xs) hash.update(s).update(x.textA).update(x.textB).update(String(x.label)).update(x.negatives.join('\u0001'));
  }
  return {
    train,
    test,
    stats: {
      seed: options.seed,
      testFraction,
      layout,
      rows: n,
      duplicatesRemoved,
      groups,
      largestGroup,
      train: { rows: train.length },
      test: { rows: test.length },
      fingerprint: hash.hex(),
    },
  };
}

const percent = (x: number) => `${(100 * x).toFixed(1)}%`;

/**
 * What a build did about texts that read the same, in sentences (the CLI prints them, the app shows
 * them with the build). Builds stored by earlier versions lack these stats and get none.
 */
export function groupingNotes(stats: CtdBuildStats | PairBuildStats): string[] {
  const notes: string[] = [];
  if ('sameText' in stats) {
    const { genes, diseases } = stats.sameText;
    if (genes + diseases > 0) notes.push(`${genes} gene(s) and ${diseases} disease(s) share their text with another id; each such set is split and compared as one.`);
  } else if ('groups' in stats) {
    if (stats.duplicatesRemoved > 0) notes.push(`${stats.duplicatesRemoved} exact duplicate row(s) removed.`);
    if (stats.groups < stats.rows) {
      notes.push(`${stats.rows} rows form ${stats.groups} groups of rows sharing a text (largest: ${stats.largestGroup} rows); each group is wholly in train or in test.`);
    }
    const share = stats.test.rows / stats.rows;
    if (share < stats.testFraction / 2) {
      notes.push(`Warning: test holds ${percent(share)} of the rows, not the ${percent(stats.testFraction)} asked for: the groups of rows sharing texts are too large to fit.`);
    }
  }
  return notes;
}
