/**
 * DecoderTrainer.statementStep on the tiny decoder (LoRA on every linear, PEFT's init): its first
 * step's loss and gradient norm are those of the plain causal-LM path over prompt + correct answer
 * with every target but the answer's tokens ignored (built here independently of
 * statementTrainingBatch), and a few steps on a toy separable statement set lower the loss and
 * make zero-shot scoring's margins rank every true statement above every false one.
 */
import { describe, expect, it } from 'vitest';
import type { Engine } from '../../src/engine/engine.ts';
import { IGNORE_INDEX } from '../../src/engine/ops/lm-head-loss.ts';
import { openDecoderModel } from '../../src/model/decoder-checkpoint.ts';
import { initDecoderLora } from '../../src/model/decoder-lora-layout.ts';
import { createDecoderAdapter } from '../../src/model/decoder-lora.ts';
import { allLinearTargets } from '../../src/model/decoder-weights.ts';
import { DecoderModel, causalLmTargets } from '../../src/model/decoder.ts';
import { localDirSource } from '../../src/model/node-files.ts';
import { encodeStatement } from '../../src/model/statement-prompt.ts';
import { scoreStatements } from '../../src/model/statement-score.ts';
import { padRows } from '../../src/model/tokenizer.ts';
import { DEFAULT_TRAIN_CONFIG } from '../../src/train/defaults.ts';
import { DecoderTrainer } from '../../src/train/decoder-trainer.ts';
import { gpuEngine } from '../helpers/gpu.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { writeTinyDecoder } from '../helpers/tiny-decoder.ts';

/**
 * Separable by one word ("not"), under a short prompt so the word is a large part of what attention
 * averages; answers of one byte-level token each past the space, so neither is favoured by its length.
 */
const STATEMENTS = [
  'TP53 is tied to sarcoma',
  'KRAS is not tied to asthma',
  'APOE is tied to dementia',
  'CFTR is not tied to gout',
  'FBN1 is tied to Marfan syndrome',
  'HBB is not tied to migraine',
];
const LABELS = [true, false, true, false, true, false];
const PROMPT = { template: '{statement}.', chat: false, answers: { true: ' T', false: ' F' } };

async function setup(engine: Engine, learningRate: number) {
  const files = await openDecoderModel(localDirSource(writeTinyDecoder(tempDir('statement-step-'), { seed: 3 })));
  const model = await DecoderModel.create(engine, files.config, files.weights, { quantization: 'f32' });
  const init = initDecoderLora(files.config, 4, allLinearTargets(files.config), 11);
  const lora = { r: 4, alpha: 8, dropout: 0, rslora: false, targetModules: init.targetModules as string[] };
  model.adapters = [createDecoderAdapter(engine, files.config, lora, init.tensors, true)];
  const trainer = new DecoderTrainer(model, { ...DEFAULT_TRAIN_CONFIG, learningRate, warmupSteps: 0, totalSteps: 1000, maxGradNorm: null });
  const encoded = STATEMENTS.map((s, i) => encodeStatement(files.tokenizer, PROMPT, s, i));
  return { files, model, trainer, encoded, padId: files.tokenizer.padId };
}

describe('DecoderTrainer.statementStep', () => {
  it('takes the loss and gradient of the causal-LM path restricted to the answer tokens', async () => {
    const engine = await gpuEngine();
    const { model, trainer, encoded, padId } = await setup(engine, 1e-3);
    // Prompt + the whole correct answer; next-token targets kept only where an answer token is predicted.
    const rows = encoded.map((s, i) => [...s.prompt, ...s[LABELS[i] ? 'true' : 'false']]);
    const batch = padRows(rows, padId);
    const targets = causalLmTargets(batch);
    targets.forEach((_, k) => {
      const row = Math.floor(k / batch.seq);
      const j = k % batch.seq;
      if (j < encoded[row].prompt.length - 1 || j >= rows[row].length - 1) targets[k] = IGNORE_INDEX;
    });
    const adapter = model.trainableAdapter!;
    adapter.zeroGrads();
    const result = model.forward(batch, { train: true, seed: 0 });
    const loss = model.loss(result, targets, 64);
    model.backwardLoss(result, loss, 64);
    model.releaseForward(result);
    const expectedLoss = (await engine.readF32(loss.loss))[0];
    model.releaseLoss(loss);
    let squared = 0;
    for (const g of adapter.grads.values()) for (const t of [g.da, g.db]) for (const v of await engine.readF32(t)) squared += v * v;

    const report = await trainer.statementStep([{ statements: encoded.slice(0, 4), labels: LABELS.slice(0, 4) }, { statements: encoded.slice(4), labels: LABELS.slice(4) }], padId);
    expect(report.tokens).toBe(encoded.reduce((n, s, i) => n + s[LABELS[i] ? 'true' : 'false'].length, 0));
    expect(Math.abs(report.loss - expectedLoss) / expectedLoss, `loss ${report.loss} vs ${expectedLoss}`).toBeLessThan(1e-5);
    expect(Math.abs(report.gradNorm - Math.sqrt(squared)) / Math.sqrt(squared), `grad norm ${report.gradNorm} vs ${Math.sqrt(squared)}`).toBeLessThan(1e-4);
    trainer.release();
    model.destroy();
  });

  it('lowers the loss and separates the toy statements by their answer margins after a few steps', async () => {
    const engine = await gpuEngine();
    const { model, trainer, encoded, padId } = await setup(engine, 2e-2);
    // Every true statement's margin above every false one's (AUROC 1); zero-shot accuracy's threshold
    // 0 also needs the model's bias towards one answer gone, which the random tiny model takes long to lose.
    const gap = async () => {
      const margins = (await scoreStatements(model, encoded, { padId })).map((x) => x.margin);
      const side = (label: boolean) => margins.filter((_, i) => LABELS[i] === label);
      return Math.min(...side(true)) - Math.max(...side(false));
    };
    const before = await gap();
    const losses: number[] = [];
    for (let step = 0; step < 12; step++) losses.push((await trainer.statementStep([{ statements: encoded, labels: LABELS }], padId)).loss);
    expect(losses.at(-1)!, `losses ${losses.join(', ')}`).toBeLessThan(losses[0] - 0.1);
    const after = await gap();
    expect(before, 'the untrained model already separates the statements').toBeLessThan(0);
    expect(after, `margin gap ${before} → ${after}`).toBeGreaterThan(0.05);
    await expect(trainer.statementStep([{ statements: encoded, labels: LABELS.slice(1) }], padId)).rejects.toThrow('5 labels for 6 statements');
    trainer.release();
    model.destroy();
  });
});
