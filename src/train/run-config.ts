/**
 * A run's full configuration: which model (and revision), which data (and its fingerprint), the
 * adapter, the training hyperparameters and every seed. It is what a share link carries, what the
 * run history stores and what the engine worker's session runs, so one value reproduces a run.
 */
import { POOLING_MODES } from '../engine/ops/pooling-modes.ts';
import type { ModelRef } from '../model/model-ref.ts';
import { TARGETABLE_MODULES, type TrainingLoraConfig, validateLoraConfig } from '../model/lora.ts';
import type { TrainingShape } from '../model/memory.ts';
import {
  FALLBACK_NORMALIZE,
  FALLBACK_POOLING,
  type RolePrompts,
  type SentenceConfig,
  type SentenceSettings,
  type SettingOrigins,
  sentenceSettings,
} from '../model/sentence-config.ts';
import { APP_LORA_DEFAULTS, APP_SEEDS, APP_TRAIN_DEFAULTS } from './defaults.ts';
import type { TrainConfig } from './trainer.ts';

export const RUN_CONFIG_VERSION = 1;

/** How a training set is built from an ingested file (the seed is the run's data seed). */
export type BuildRecipe =
  | { kind: 'pairs'; testFraction: number }
  | { kind: 'ctd'; negatives: 'random' | 'hard'; split: 'random' | 'entity'; testFraction: number; template: string };

/**
 * Where the training and evaluation data come from: a bundled demo set or the user's own file,
 * how it is built into train/test splits, and the build's fingerprint (a hash of every example in
 * order), which is how a user's file is recognised again.
 */
export interface DataRef {
  source: { kind: 'demo'; id: string } | { kind: 'file'; name: string };
  build: BuildRecipe;
  fingerprint: string;
  /** Evaluate on the build's test split, or on a bundled evaluation set (e.g. the cardiology pairs). */
  evaluation: { kind: 'test-split' } | { kind: 'demo'; id: string };
}

/** A frozen adapter stacked under the trainable one (e.g. a domain adapter), identified by fingerprint. */
export interface FrozenAdapterRef {
  name: string;
  fingerprint: string;
}

/** The trainer's settings minus what the run derives (total steps, seed), plus batching and checkpoints. */
export type TrainSettings = Omit<TrainConfig, 'totalSteps' | 'seed'> & {
  steps: number;
  /** Examples per micro-batch. */
  batchSize: number;
  /** Save a checkpoint every this many optimizer steps (and at the end). */
  checkpointEvery: number;
};

export interface Seeds {
  /** LoRA A initialisation. */
  init: number;
  /** Dropout masks. */
  train: number;
  /** Batch order and dataset building. */
  data: number;
  /** Bootstrap intervals, probes, t-SNE. */
  eval: number;
}

export interface RunConfig {
  v: typeof RUN_CONFIG_VERSION;
  /** An encoder run; absent in links and stored runs made before decoder runs could be shared (shared-run.ts). */
  kind?: 'encoder';
  model: ModelRef;
  quantization: 'nf4' | 'f32';
  frozenAdapter: FrozenAdapterRef | null;
  data: DataRef;
  lora: TrainingLoraConfig;
  /** How texts become embeddings: the model folder's choices when the model was loaded, as edited. */
  pooling: SentenceSettings['pooling'];
  normalize: boolean;
  maxLength: number;
  /** Prepended to queries (anchors, text_a) and passages (positives, negatives, text_b). */
  prompts: RolePrompts;
  train: TrainSettings;
  seeds: Seeds;
}

/** A new run's id: when it started, and a random suffix for runs started in the same millisecond. */
export function newRunId(): string {
  return `run-${new Date().toISOString().replace(/[:.]/g, '-')}-${Math.floor(Math.random() * 36 ** 4).toString(36)}`;
}

/** The dataset id a bundled demo set is ingested under, so it is found again and not ingested twice. */
export function demoDatasetId(id: string): string {
  return `demo-${id}`;
}

export const BUNDLED_DEMO_MODEL: ModelRef = { kind: 'bundled', id: 'demo-bert' };

/** Said wherever numbers from the bundled demo model appear (app, exported README, run report). */
export const DEMO_MODEL_NOTICE =
  'The bundled demo model has random weights: its figures test the pipeline and say nothing about a real model. It is not on the Hugging Face Hub (it ships with qlora-lab, in public/models/demo-bert).';

/** Hub models the app offers by name; any other Hub id + revision can be typed in. */
export const HUB_PRESETS: readonly { label: string; id: string; note: string }[] = [
  { label: 'BioLinkBERT base', id: 'michiyasunaga/BioLinkBERT-base', note: '110M parameters, PubMed + citation links' },
  { label: 'BioLinkBERT large', id: 'michiyasunaga/BioLinkBERT-large', note: '340M parameters' },
  { label: 'PubMedBERT', id: 'microsoft/BiomedNLP-BiomedBERT-base-uncased-abstract-fulltext', note: '110M parameters, PubMed abstracts + PMC full text' },
  { label: 'BGE small', id: 'BAAI/bge-small-en-v1.5', note: '33M parameters, general-purpose embeddings' },
  { label: 'BGE base', id: 'BAAI/bge-base-en-v1.5', note: '110M parameters, general-purpose embeddings' },
  { label: 'MiniLM', id: 'sentence-transformers/all-MiniLM-L6-v2', note: '23M parameters, fast' },
  { label: 'E5 small', id: 'intfloat/e5-small-v2', note: '33M parameters, general-purpose embeddings' },
];

export interface StudyPreset {
  name: string;
  description: string;
  /** The fields the preset sets; everything else keeps its current value. */
  apply(config: RunConfig): RunConfig;
}

/**
 * Presets named after the studies they follow. Each sets the adapter and objective the name
 * states; every value stays editable afterwards.
 */
export const STUDY_PRESETS: readonly StudyPreset[] = [
  {
    name: 'cardiology: r16 α32 query,value InfoNCE',
    description: 'LoRA rank 16, alpha 32 on the attention query and value projections, InfoNCE over anchor/paraphrase pairs with in-batch negatives, 32 pairs per batch, 128 tokens.',
    apply: (c) => ({
      ...c,
      maxLength: 128,
      lora: { ...c.lora, r: 16, alpha: 32, targetModules: ['query', 'value'] },
      train: { ...c.train, batchSize: 32, objective: { kind: 'infonce', scale: 20, symmetric: false } },
    }),
  },
  {
    name: 'CTD QLoRA: r16 α32',
    description: 'QLoRA: NF4 base, LoRA rank 16, alpha 32 on every linear layer, gene text ↔ disease text pairs with InfoNCE.',
    apply: (c) => ({
      ...c,
      quantization: 'nf4',
      lora: { ...c.lora, r: 16, alpha: 32, targetModules: ['query', 'key', 'value', 'dense'] },
      train: { ...c.train, objective: { kind: 'infonce', scale: 20, symmetric: false } },
    }),
  },
];

/**
 * The sequences and length one training step of `config` puts through the encoder: anchors,
 * positives and, for InfoNCE, one explicit negative each counted in (the data may have them), at the
 * run's length capped by the model's positions.
 */
export function runStepShape(config: RunConfig, modelMaxPositions: number): TrainingShape {
  const negatives = config.train.objective.kind === 'infonce' ? 1 : 0;
  return { sequences: config.train.batchSize * (2 + negatives), seq: Math.min(config.maxLength, modelMaxPositions) };
}

/** Tokens per text in the app when the model folder does not say (short: training runs in a browser tab). */
export const APP_FALLBACK_MAX_LENGTH = 64;

const NO_PROMPTS: RolePrompts = { query: '', passage: '' };

/** The settings a model folder gives a new run in the app, and where each came from. */
export function modelSentenceSettings(sentence: SentenceConfig): { settings: SentenceSettings; origins: SettingOrigins } {
  const edited = 'the run configuration';
  return sentenceSettings(sentence, {}, APP_FALLBACK_MAX_LENGTH, { pooling: edited, normalize: edited, maxLength: edited, query: edited, passage: edited });
}

/** `config` with a model's sentence settings (a model was loaded for a new run). */
export function withSentenceSettings(config: RunConfig, settings: SentenceSettings): RunConfig {
  return { ...config, pooling: settings.pooling, normalize: settings.normalize, maxLength: settings.maxLength, prompts: { ...settings.prompts } };
}

/** A run's sentence settings. */
export function runSentenceSettings(config: RunConfig): SentenceSettings {
  return { pooling: config.pooling, normalize: config.normalize, maxLength: config.maxLength, prompts: config.prompts };
}

/** A new run: the app's defaults (the cardiology study's adapter and objective at a short schedule). */
export function defaultRunConfig(data: DataRef): RunConfig {
  return {
    v: RUN_CONFIG_VERSION,
    model: BUNDLED_DEMO_MODEL,
    quantization: 'nf4',
    frozenAdapter: null,
    data,
    lora: { ...APP_LORA_DEFAULTS, targetModules: [...APP_LORA_DEFAULTS.targetModules] },
    // A model's folder replaces these when it is loaded.
    pooling: FALLBACK_POOLING,
    normalize: FALLBACK_NORMALIZE,
    maxLength: APP_FALLBACK_MAX_LENGTH,
    prompts: { ...NO_PROMPTS },
    train: APP_TRAIN_DEFAULTS,
    seeds: { ...APP_SEEDS },
  };
}

/** A configuration stored or linked by an earlier version of the app: runs made before prompts were recorded used none. */
export function upgradeRunConfig(config: RunConfig): RunConfig {
  return config.prompts === undefined ? { ...config, prompts: { ...NO_PROMPTS } } : config;
}

/**
 * Check a configuration that came from outside (a share link, a stored run): every field present,
 * of the right type and in range. Throws one error listing every problem.
 */
export function validateRunConfig(value: unknown): RunConfig {
  const problems: string[] = [];
  const c = value as RunConfig;
  const { num, str } = fieldChecks(problems);
  const int = (lo: number) => (n: number) => Number.isInteger(n) && n >= lo;
  if (!isObject(value)) throw new Error('the run configuration is not an object');
  if (c.v !== RUN_CONFIG_VERSION) throw new Error(`this run configuration has version ${JSON.stringify(c.v)}; this app reads version ${RUN_CONFIG_VERSION}`);
  if (c.kind !== undefined && c.kind !== 'encoder') problems.push(`kind must be encoder or absent (got ${JSON.stringify(c.kind)})`);

  checkModelRef(c.model, problems);
  if (c.quantization !== 'nf4' && c.quantization !== 'f32') problems.push(`quantization must be nf4 or f32 (got ${JSON.stringify(c.quantization)})`);
  if (c.frozenAdapter !== null) {
    if (!isObject(c.frozenAdapter)) problems.push('frozenAdapter must be null or {name, fingerprint}');
    else {
      str(c.frozenAdapter.name, 'frozenAdapter.name');
      str(c.frozenAdapter.fingerprint, 'frozenAdapter.fingerprint');
    }
  }
  if (!isObject(c.data)) problems.push('data is missing');
  else {
    const { source, build, evaluation } = c.data;
    checkDataSource(source, problems);
    if (!isObject(build) || (build.kind !== 'pairs' && build.kind !== 'ctd')) problems.push('data.build.kind must be pairs or ctd');
    else {
      num(build.testFraction, 'data.build.testFraction', (n) => n > 0 && n < 1, 'in (0, 1)');
      if (build.kind === 'ctd') {
        if (build.negatives !== 'random' && build.negatives !== 'hard') problems.push('data.build.negatives must be random or hard');
        if (build.split !== 'random' && build.split !== 'entity') problems.push('data.build.split must be random or entity');
        str(build.template, 'data.build.template');
      }
    }
    str(c.data.fingerprint, 'data.fingerprint');
    if (!isObject(evaluation) || (evaluation.kind !== 'test-split' && evaluation.kind !== 'demo')) problems.push('data.evaluation.kind must be test-split or demo');
    else if (evaluation.kind === 'demo') str(evaluation.id, 'data.evaluation.id');
  }
  if (!isObject(c.lora)) problems.push('lora is missing');
  else {
    try {
      validateLoraConfig(c.lora);
    } catch (e) {
      problems.push((e as Error).message);
    }
    if (typeof c.lora.rslora !== 'boolean') problems.push('lora.rslora must be true or false');
    if (!Array.isArray(c.lora.targetModules) || c.lora.targetModules.length === 0) problems.push('lora.targetModules must list at least one module');
    else {
      const unknown = c.lora.targetModules.filter((t) => !TARGETABLE_MODULES.includes(t));
      if (unknown.length > 0) problems.push(`lora.targetModules has unknown modules: ${unknown.join(', ')} (known: ${TARGETABLE_MODULES.join(', ')})`);
    }
  }
  if (!POOLING_MODES.includes(c.pooling)) problems.push(`pooling must be one of ${POOLING_MODES.join(', ')} (got ${JSON.stringify(c.pooling)})`);
  if (typeof c.normalize !== 'boolean') problems.push('normalize must be true or false');
  num(c.maxLength, 'maxLength', int(2), 'an integer ≥ 2');
  const { prompts } = upgradeRunConfig(c);
  if (!isObject(prompts) || typeof prompts.query !== 'string' || typeof prompts.passage !== 'string') problems.push('prompts must be {query, passage}, both texts (empty for none)');
  const t = c.train;
  if (!isObject(t)) problems.push('train is missing');
  else {
    const o = t.objective;
    if (!isObject(o) || (o.kind !== 'infonce' && o.kind !== 'cosine-pairs')) problems.push('train.objective.kind must be infonce or cosine-pairs');
    else if (o.kind === 'infonce') {
      num(o.scale, 'train.objective.scale', (n) => n > 0, 'positive');
      if (typeof o.symmetric !== 'boolean') problems.push('train.objective.symmetric must be true or false');
    }
    num(t.learningRate, 'train.learningRate', (n) => n > 0 && n < 1, 'in (0, 1)');
    num(t.warmupSteps, 'train.warmupSteps', int(0), 'an integer ≥ 0');
    num(t.steps, 'train.steps', int(1), 'an integer ≥ 1');
    num(t.batchSize, 'train.batchSize', (n) => int(2)(n) && n <= 1024, 'an integer in 2..1024');
    num(t.gradientAccumulation, 'train.gradientAccumulation', (n) => int(1)(n) && n <= 64, 'an integer in 1..64');
    if (t.maxGradNorm !== null) num(t.maxGradNorm, 'train.maxGradNorm', (n) => n > 0, 'positive or null (no clipping)');
    num(t.weightDecay, 'train.weightDecay', (n) => n >= 0 && n < 1, 'in [0, 1)');
    num(t.beta1, 'train.beta1', (n) => n >= 0 && n < 1, 'in [0, 1)');
    num(t.beta2, 'train.beta2', (n) => n >= 0 && n < 1, 'in [0, 1)');
    num(t.eps, 'train.eps', (n) => n > 0 && n < 1, 'in (0, 1)');
    num(t.hiddenDropout, 'train.hiddenDropout', (n) => n >= 0 && n < 1, 'in [0, 1)');
    num(t.checkpointEvery, 'train.checkpointEvery', int(1), 'an integer ≥ 1');
  }
  if (!isObject(c.seeds)) problems.push('seeds are missing');
  else for (const key of ['init', 'train', 'data', 'eval'] as const) checkSeed(c.seeds[key], `seeds.${key}`, problems);
  if (problems.length > 0) throw new Error(`the run configuration is not valid:\n  ${problems.join('\n  ')}`);
  return { ...c, prompts };
}

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Checks that add a problem naming the field, the rule and the value it got. */
export function fieldChecks(problems: string[]) {
  return {
    num(v: unknown, path: string, check: (n: number) => boolean, rule: string): void {
      if (typeof v !== 'number' || !Number.isFinite(v) || !check(v)) problems.push(`${path} must be ${rule} (got ${JSON.stringify(v)})`);
    },
    str(v: unknown, path: string): void {
      if (typeof v !== 'string' || v === '') problems.push(`${path} must be a non-empty text (got ${JSON.stringify(v)})`);
    },
  };
}

/** A model reference from outside: bundled by id, a Hub id at a revision, or a local folder by name and fingerprint. */
export function checkModelRef(model: unknown, problems: string[]): void {
  const { str } = fieldChecks(problems);
  if (!isObject(model)) return void problems.push('model is missing');
  str(model.id, 'model.id');
  if (model.kind === 'hub') str(model.revision, 'model.revision');
  else if (model.kind === 'local') str(model.fingerprint, 'model.fingerprint');
  else if (model.kind !== 'bundled') problems.push(`model.kind must be bundled, hub or local (got ${JSON.stringify(model.kind)})`);
}

/** Where a run's data comes from: a bundled demo set by id, or the user's file by name; `path` names the field in messages. */
export function checkDataSource(source: unknown, problems: string[], path = 'data.source'): void {
  const { str } = fieldChecks(problems);
  if (!isObject(source)) problems.push(`${path} is missing`);
  else if (source.kind === 'demo') str(source.id, `${path}.id`);
  else if (source.kind === 'file') str(source.name, `${path}.name`);
  else problems.push(`${path}.kind must be demo or file (got ${JSON.stringify(source.kind)})`);
}

export function checkSeed(v: unknown, path: string, problems: string[]): void {
  fieldChecks(problems).num(v, path, (n) => Number.isInteger(n) && n >= 0 && n < 2 ** 32, 'an integer in 0..2³²−1');
}

/** A short human name of the model, e.g. "BAAI/bge-small-en-v1.5@main". */
export function modelLabel(model: ModelRef): string {
  if (model.kind === 'hub') return `${model.id}@${model.revision}`;
  if (model.kind === 'bundled') return `${model.id} (bundled smoke-test model)`;
  return `${model.id} (local folder)`;
}
