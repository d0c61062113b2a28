/**
 * One optimizer step of a decoder's trainable adapter: each micro-batch's forward, chunked LM-head
 * loss and backward, then global grad-norm clipping and AdamW (as torch.optim.AdamW), recorded into
 * one GPU batch as the encoder's Trainer does. Two objectives share the step: causal-LM (every next
 * token of the texts) and labelled statements (the correct answer's tokens after each statement's
 * prompt, statementTrainingBatch: the CTD study's objective). The loss is the mean over every
 * predicted token of the step, so micro-batches (the memory plan's gradient accumulation) give the
 * one-batch step.
 *
 * Phi-3's fused modules have one A for their parts: the parts' A gradients are summed (the shared
 * A's gradient, by the chain rule) and given to each, so AdamW moves the copies identically and the
 * adapter stays a PEFT qkv_proj / gate_up_proj LoRA. (The clipping norm then counts that A once per
 * part, where PEFT counts it once: with clipping active, such steps are a little shorter than PEFT's.)
 */
import { AdamW } from '../engine/ops/adamw.ts';
import { add } from '../engine/ops/elementwise.ts';
import { IGNORE_INDEX } from '../engine/ops/lm-head-loss.ts';
import type { Tensor } from '../engine/tensor.ts';
import { tiedLoraGroups } from '../model/decoder-lora-layout.ts';
import { DEFAULT_LM_HEAD_CHUNK, type DecoderBatch, type DecoderModel, causalLmTargets } from '../model/decoder.ts';
import type { GpuLoraModules } from '../model/lora.ts';
import { statementTrainingBatch } from '../model/statement-batch.ts';
import type { EncodedStatement } from '../model/statement-prompt.ts';
import { NonFiniteLossError, type OptimizerConfig, type TrainConfig, microBatchSeed, optimizerStep } from './trainer.ts';

export type DecoderTrainConfig = OptimizerConfig &
  Pick<TrainConfig, 'seed'> & {
    /** Activation checkpointing of every n-th layer (DecoderForwardMode.checkpointEvery); 0 or absent = off. */
    checkpointEvery?: number;
  };

export interface DecoderStepReport {
  /** 1-based number of the optimizer step just taken. */
  step: number;
  /** Mean loss over the step's predicted tokens (every next token, or the correct answers' tokens). */
  loss: number;
  learningRate: number;
  gradNorm: number;
  /** Tokens predicted in the step (the loss is their mean). */
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
    readonly lmHeadChunk = DEFAULT_LM_HEAD_CHUNK,
  ) {
    const adapter = model.trainableAdapter;
    if (!adapter) throw new Error('training needs a trainable adapter on the decoder');
    this.adapter = adapter;
    this.optimizer = new AdamW(model.engine, adapter.parameters().params);
    this.tied = tiedLoraGroups(model.config, new Set(adapter.modules.keys()));
  }

  /**
   * One causal-LM optimizer step over `microBatches`; resolves with the loss once the GPU has
   * finished. A NaN/Inf loss rejects with NonFiniteLossError; that step's update is then skipped on the GPU.
   */
  async trainStep(microBatches: DecoderBatch[]): Promise<DecoderStepReport> {
    const micro = microBatches.map((batch) => ({ batch, targets: causalLmTargets(batch) }));
    return this.optimize(micro, 'no text of the step has a second token, so there is no next token to predict');
  }

  /**
   * One optimizer step on labelled statements (each micro-batch its statements and labels): the loss
   * is the mean −log p of the correct answers' tokens after their prompts. As trainStep otherwise.
   */
  async statementStep(microBatches: { statements: EncodedStatement[]; labels: ArrayLike<boolean> }[], padId: number): Promise<DecoderStepReport> {
    const max = this.model.config.maxSequenceLength;
    const micro = microBatches.map(({ statements, labels }) => statementTrainingBatch(statements, labels, padId, max));
    return this.optimize(micro, 'the statements of the step have no answer tokens to predict');
  }

  private async optimize(microBatches: { batch: DecoderBatch; targets: Int32Array }[], noTokens: string): Promise<DecoderStepReport> {
    const { model, config } = this;
    const { engine } = model;
    if (microBatches.length === 0) throw new Error('a training step needs at least one micro-batch');
    const tokens = microBatches.reduce((n, m) => n + m.targets.filter((id) => id !== IGNORE_INDEX).length, 0);
    if (tokens === 0) throw new Error(noTokens);
    this.adapter.zeroGrads();
    const losses: Tensor[] = [];
    microBatches.forEach(({ batch, targets }, k) => {
      const result = model.forward(batch, { train: true, seed: microBatchSeed(config.seed, this.step, k), checkpointEvery: config.checkpointEvery });
      const loss = model.loss(result, targets, this.lmHeadChunk, tokens);
      model.backwardLoss(result, loss, this.lmHeadChunk);
      model.releaseForward(result);
      engine.release(loss.tokenLoss, loss.lse, loss.targets.ids);
      losses.push(loss.loss);
    });
    this.tieSharedA();
    const { lr, values, gradNorm } = await optimizerStep(engine, this.optimizer, this.adapter.parameters().grads, losses, config, this.step);
    const loss = values.reduce((sum, v) => sum + v, 0); // each is its share of the step's mean
    if (!Number.isFinite(loss) || !Number.isFinite(gradNorm)) {
      throw new NonFiniteLossError(`training stopped at step ${this.step + 1}: the loss is ${loss} (gradient norm ${gradNorm}); the adapter keeps its values from step ${this.step}. Lower the learning rate.`);
    }
    this.step += 1;
    return { step: this.step, loss, learningRate: lr, gradNorm, tokens };
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
