/** Inputs of the evaluation: an embedding function and the held-out data it is judged on. */
import type { TextRole } from '../model/sentence-config.ts';

/** Texts of one role (the model's prompt for it applies) → sentence embeddings, one per text, in order. */
export type Embedder = (texts: string[], role: TextRole) => Promise<Float32Array[]>;

/** A text and the role it is embedded in. */
export interface RoleText {
  text: string;
  role: TextRole;
}

/**
 * A pair of texts in a cardiology-style evaluation set (the CardioEmbed design): `similar` pairs
 * share a disease category, `different` pairs do not, `negation` pairs are a finding and its negation.
 */
export interface EvalPair {
  a: string;
  b: string;
  group: 'similar' | 'different' | 'negation';
}

/** A gene–disease pair, a true (curated) association or a false (sampled) one. */
export interface GeneDiseaseAssociation {
  /** What stands for the gene, e.g. its symbol. */
  gene: string;
  /** What stands for the disease, e.g. its name. */
  disease: string;
  /** The pair as one sentence, e.g. "BRCA1 is associated with breast cancer". */
  sentence: string;
  associated: boolean;
}

/** A text with a class label (linear probe, silhouette, t-SNE colours). */
export interface LabelledText {
  text: string;
  label: string;
}

/** Queries against a corpus; `relevant` lists the ids of the corpus items that answer each query. */
export interface RetrievalSet {
  corpus: { id: string; text: string }[];
  queries: { text: string; relevant: string[] }[];
}

/** Everything one evaluation looks at; each part is optional and its metrics appear when present. */
export interface EvalSet {
  pairs?: EvalPair[];
  associations?: GeneDiseaseAssociation[];
  labelled?: LabelledText[];
  retrieval?: RetrievalSet;
}
