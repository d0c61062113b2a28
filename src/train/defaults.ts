/**
 * Every training default in one place. The optimizer settings are shared; the app and the command
 * line differ where their runs differ: a browser tab trains a short run on small batches and
 * checkpoints often, `qlora-lab train` trains epochs of a file with the regularisation of
 * sentence-transformers' recipes.
 */
import type { TrainingLoraConfig } from '../model/lora.ts';
import type { Seeds, TrainSettings } from './run-config.ts';
import type { TrainConfig } from './trainer.ts';

const INFONCE_SCALE = 20;
const MAX_GRAD_NORM = 1;

/** The optimizer and objective settings every run starts from. */
const SHARED: Omit<TrainConfig, 'totalSteps' | 'seed' | 'warmupSteps'> = {
  objective: { kind: 'infonce', scale: INFONCE_SCALE, symmetric: false },
  learningRate: 2e-4,
  gradientAccumulation: 1,
  maxGradNorm: MAX_GRAD_NORM,
  weightDecay: 0.01,
  beta1: 0.9,
  beta2: 0.999,
  eps: 1e-8,
  hiddenDropout: 0,
};

/** What a Trainer gets when nothing else is said (tests, benchmarks). */
export const DEFAULT_TRAIN_CONFIG: TrainConfig = { ...SHARED, warmupSteps: 10, totalSteps: 100, seed: 42 };

/**
 * GPU memory the app plans a training step into unless the user says otherwise. WebGPU does not
 * report a GPU's memory; 1.5 GiB suits the integrated GPUs of clinic machines that share 8–16 GB
 * with everything else, and fits the cardiology study's BioLinkBERT-large step (32 pairs × 128).
 */
export const APP_MEMORY_BUDGET_GIB = 1.5;

/** A new run in the app: about a minute of training on the bundled demo model. */
export const APP_TRAIN_DEFAULTS: TrainSettings = { ...SHARED, warmupSteps: 2, steps: 20, batchSize: 8, checkpointEvery: 5 };
export const APP_LORA_DEFAULTS: TrainingLoraConfig = { r: 16, alpha: 32, dropout: 0.05, rslora: false, targetModules: ['query', 'value'] };
export const APP_SEEDS: Seeds = { init: 1, train: 2, data: 3, eval: 4 };

/**
 * The demo's schedule, tuned by steps (not seconds) so that the bundled random-weights model's
 * cardiology separation moves clearly beyond its bootstrap interval in 64 examples. At 8 steps of 8
 * (the CLI, SwiftShader) learning rate 2e-3 moved it by +0.001 [+0.001, +0.001], 5e-3 by +0.004
 * [+0.003, +0.004]; in the app 5e-3 moves it by +0.005 [+0.004, +0.006], while 1e-2 diverges at
 * step 8 (an update 1.15× the weight it adapts). A far larger learning rate than a real model
 * wants, and one warmup step: the run is too short for more.
 */
export const DEMO_SCHEDULE = { steps: 8, batchSize: 8, learningRate: 5e-3, warmupSteps: 1, checkpointEvery: 4 } as const;

/** `qlora-lab train`'s option defaults (its usage text quotes them). */
export const CLI_TRAIN_DEFAULTS = {
  r: APP_LORA_DEFAULTS.r,
  alpha: APP_LORA_DEFAULTS.alpha,
  loraDropout: 0.1,
  targets: APP_LORA_DEFAULTS.targetModules.join(','),
  scale: INFONCE_SCALE,
  epochs: 1,
  batchSize: 32,
  gradientAccumulation: SHARED.gradientAccumulation,
  learningRate: SHARED.learningRate,
  warmupRatio: 0.1,
  weightDecay: SHARED.weightDecay,
  maxGradNorm: MAX_GRAD_NORM,
  hiddenDropout: 0.1,
  seed: DEFAULT_TRAIN_CONFIG.seed,
  checkpointEvery: 50,
} as const;

/**
 * The CTD LLM study's QLoRA preset for a decoder on its statements: LoRA r16 α32 (dropout 0.05) on
 * every linear layer, the shared AdamW settings with 10% warmup and clipping at 1. Steps, batch and
 * learning rate are the app's form (a short run by default, as a tab trains).
 */
export const CTD_STUDY_TRAINING = {
  r: 16,
  alpha: 32,
  loraDropout: 0.05,
  warmupRatio: 0.1,
  weightDecay: SHARED.weightDecay,
  beta1: SHARED.beta1,
  beta2: SHARED.beta2,
  eps: SHARED.eps,
  maxGradNorm: MAX_GRAD_NORM,
  steps: 30,
  batchSize: 8,
  learningRate: SHARED.learningRate,
  seed: 1,
} as const;

/**
 * The bundled random-weights demo decoder's short run on the statements: a learning rate far above
 * a real model's, as DEMO_SCHEDULE for the demo encoder, so that 8 steps change the adapter enough
 * to change its answers (a smoke test of the pipeline, not a model that learns the facts).
 */
export const CTD_STUDY_DEMO_SCHEDULE = { steps: 8, learningRate: 1e-2 } as const;
