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
  /** CTD data: the citation must be shown wherever it is used. */
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
];
