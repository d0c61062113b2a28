/**
 * The presets of the guided flow's first step: each picks a bundled data set and the settings that
 * suit it, explained in one plain sentence with the technical summary beside it. Every value stays
 * editable under "Advanced settings"; a configuration edited there matches no preset any more.
 */
import { type RunConfig, STUDY_PRESETS, defaultRunConfig } from '../train/run-config.ts';
import { DEMO_SCHEDULE } from '../train/defaults.ts';
import { DEMO_SETS, type DemoSet } from './demo-sets.ts';

export interface GuidedPreset {
  id: string;
  title: string;
  /** What the preset does, for someone who does not train models. */
  sentence: string;
  /** The same for researchers: data, adapter, loss, schedule. */
  technical: string;
  demo: DemoSet;
  /** The preset's adapter, loss and schedule on `config` (its model and sentence settings kept). */
  apply(config: RunConfig): RunConfig;
}

const studyPreset = (prefix: string) => STUDY_PRESETS.find((p) => p.name.startsWith(prefix))!;
const demoSet = (id: string) => DEMO_SETS.find((d) => d.id === id)!;

/** The default adapter, schedule and seeds under a preset's own changes, so that no preset inherits another's. */
function fromDefaults(config: RunConfig): RunConfig {
  const defaults = defaultRunConfig(config.data);
  return { ...config, lora: defaults.lora, train: defaults.train, seeds: defaults.seeds };
}

const cardiology = studyPreset('cardiology');
const ctd = studyPreset('CTD');

export const GUIDED_PRESETS: readonly GuidedPreset[] = [
  {
    id: 'demo',
    title: 'Demo: see a change in about a minute',
    sentence:
      'A tiny practice model (random weights, no medical knowledge) learns from cardiology sentence pairs for a few steps, so you can watch every stage and see the scores move; its numbers mean nothing clinically.',
    technical: `Bundled demo BERT, cardiology anchor/paraphrase pairs, InfoNCE, LoRA r16 α32 on query and value, ${DEMO_SCHEDULE.steps} steps of ${DEMO_SCHEDULE.batchSize} at learning rate ${DEMO_SCHEDULE.learningRate}.`,
    demo: demoSet('cardiology-pairs'),
    apply: (c) => {
      // The study's settings at the demo's schedule and length, so the tiny model shows a change in about a minute.
      const defaults = fromDefaults(c);
      const config = cardiology.apply(defaults);
      return { ...config, maxLength: defaults.maxLength, train: { ...config.train, ...DEMO_SCHEDULE } };
    },
  },
  {
    id: 'cardiology',
    title: 'Cardiology pairs (InfoNCE, LoRA r16, scale 20)',
    sentence:
      'Teaches the model that two wordings of the same cardiology statement mean the same thing, then checks whether it tells similar findings from different ones better than before.',
    technical: cardiology.description,
    demo: demoSet('cardiology-pairs'),
    apply: (c) => cardiology.apply(fromDefaults(c)),
  },
  {
    id: 'ctd',
    title: 'CTD gene–disease statements (QLoRA, every linear layer)',
    sentence:
      'Teaches the model which genes go with which diseases from short sentences such as “FBN1 is associated with Marfan syndrome”, then checks it on associations it did not see.',
    technical: ctd.description,
    demo: demoSet('mendelian-gene-disease'),
    apply: (c) => ctd.apply(fromDefaults(c)),
  },
];

/** The preset `config` follows exactly (its data set, adapter, loss and schedule), or null for settings of one's own. */
export function presetOf(config: RunConfig): GuidedPreset | null {
  const source = config.data.source;
  if (source.kind !== 'demo') return null;
  // Keys sorted: a stored or linked configuration may list the same settings in another order.
  const sorted = (_: string, v: unknown) => (v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : 1))) : v);
  const settings = (c: RunConfig) => JSON.stringify([c.quantization, c.lora, c.train, c.seeds], sorted);
  return GUIDED_PRESETS.find((p) => p.demo.id === source.id && settings(p.apply(config)) === settings(config)) ?? null;
}
