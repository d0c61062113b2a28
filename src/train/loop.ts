/**
 * The training loop `qlora-lab train` and the app's engine worker share: each optimizer step gets
 * its micro-batches, is reported, and is checkpointed when due, a checkpoint never holding a
 * diverged adapter (divergence.ts). Where examples come from, pausing and stopping, where
 * checkpoints are stored and how progress is shown are each caller's own, through the hooks.
 */
import type { LoraConfig } from '../model/lora.ts';
import type { StateDict } from '../model/state-dict.ts';
import { assertAdapterSane } from './divergence.ts';
import { type Example, encodeExamples } from './objective.ts';
import type { StepReport, Trainer, TrainerSnapshot } from './trainer.ts';

export interface TrainingLoopHooks {
  /** The examples of micro-batch `micro` of optimizer step `step` (0-based). */
  examples(step: number, micro: number): Example[] | Promise<Example[]>;
  /** Awaited before each step (a paused run waits in it); false ends the loop without taking the step. */
  beforeStep?(): Promise<boolean>;
  /** After each step, with how long it took in seconds (its batches' preparation included). */
  onStep(report: StepReport, seconds: number): void;
  /** Whether to checkpoint after the step that ended at optimizer step `step`. */
  checkpointDue(step: number): boolean;
  /** Store a checkpoint; its adapter has passed the divergence rule. */
  saveCheckpoint(snapshot: TrainerSnapshot): Promise<void>;
  /** After the step and its checkpoint; may throw to stop the run there. */
  afterStep?(report: StepReport): void;
}

/**
 * Train from `trainer.step` to its configured total. Rejects with the trainer's NonFiniteLossError
 * or divergence.ts's DivergedError (checked at each checkpoint, against the base `weights`).
 */
export async function runTrainingLoop(trainer: Trainer, base: { weights: StateDict; lora: Pick<LoraConfig, 'r' | 'alpha' | 'rslora'> }, hooks: TrainingLoopHooks): Promise<void> {
  const { totalSteps, gradientAccumulation, objective } = trainer.config;
  while (trainer.step < totalSteps) {
    if (hooks.beforeStep && !(await hooks.beforeStep())) return;
    const started = performance.now();
    const micro = [];
    for (let k = 0; k < gradientAccumulation; k++) micro.push(encodeExamples(trainer.encoder, objective, await hooks.examples(trainer.step, k)));
    const report = await trainer.trainStep(micro);
    hooks.onStep(report, (performance.now() - started) / 1000);
    if (hooks.checkpointDue(report.step)) {
      const snapshot = await trainer.snapshot();
      // A diverged adapter is never checkpointed: the stored checkpoint stays the last sane one.
      assertAdapterSane(base.weights, snapshot.adapter, base.lora, snapshot.step);
      await hooks.saveCheckpoint(snapshot);
    }
    hooks.afterStep?.(report);
  }
}
