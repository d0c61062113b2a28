/**
 * The training loop the CLI and the app share, with a stand-in trainer (no GPU): which hooks run
 * when, that a diverged adapter is never checkpointed, and how each side stops it.
 */
import { describe, expect, it } from 'vitest';
import type { HostAdapterTensors } from '../../src/model/lora.ts';
import { DivergedError } from '../../src/train/divergence.ts';
import { type TrainingLoopHooks, runTrainingLoop } from '../../src/train/loop.ts';
import type { Example } from '../../src/train/objective.ts';
import type { StepReport, Trainer } from '../../src/train/trainer.ts';

const MODULE = 'encoder.layer.0.attention.self.query';
const weights = new Map([[`${MODULE}.weight`, { shape: [2, 2], data: Float32Array.of(1, 0, 0, 1) }]]);
const lora = { r: 1, alpha: 1, rslora: false };

/** An adapter whose update is `size`× the weight's (above 1 diverges). */
function adapterOfSize(size: number): HostAdapterTensors {
  return new Map([
    [`${MODULE}.lora_A`, { shape: [1, 2], data: Float32Array.of(size / Math.SQRT2, 0) }],
    [`${MODULE}.lora_B`, { shape: [2, 1], data: Float32Array.of(1, 0) }],
  ]);
}

/** A trainer that takes `totalSteps` steps, each with the micro-batches it was given; its adapter diverges from step `divergeAt`. */
function fakeTrainer(totalSteps: number, accumulation: number, divergeAt = Infinity) {
  const batches: string[][] = [];
  const encoder = { tokenize: (texts: string[]) => texts, prompt: () => '' };
  const trainer = {
    step: 0,
    encoder,
    config: { totalSteps, gradientAccumulation: accumulation, objective: { kind: 'infonce', scale: 20, symmetric: false } },
    async trainStep(micro: { tokens: string[] }[]): Promise<StepReport> {
      batches.push(micro.flatMap((m) => m.tokens));
      this.step += 1;
      return { step: this.step, loss: 1 / this.step, learningRate: 1e-3, gradNorm: 1, examples: micro.length };
    },
    async snapshot() {
      return { step: this.step, adapter: adapterOfSize(this.step >= divergeAt ? 3 : 0.5), m: [], v: [] };
    },
  };
  return { trainer: trainer as unknown as Trainer, batches };
}

const example = (step: number, micro: number): Example[] => [{ anchor: `a${step}.${micro}`, positive: `p${step}.${micro}` }];

function recorder(overrides: Partial<TrainingLoopHooks> = {}) {
  const events: string[] = [];
  const hooks: TrainingLoopHooks = {
    examples: example,
    onStep: (report) => void events.push(`step ${report.step}`),
    checkpointDue: (step) => step % 2 === 0,
    saveCheckpoint: async (snapshot) => void events.push(`checkpoint ${snapshot.step}`),
    ...overrides,
  };
  return { events, hooks };
}

describe('runTrainingLoop', () => {
  it('feeds every micro-batch of every step from where the trainer is, and checkpoints when due', async () => {
    const { trainer, batches } = fakeTrainer(5, 2);
    trainer.step = 1; // resumed
    const { events, hooks } = recorder();
    await runTrainingLoop(trainer, { weights, lora }, hooks);
    expect(events).toEqual(['step 2', 'checkpoint 2', 'step 3', 'step 4', 'checkpoint 4', 'step 5']);
    expect(batches[0]).toEqual(['a1.0', 'p1.0', 'a1.1', 'p1.1']);
    expect(batches).toHaveLength(4);
  });

  it('never stores a diverged adapter: the run rejects with DivergedError at the checkpoint', async () => {
    const { trainer } = fakeTrainer(6, 1, 3);
    const { events, hooks } = recorder();
    await expect(runTrainingLoop(trainer, { weights, lora }, hooks)).rejects.toThrow(DivergedError);
    expect(events).toEqual(['step 1', 'step 2', 'checkpoint 2', 'step 3', 'step 4']);
  });

  it('stops before a step when beforeStep says so (the app cancelling) and after one when afterStep throws (the CLI interrupted)', async () => {
    const cancelled = fakeTrainer(5, 1);
    let calls = 0;
    await runTrainingLoop(cancelled.trainer, { weights, lora }, recorder({ beforeStep: async () => ++calls <= 2 }).hooks);
    expect(cancelled.trainer.step).toBe(2);

    const interrupted = fakeTrainer(5, 1);
    const { events, hooks } = recorder({
      checkpointDue: (step) => step === 3,
      afterStep: (report) => {
        if (report.step === 3) throw new Error('interrupted');
      },
    });
    await expect(runTrainingLoop(interrupted.trainer, { weights, lora }, hooks)).rejects.toThrow('interrupted');
    expect(events).toEqual(['step 1', 'step 2', 'step 3', 'checkpoint 3']);
  });
});
