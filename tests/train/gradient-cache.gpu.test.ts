/**
 * Gradient caching: a step run a few sequences per encoder pass (embeddings first, loss on the whole
 * batch, then each slice again with activations) gives the loss and LoRA gradients of the one-shot
 * step (1e-5 relative), with hard negatives, the symmetric loss, LoRA and hidden dropout, and the
 * labelled-pair loss; and the PyTorch fixtures' (at their usual 1e-3 tolerance).
 */
import { describe, expect, it } from 'vitest';
import type { ForwardMode } from '../../src/model/bert.ts';
import type { EncodedBatch, Objective } from '../../src/train/objective.ts';
import { DEFAULT_TRAIN_CONFIG } from '../../src/train/defaults.ts';
import { Trainer } from '../../src/train/trainer.ts';
import { fixtureBatch } from '../helpers/fixtures.ts';
import { fixtureTrainingSetup } from '../helpers/fixture-training.ts';
import { gpuEngine } from '../helpers/gpu.ts';
import { expectReferenceGradients, peftKey } from '../helpers/reference-checks.ts';
import { expectSameStep, stepGradients } from '../helpers/step-gradients.ts';


describe('gradient-cached step against PyTorch', () => {
  it.each([
    ['tiny', 'f32', 3],
    ['tiny', 'nf4', 1],
    ['odd', 'f32', 5],
  ] as const)('%s, %s base, %i sequences per pass: InfoNCE loss and every LoRA gradient match the fixture', async (model, base, perPass) => {
    const engine = await gpuEngine();
    const loaded = await fixtureTrainingSetup(engine, model, base);
    await expectReferenceGradients(loaded, model, base, peftKey, perPass);
    loaded.bert.destroy();
  });
});

describe('gradient-cached step equals the one-shot step (1e-5 relative)', () => {
  const dropoutOn: ForwardMode = { train: true, hiddenDropout: 0.1, seed: 77 };
  const dropoutOff: ForwardMode = { train: true, hiddenDropout: 0, seed: 77 };
  const CASES: [label: string, objective: Objective, anchors: number, mode: ForwardMode, loraDropout: number][] = [
    ['in-batch negatives', { kind: 'infonce', scale: 20, symmetric: false }, 4, dropoutOff, 0],
    ['hard negatives', { kind: 'infonce', scale: 20, symmetric: false }, 2, dropoutOff, 0],
    ['symmetric, hard negatives, LoRA and hidden dropout', { kind: 'infonce', scale: 20, symmetric: true }, 2, dropoutOn, 0.1],
    ['symmetric, LoRA and hidden dropout', { kind: 'infonce', scale: 20, symmetric: true }, 4, dropoutOn, 0.1],
  ];
  it.each(CASES)('%s', async (label, objective, anchors, mode, loraDropout) => {
    const engine = await gpuEngine();
    const { bert, adapter, encoder } = await fixtureTrainingSetup(engine, 'odd', 'nf4', loraDropout);
    // The fixture's 8 rows: anchors, their positives, then (with 2 anchors) 4 hard negatives.
    const batch: EncodedBatch = { tokens: fixtureBatch('odd').tokens, anchors, labels: null };
    const oneShot = await stepGradients(encoder, adapter, objective, batch, mode, null);
    for (const perPass of [1, 3]) {
      expectSameStep(await stepGradients(encoder, adapter, objective, batch, mode, perPass), oneShot, 1e-5, `${label}, ${perPass} per pass`);
    }
    bert.destroy();
  });

  it('labelled pairs (cosine loss), with dropout', async () => {
    const engine = await gpuEngine();
    const { bert, adapter, encoder } = await fixtureTrainingSetup(engine, 'tiny', 'f32', 0.1);
    const batch: EncodedBatch = { tokens: fixtureBatch('tiny').tokens, anchors: 4, labels: Float32Array.from([1, 0, 0.5, 1]) };
    const objective: Objective = { kind: 'cosine-pairs' };
    const oneShot = await stepGradients(encoder, adapter, objective, batch, dropoutOn, null);
    expectSameStep(await stepGradients(encoder, adapter, objective, batch, dropoutOn, 3), oneShot, 1e-5, 'cosine pairs');
    bert.destroy();
  });

  it('a dropout mask follows the sequence, not the pass: other seeds or places would change the gradients', async () => {
    const engine = await gpuEngine();
    const { bert, adapter, encoder } = await fixtureTrainingSetup(engine, 'tiny', 'f32', 0.1);
    const batch: EncodedBatch = { tokens: fixtureBatch('tiny').tokens, anchors: 4, labels: null };
    const objective: Objective = { kind: 'infonce', scale: 20, symmetric: false };
    const oneShot = await stepGradients(encoder, adapter, objective, batch, dropoutOn, null);
    const shifted = await stepGradients(encoder, adapter, objective, batch, { ...dropoutOn, firstSequence: 1 }, null);
    expect(Math.abs(shifted.loss - oneShot.loss)).toBeGreaterThan(1e-4);
    bert.destroy();
  });

  it('the Trainer with sequences per pass and checkpointing reports the one-shot loss and gradient norm', async () => {
    const engine = await gpuEngine();
    const run = async (sequencesPerPass: number | null, checkpointEvery: number) => {
      const { bert, encoder } = await fixtureTrainingSetup(engine, 'odd', 'nf4', 0.1);
      const trainer = new Trainer(encoder, { ...DEFAULT_TRAIN_CONFIG, hiddenDropout: 0.1, sequencesPerPass, checkpointEvery, warmupSteps: 0 });
      const { tokens, anchors } = fixtureBatch('odd');
      const reports = [await trainer.trainStep([{ tokens, anchors, labels: null }]), await trainer.trainStep([{ tokens, anchors, labels: null }])];
      trainer.release();
      bert.destroy();
      return reports;
    };
    const plain = await run(null, 0);
    const cached = await run(3, 2);
    cached.forEach((r, i) => {
      expect(Math.abs(r.loss - plain[i].loss)).toBeLessThanOrEqual(1e-5 * Math.max(1, plain[i].loss));
      expect(Math.abs(r.gradNorm - plain[i].gradNorm)).toBeLessThanOrEqual(1e-5 * plain[i].gradNorm);
    });
  });

  it('the Trainer refuses sequences per pass or a checkpoint interval that are not whole numbers', async () => {
    const engine = await gpuEngine();
    const { bert, encoder } = await fixtureTrainingSetup(engine, 'tiny', 'f32');
    expect(() => new Trainer(encoder, { ...DEFAULT_TRAIN_CONFIG, sequencesPerPass: 2.5 })).toThrow(/sequences per pass must be a positive integer .*got 2.5/);
    expect(() => new Trainer(encoder, { ...DEFAULT_TRAIN_CONFIG, checkpointEvery: -1 })).toThrow(/non-negative integer n \(0 = off\), got -1/);
    bert.destroy();
  });
});
