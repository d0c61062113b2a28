/**
 * The data sets bundled with the app (public/data/, written and documented by the data layer),
 * how each is built for training and what it is evaluated on.
 */
import type { BuildRecipe, DataRef } from '../train/run-config.ts';

export interface DemoSet {
  id: string;
  label: string;
  description: string;
  /** Relative to the app's base URL. */
  url: string;
  build: BuildRecipe;
  /** A separate bundled evaluation set; without one the build's test split is used. */
  evaluation: { id: string; label: string; url: string } | null;
  /** In CTD's layout and vocabulary: CTD's citation is shown with it. */
  ctd: boolean;
  dataRef(fingerprint: string): DataRef;
}

function demo(set: Omit<DemoSet, 'dataRef'>): DemoSet {
  return {
    ...set,
    dataRef: (fingerprint) => ({
      source: { kind: 'demo', id: set.id },
      build: set.build,
      fingerprint,
      evaluation: set.evaluation ? { kind: 'demo', id: set.evaluation.id } : { kind: 'test-split' },
    }),
  };
}

export const DEMO_SETS: readonly DemoSet[] = [
  demo({
    id: 'cardiology-pairs',
    label: 'Cardiology anchor/paraphrase pairs',
    description: 'Cardiology statements and their paraphrases for contrastive training, evaluated on the bundled cardiology pairs (similar, different and negation).',
    url: 'data/cardiology-train.jsonl',
    build: { kind: 'pairs', testFraction: 0.2 },
    evaluation: { id: 'cardiology-eval', label: 'Cardiology evaluation pairs', url: 'data/cardiology-eval.csv' },
    ctd: false,
  }),
  demo({
    id: 'mendelian-gene-disease',
    label: 'Mendelian gene–disease associations (CTD layout)',
    description:
      '92 well-established single-gene disease associations written for the demo in the layout and disease vocabulary of CTD; random negatives 1:1, evaluated on the held-out split. Far too small to train a useful model.',
    url: 'data/mendelian-gene-disease.csv',
    build: { kind: 'ctd', negatives: 'random', split: 'random', testFraction: 0.2, template: '{GeneSymbol} is associated with {DiseaseName}' },
    evaluation: null,
    ctd: true,
  }),
];
