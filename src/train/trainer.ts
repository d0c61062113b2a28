/**
 * The training loop's unit: one optimizer step = gradient accumulation over micro-batches, global
 * grad-norm clipping and AdamW, recorded into one GPU batch; the loss is read back afterwards.
 */
import { AdamW, type AdamWHyper } from '../engine/ops/adamw.ts';
import type { StoragePrecision } from '../engine/stored.ts';
import { hash32 } from '../engine/rng.ts';
import type { Engine } from '../engine/engine.ts';
import type { Tensor } from '../engine/tensor.ts';
import type { GpuAdapter, HostAdapterTensors } from '../model/lora.ts';
import type { SentenceEncoder } from '../model/sentence.ts';
import { type EncodedBatch, type Objective, recordMicroBatch } from './objective.ts';
import { learningRate } from './schedule.ts';

export interface TrainConfig {
  objective: Objective;
  learningRate: number;
  warmupSteps: number;
  totalSteps: number;
  gradientAccumulation: number;
  maxGradNorm: number | null;
  weightDecay: number;
  beta1: number;
  beta2: number;
  eps: number;
  /** BERT hidden dropout during training (LoRA dropout is part of the adapter's config). */
  hiddenDropout: number;
  seed: number;
  /**
   * Sequences per encoder pass within a micro-batch (gradient caching: the same loss and gradients,
   * with activations for this many sequences only); null or 0 = the whole micro-batch in one pass.
   */
  sequencesPerPass?: number | null;
  /** Activation checkpointing of every n-th encoder layer (see ForwardMode.checkpointEvery); 0 = off. */
  checkpointEvery?: number;
  /**
   * Precision of the activations kept for backward (ForwardMode.storage); default f32. The plan that
   * chooses f16 also stores the base's f32 parts in f16 (BaseOptions.baseParts), set when the encoder is built.
   */
  storage?: StoragePrecision;
}

export interface StepReport {
  /** 1-based number of the optimizer step just taken. */
  step: number;
  loss: number;
  learningRate: number;
  gradNorm: number;
  examples: number;
}

/** The dropout seed of micro-batch `k` of the step after `step` steps: distinct per step and micro-batch, reproducible. */
export function microBatchSeed(seed: number, step: number, k: number): number {
  return hash32((hash32(seed) ^ Math.imul(step + 1, 0x85ebca6b) ^ k) >>> 0);
}

/** What an optimizer step needs of the run's settings. */
export type OptimizerConfig = Pick<TrainConfig, 'learningRate' | 'warmupSteps' | 'totalSteps' | 'beta1' | 'beta2' | 'eps' | 'weightDecay' | 'maxGradNorm'>;

/**
 * Record AdamW's step (the one after `taken` steps, on the schedule's learning rate) after the
 * micro-batches recorded so far, run the batch, and read back each micro-batch's loss tensor
 * (released) and the gradient norm before clipping.
 */
export async function optimizerStep(engine: Engine, optimizer: AdamW, grads: Tensor[], losses: Tensor[], config: OptimizerConfig, taken: number) {
  const lr = learningRate(taken, config.learningRate, config.warmupSteps, config.totalSteps);
  const hyper: AdamWHyper = { lr, beta1: config.beta1, beta2: config.beta2, eps: config.eps, weightDecay: config.weightDecay, maxGradNorm: config.maxGradNorm, step: taken + 1 };
  optimizer.step(grads, hyper);
  engine.flush();
  const read = await Promise.all([...losses.map((t) => engine.readF32(t)), engine.readF32(optimizer.gradNorm)]);
  engine.release(...losses);
  const gradNorm = read.pop()![0];
  return { lr, values: read.map((v) => v[0]), gradNorm };
}

export class NonFiniteLossError extends Error {
  override name = 'NonFiniteLossError';
}

/** Everything needed to continue training exactly where it stopped. */
export interface TrainerSnapshot {
  step: number;
  adapter: HostAdapterTensors;
  /** AdamW moments, in the order of adapter.parameters(). */
  m: Float32Array[];
  v: Float32Array[];
}

export class Trainer {
  /** Optimizer steps taken so far. */
  step = 0;
  private readonly optimizer: AdamW;
  private readonly adapter: GpuAdapter;

  constructor(
    readonly encoder: SentenceEncoder,
    readonly config: TrainConfig,
  ) {
    const adapter = encoder.bert.trainableAdapter;
    if (!adapter) throw new Error('training needs a trainable adapter on the encoder');
    if (!Number.isInteger(config.gradientAccumulation) || config.gradientAccumulation < 1) {
      throw new Error(`gradient accumulation must be a positive integer, got ${config.gradientAccumulation}`);
    }
    const { sequencesPerPass, checkpointEvery } = config;
    if (sequencesPerPass != null && sequencesPerPass !== 0 && !(Number.isInteger(sequencesPerPass) && sequencesPerPass > 0)) {
      throw new Error(`sequences per pass must be a positive integer (or 0 for one pass), got ${sequencesPerPass}`);
    }
    if (checkpointEvery !== undefined && !(Number.isInteger(checkpointEvery) && checkpointEvery >= 0)) {
      throw new Error(`checkpoint every n-th layer needs a non-negative integer n (0 = off), got ${checkpointEvery}`);
    }
    this.adapter = adapter;
    this.optimizer = new AdamW(encoder.bert.engine, adapter.parameters().params);
  }

  /**
   * One optimizer step over tokenised `microBatches` (length = gradientAccumulation). Resolves once the GPU
   * has finished, with the loss; a NaN/Inf loss rejects with NonFiniteLossError and the update of
   * that step is skipped on the GPU, so the adapter keeps its last good values.
   */
  async trainStep(microBatches: EncodedBatch[]): Promise<StepReport> {
    const { config } = this;
    const engine = this.encoder.bert.engine;
    if (microBatches.length !== config.gradientAccumulation) {
      throw new Error(`expected ${config.gradientAccumulation} micro-batches, got ${microBatches.length}`);
    }
    this.adapter.zeroGrads();
    const losses: Tensor[] = [];
    microBatches.forEach((batch, k) => {
      const seed = microBatchSeed(config.seed, this.step, k);
      const mode = { train: true, hiddenDropout: config.hiddenDropout, seed, checkpointEvery: config.checkpointEvery ?? 0, storage: config.storage ?? 'f32' };
      losses.push(recordMicroBatch(this.encoder, config.objective, batch, mode, 1 / config.gradientAccumulation, config.sequencesPerPass || null));
    });
    const { lr, values, gradNorm } = await optimizerStep(engine, this.optimizer, this.adapter.parameters().grads, losses, config, this.step);
    const loss = values.reduce((sum, v) => sum + v, 0) / values.length;
    if (!Number.isFinite(loss) || !Number.isFinite(gradNorm)) {
      throw new NonFiniteLossError(
        `training stopped at step ${this.step + 1}: the loss is ${loss} (gradient norm ${gradNorm}); the adapter keeps its values from step ${this.step}. ` +
          'Lower the learning rate or check the data for empty texts.',
      );
    }
    this.step += 1;
    return { step: this.step, loss, learningRate: lr, gradNorm, examples: microBatches.reduce((n, b) => n + b.anchors, 0) };
  }

  async snapshot(): Promise<TrainerSnapshot> {
    const engine = this.encoder.bert.engine;
    const { m, v } = this.optimizer.state();
    return {
      step: this.step,
      adapter: await this.adapter.download(),
      m: await Promise.all(m.map((t) => engine.readF32(t))),
      v: await Promise.all(v.map((t) => engine.readF32(t))),
    };
  }

  restore(snapshot: TrainerSnapshot): void {
    const engine = this.encoder.bert.engine;
    const { m, v } = this.optimizer.state();
    if (snapshot.m.length !== m.length || snapshot.v.length !== v.length) throw new Error('checkpoint does not match this adapter');
    this.adapter.load(snapshot.adapter);
    m.forEach((t, i) => engine.write(t, snapshot.m[i]));
    v.forEach((t, i) => engine.write(t, snapshot.v[i]));
    this.step = snapshot.step;
  }

  release(): void {
    this.optimizer.release();
  }
}
