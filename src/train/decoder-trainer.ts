/**
 * One optimizer step of a decoder's trainable adapter on the causal-LM objective: the mean
 * next-token loss of a batch of texts, its gradients, global grad-norm clipping and AdamW (as
 * torch.optim.AdamW), recorded into one GPU batch; the loss is read back afterwards.
 *
 * Phi-3's fused modules have one A for their parts: the parts' A gradients are summed (the shared
 * A's gradient, by the chain rule) and given to each, so AdamW moves the copies identically and the
 * adapter stays a PEFT qkv_proj / gate_up_proj LoRA. (The clipping norm then counts that A once per
 * part, where PEFT counts it once: with clipping active, such steps are a little shorter than PEFT's.)
 */
import { AdamW, type AdamWHyper } from '../engine/ops/adamw.ts';
import { add } from '../engine/ops/elementwise.ts';
import { hash32 } from '../engine/rng.ts';
import { IGNORE_INDEX } from '../engine/ops/lm-head-loss.ts';
import { tiedLoraGroups } from '../model/decoder-lora-layout.ts';
import { type DecoderBatch, type DecoderModel, causalLmTargets } from '../model/decoder.ts';
import type { GpuLoraModules } from '../model/lora.ts';
import { learningRate } from './schedule.ts';
import { NonFiniteLossError } from './trainer.ts';

export interface DecoderTrainConfig extends Omit<AdamWHyper, 'lr' | 'step'> {
  learningRate: number;
  warmupSteps: number;
  totalSteps: number;
  /** Seeds the LoRA dropout masks of each step. */
  seed: number;
}

export interface DecoderStepReport {
  step: number;
  loss: number;
  learningRate: number;
  gradNorm: number;
  /** Next tokens predicted in the step (the loss is their mean). */
  tokens: number;
}

/** The batch's next-token targets (causalLmTargets) and how many there are; a batch with none is refused. */
export function nextTokenTargets(batch: DecoderBatch): { targets: Int32Array; tokens: number } {
  const targets = causalLmTargets(batch);
  const tokens = targets.filter((t) => t !== IGNORE_INDEX).length;
  if (tokens === 0) throw new Error('no text of the batch has a second token, so there is no next token to predict');
  return { targets, tokens };
}

export class DecoderTrainer {
  /** Optimizer steps taken so far. */
  step = 0;
  private readonly adapter: GpuLoraModules;
  private readonly optimizer: AdamW;
  private readonly tied: string[][];

  constructor(
    readonly model: DecoderModel,
    readonly config: DecoderTrainConfig,
  ) {
    const adapter = model.trainableAdapter;
    if (!adapter) throw new Error('training needs a trainable adapter on the decoder');
    this.adapter = adapter;
    this.optimizer = new AdamW(model.engine, adapter.parameters().params);
    this.tied = tiedLoraGroups(model.config, new Set(adapter.modules.keys()));
  }

  /** One step on `batch`. A NaN/Inf loss rejects with NonFiniteLossError; that step's update is then skipped on the GPU. */
  async trainStep(batch: DecoderBatch): Promise<DecoderStepReport> {
    const { model, config } = this;
    const { engine } = model;
    const { targets, tokens } = nextTokenTargets(batch);
    this.adapter.zeroGrads();
    const result = model.forward(batch, { train: true, seed: hash32((hash32(config.seed) ^ Math.imul(this.step + 1, 0x85ebca6b)) >>> 0) });
    const loss = model.loss(result, targets);
    model.backwardLoss(result, loss);
    model.releaseForward(result);
    this.tieSharedA();
    const lr = learningRate(this.step, config.learningRate, config.warmupSteps, config.totalSteps);
    this.optimizer.step(this.adapter.parameters().grads, { ...config, lr, step: this.step + 1 });
    engine.flush();
    const [lossValue, gradNorm] = await Promise.all([engine.readF32(loss.loss), engine.readF32(this.optimizer.gradNorm)]).then((v) => v.map((t) => t[0]));
    model.releaseLoss(loss);
    if (!Number.isFinite(lossValue) || !Number.isFinite(gradNorm)) {
      throw new NonFiniteLossError(`training stopped at step ${this.step + 1}: the loss is ${lossValue} (gradient norm ${gradNorm}); the adapter keeps its values from step ${this.step}. Lower the learning rate.`);
    }
    this.step += 1;
    return { step: this.step, loss: lossValue, learningRate: lr, gradNorm, tokens };
  }

  /** Each tied group's A gradients replaced by their sum. */
  private tieSharedA(): void {
    const { engine } = this.model;
    for (const names of this.tied) {
      const grads = names.map((n) => this.adapter.grads.get(n)!.da);
      for (const g of grads.slice(1)) add(engine, grads[0], g, grads[0]);
      for (const g of grads.slice(1)) engine.copy(grads[0], g);
    }
  }

  release(): void {
    this.optimizer.release();
  }
}
