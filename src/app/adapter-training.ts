/**
 * The app's short QLoRA runs of the loaded decoder (CTD statements, the clinical domain and task
 * adapters), in the engine worker: a new adapter of the CTD study's preset (LoRA r16 α32 on every
 * linear layer) on top of the frozen stack, the study's AdamW schedule, and a given number of
 * steps, each over the next examples of a seeded shuffle (a fresh one per epoch) laid out in
 * micro-batches with activation checkpointing as a memory plan says; Stop is asked before each
 * step, and a non-finite loss ends training with the adapter of the last good step. No DOM.
 */
import { Rng } from '../data/rng.ts';
import type { DecoderModelFiles } from '../model/decoder-checkpoint.ts';
import type { DecoderConfig } from '../model/decoder-config.ts';
import { canonicalDecoderTargets, initDecoderLora } from '../model/decoder-lora-layout.ts';
import { createDecoderAdapter } from '../model/decoder-lora.ts';
import { allLinearTargets } from '../model/decoder-weights.ts';
import type { DecoderModel } from '../model/decoder.ts';
import type { GpuLoraModules, TrainingLoraConfig } from '../model/lora.ts';
import { CTD_STUDY_TRAINING as STUDY } from '../train/defaults.ts';
import { type DecoderStepReport, DecoderTrainer } from '../train/decoder-trainer.ts';
import { NonFiniteLossError } from '../train/trainer.ts';

export interface AdapterTrainingSettings {
  steps: number;
  /** Examples per optimizer step. */
  batchSize: number;
  learningRate: number;
  /** Seeds the adapter's init, the order of the examples and dropout. */
  seed: number;
}

export interface TrainingHooks {
  onStep(step: number, totalSteps: number, loss: number): void;
  /** Asked before each step: true ends training there (the adapter so far is kept). */
  stopRequested(): boolean;
}

export interface TrainedSteps {
  losses: number[];
  stopped: boolean;
  /** Why training ended early on a non-finite loss (the adapter of the last good step is kept). */
  error: string | null;
}

/** How each step runs (a memory plan's): examples per forward and backward, and the checkpoint interval (0 = off). */
export interface StepLayout {
  microBatch: number;
  checkpointEvery: number;
}

/** The whole step in one forward and backward, every layer keeping its activations. */
export const WHOLE_STEP: StepLayout = { microBatch: Number.POSITIVE_INFINITY, checkpointEvery: 0 };

/** The study's adapter (LoRA r16 α32 on every linear layer) for `config`, its targets as PEFT names them. */
export function studyLora(config: DecoderConfig): TrainingLoraConfig {
  return { r: STUDY.r, alpha: STUDY.alpha, dropout: STUDY.loraDropout, rslora: false, targetModules: canonicalDecoderTargets(config, allLinearTargets(config)) as string[] };
}

/** A new trainable adapter of the study's preset for `files`' decoder, initialised from `seed`. */
export function newStudyAdapter(model: DecoderModel, files: DecoderModelFiles, seed: number): { adapter: GpuLoraModules; lora: TrainingLoraConfig } {
  const lora = studyLora(files.config);
  const init = initDecoderLora(files.config, STUDY.r, allLinearTargets(files.config), seed);
  return { adapter: createDecoderAdapter(model.engine, files.config, lora, init.tensors, true), lora };
}

/**
 * Train the model's trainable adapter (its last) for `settings.steps` steps over `count` examples,
 * `step` taking one optimizer step over the examples picked, given in micro-batches of
 * `layout.microBatch` (the loss is the step's whatever the layout; LoRA dropout masks are drawn per
 * micro-batch). The trainer's GPU state is released at the end; the adapter stays on the model.
 */
export async function trainAdapterSteps(
  model: DecoderModel,
  count: number,
  settings: AdapterTrainingSettings,
  layout: StepLayout,
  hooks: TrainingHooks,
  step: (trainer: DecoderTrainer, microBatches: number[][]) => Promise<DecoderStepReport>,
): Promise<TrainedSteps> {
  const trainer = new DecoderTrainer(model, {
    learningRate: settings.learningRate,
    warmupSteps: Math.round(settings.steps * STUDY.warmupRatio),
    totalSteps: settings.steps,
    weightDecay: STUDY.weightDecay,
    beta1: STUDY.beta1,
    beta2: STUDY.beta2,
    eps: STUDY.eps,
    maxGradNorm: STUDY.maxGradNorm,
    seed: settings.seed,
    checkpointEvery: layout.checkpointEvery,
  });
  const out: TrainedSteps = { losses: [], stopped: false, error: null };
  try {
    // Epoch after epoch, each a seeded shuffle of the examples.
    const rng = new Rng(settings.seed ^ 0x2c1b3c6d);
    let order: number[] = [];
    for (let s = 0; s < settings.steps; s++) {
      if (hooks.stopRequested()) {
        out.stopped = true;
        break;
      }
      const picked: number[] = [];
      while (picked.length < Math.min(settings.batchSize, count)) {
        if (order.length === 0) order = rng.shuffle(Array.from({ length: count }, (_, i) => i));
        picked.push(order.pop()!);
      }
      const microBatches: number[][] = [];
      for (let m = 0; m < picked.length; m += layout.microBatch) microBatches.push(picked.slice(m, m + layout.microBatch));
      const report = await step(trainer, microBatches);
      out.losses.push(report.loss);
      hooks.onStep(report.step, settings.steps, report.loss);
    }
  } catch (e) {
    if (!(e instanceof NonFiniteLossError)) throw e;
    out.error = e.message;
  } finally {
    trainer.release();
  }
  return out;
}
