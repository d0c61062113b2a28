/** One recorded training step's loss and LoRA gradients, and their comparison with another way of computing them. */
import { expect } from 'vitest';
import type { ForwardMode } from '../../src/model/bert.ts';
import type { GpuAdapter } from '../../src/model/lora.ts';
import type { SentenceEncoder } from '../../src/model/sentence.ts';
import { type EncodedBatch, type Objective, recordMicroBatch } from '../../src/train/objective.ts';

export interface StepResult {
  loss: number;
  grads: Float32Array[];
}

/** Loss and LoRA gradients of one recorded step. */
export async function stepGradients(
  encoder: SentenceEncoder,
  adapter: GpuAdapter,
  objective: Objective,
  batch: EncodedBatch,
  mode: ForwardMode,
  sequencesPerPass: number | null,
): Promise<StepResult> {
  const { engine } = encoder.bert;
  adapter.zeroGrads();
  const lossTensor = recordMicroBatch(encoder, objective, batch, mode, 1, sequencesPerPass);
  const loss = (await engine.readF32(lossTensor))[0];
  engine.release(lossTensor);
  return { loss, grads: await Promise.all(adapter.parameters().grads.map((g) => engine.readF32(g))) };
}

/** Loss and every gradient tensor within `rel` of the expected, relative to the loss and to each tensor's largest |gradient|. */
export function expectSameStep(got: StepResult, want: StepResult, rel: number, label: string): void {
  expect(Math.abs(got.loss - want.loss), `${label}: loss ${got.loss} vs ${want.loss}`).toBeLessThanOrEqual(rel * Math.max(1, Math.abs(want.loss)));
  want.grads.forEach((g, i) => {
    const scale = g.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    expect(scale, `${label}: gradient ${i} reaches the adapter`).toBeGreaterThan(0);
    const worst = g.reduce((m, v, j) => Math.max(m, Math.abs(got.grads[i][j] - v)), 0);
    expect(worst, `${label}: gradient ${i}, max |difference| against max |gradient| ${scale}`).toBeLessThanOrEqual(rel * scale);
  });
}

