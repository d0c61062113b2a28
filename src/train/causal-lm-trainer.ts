/**
 * One optimizer step of causal-LM training on a decoder: each micro-batch's forward, chunked LM-head
 * loss and backward into the trainable adapter, then global grad-norm clipping and AdamW, recorded
 * into one GPU batch as the encoder's Trainer does. The loss is the mean over every predicted token
 * of the step, so micro-batches (the memory plan's gradient accumulation) give the one-batch step.
 */
import { AdamW } from '../engine/ops/adamw.ts';
import { IGNORE_INDEX } from '../engine/ops/lm-head-loss.ts';
import type { Tensor } from '../engine/tensor.ts';
import { DEFAULT_LM_HEAD_CHUNK, type DecoderBatch, type DecoderModel, causalLmTargets } from '../model/decoder.ts';
import type { GpuLoraModules } from '../model/lora.ts';
import { NonFiniteLossError, type TrainConfig, microBatchSeed, optimizerStep } from './trainer.ts';

export type CausalLmTrainConfig = Pick<TrainConfig, 'learningRate' | 'warmupSteps' | 'totalSteps' | 'maxGradNorm' | 'weightDecay' | 'beta1' | 'beta2' | 'eps' | 'seed'>;

export interface CausalLmStepReport {
  /** 1-based number of the optimizer step just taken. */
  step: number;
  /** Mean next-token loss over the step's predicted tokens. */
  loss: number;
  learningRate: number;
  gradNorm: number;
  /** Tokens predicted (targets that count) in the step. */
  tokens: number;
}

export class CausalLmTrainer {
  /** Optimizer steps taken so far. */
  step = 0;
  private readonly optimizer: AdamW;
  private readonly adapter: GpuLoraModules;

  constructor(
    readonly model: DecoderModel,
    readonly config: CausalLmTrainConfig,
    readonly lmHeadChunk = DEFAULT_LM_HEAD_CHUNK,
  ) {
    const adapter = model.trainableAdapter;
    if (!adapter) throw new Error('training needs a trainable adapter on the decoder');
    this.adapter = adapter;
    this.optimizer = new AdamW(model.engine, adapter.parameters().params);
  }

  /** One optimizer step over `microBatches`; resolves with the loss once the GPU has finished. */
  async trainStep(microBatches: DecoderBatch[]): Promise<CausalLmStepReport> {
    const { model, config } = this;
    const engine = model.engine;
    if (microBatches.length === 0) throw new Error('a training step needs at least one micro-batch');
    const targets = microBatches.map(causalLmTargets);
    const tokens = targets.reduce((n, t) => n + t.filter((id) => id !== IGNORE_INDEX).length, 0);
    if (tokens === 0) throw new Error('a training step needs a token to predict: every sequence of the step is shorter than 2 tokens');
    this.adapter.zeroGrads();
    const losses: Tensor[] = [];
    microBatches.forEach((batch, k) => {
      const result = model.forward(batch, { train: true, seed: microBatchSeed(config.seed, this.step, k) });
      const loss = model.loss(result, targets[k], this.lmHeadChunk, tokens);
      model.backwardLoss(result, loss, this.lmHeadChunk);
      model.releaseForward(result);
      engine.release(loss.tokenLoss, loss.lse, loss.targets.ids);
      losses.push(loss.loss);
    });
    const { lr, values, gradNorm } = await optimizerStep(engine, this.optimizer, this.adapter.parameters().grads, losses, config, this.step);
    const loss = values.reduce((sum, v) => sum + v, 0); // each is its share of the step's mean
    if (!Number.isFinite(loss) || !Number.isFinite(gradNorm)) {
      throw new NonFiniteLossError(
        `training stopped at step ${this.step + 1}: the loss is ${loss} (gradient norm ${gradNorm}); the adapter keeps its values from step ${this.step}. Lower the learning rate.`,
      );
    }
    this.step += 1;
    return { step: this.step, loss, learningRate: lr, gradNorm, tokens };
  }

  release(): void {
    this.optimizer.release();
  }
}
