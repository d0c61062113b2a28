/**
 * The gene–disease association graph a dataset is built from, in one canonical order (genes by
 * GeneID, diseases by DiseaseID, edges by gene then disease) so that the same associations give the
 * same build whether they come from a file (CLI) or from IndexedDB (app).
 */
export interface CtdGraph {
  genes: { id: string; symbol: string }[];
  diseases: { id: string; name: string }[];
  /** Edge i joins genes[edgeGene[i]] and diseases[edgeDisease[i]]; no edge repeats. */
  edgeGene: Int32Array;
  edgeDisease: Int32Array;
}

const byId = (x: { id: string }, y: { id: string }) => (x.id < y.id ? -1 : x.id > y.id ? 1 : 0);

export class GraphBuilder {
  private genes = new Map<string, string>();
  private diseases = new Map<string, string>();
  private pairs = new Map<string, Set<string>>();

  /** Add an association; repeats are ignored, and the first symbol/name seen for an id is kept. */
  add(geneId: string, geneSymbol: string, diseaseId: string, diseaseName: string): void {
    if (!this.genes.has(geneId)) this.genes.set(geneId, geneSymbol);
    if (!this.diseases.has(diseaseId)) this.diseases.set(diseaseId, diseaseName);
    let set = this.pairs.get(geneId);
    if (!set) this.pairs.set(geneId, (set = new Set()));
    set.add(diseaseId);
  }

  finish(): CtdGraph {
    const genes = [...this.genes].map(([id, symbol]) => ({ id, symbol })).sort(byId);
    const diseases = [...this.diseases].map(([id, name]) => ({ id, name })).sort(byId);
    const diseaseIndex = new Map(diseases.map((d, i) => [d.id, i]));
    let n = 0;
    for (const set of this.pairs.values()) n += set.size;
    const edgeGene = new Int32Array(n);
    const edgeDisease = new Int32Array(n);
    let e = 0;
    genes.forEach((g, gi) => {
      const ds = [...this.pairs.get(g.id)!].map((d) => diseaseIndex.get(d)!).sort((x, y) => x - y);
      for (const d of ds) {
        edgeGene[e] = gi;
        edgeDisease[e++] = d;
      }
    });
    return { genes, diseases, edgeGene, edgeDisease };
  }
}

/** Compressed adjacency of a bipartite graph over nodes 0..nGenes-1 (genes) and nGenes.. (diseases). */
export interface Adjacency {
  offsets: Int32Array;
  neighbours: Int32Array;
}

export function adjacency(nGenes: number, nDiseases: number, edgeGene: ArrayLike<number>, edgeDisease: ArrayLike<number>): Adjacency {
  const n = nGenes + nDiseases;
  const offsets = new Int32Array(n + 1);
  for (let e = 0; e < edgeGene.length; e++) {
    offsets[edgeGene[e] + 1]++;
    offsets[nGenes + edgeDisease[e] + 1]++;
  }
  for (let v = 0; v < n; v++) offsets[v + 1] += offsets[v];
  const fill = offsets.slice(0, n);
  const neighbours = new Int32Array(offsets[n]);
  for (let e = 0; e < edgeGene.length; e++) {
    const g = edgeGene[e];
    const d = nGenes + edgeDisease[e];
    neighbours[fill[g]++] = d;
    neighbours[fill[d]++] = g;
  }
  return { offsets, neighbours };
}
