/**
 * `qlora-lab train`'s options and what they make of a pair file: the adapter, the objective, the
 * trainer settings and the order examples are fed in. Shared by `train`, which runs it, and
 * `export-run`, which writes the same run out for sentence-transformers.
 */
import { Rng } from '../data/rng.ts';
import type { StoragePrecision } from '../engine/stored.ts';
import type { TrainingLoraConfig } from '../model/lora.ts';
import type { SentenceOverrides } from '../model/sentence-config.ts';
import type { Example, Objective } from '../train/objective.ts';
import { CLI_TRAIN_DEFAULTS as D, DEFAULT_TRAIN_CONFIG } from '../train/defaults.ts';
import type { TrainConfig } from '../train/trainer.ts';
import { numberOption } from './args.ts';
import { ENCODER_OPTIONS, ENCODER_USAGE, encoderOverrides } from './encoder.ts';
import { UsageError } from './errors.ts';
import { PAIR_OPTIONS, PAIR_USAGE, type PairExamples } from './pair-file.ts';

/** The adapter and optimizer options every `train` takes, encoder or decoder. */
export const LORA_TRAIN_OPTIONS = {
  data: { type: 'string' },
  out: { type: 'string' },
  r: { type: 'string' },
  alpha: { type: 'string' },
  'lora-dropout': { type: 'string' },
  rslora: { type: 'boolean', default: false },
  stack: { type: 'string', multiple: true },
  epochs: { type: 'string' },
  'batch-size': { type: 'string' },
  lr: { type: 'string' },
  'warmup-ratio': { type: 'string' },
  'weight-decay': { type: 'string' },
  'max-grad-norm': { type: 'string' },
  seed: { type: 'string' },
} as const;

export const TRAIN_OPTIONS = {
  ...ENCODER_OPTIONS,
  ...PAIR_OPTIONS,
  ...LORA_TRAIN_OPTIONS,
  targets: { type: 'string', default: D.targets },
  scale: { type: 'string' },
  symmetric: { type: 'boolean', default: false },
  'grad-accum': { type: 'string' },
  'hidden-dropout': { type: 'string' },
  'checkpoint-every': { type: 'string' },
  'micro-batch': { type: 'string' },
  'checkpoint-every-layers': { type: 'string' },
  'memory-budget': { type: 'string' },
  storage: { type: 'string' },
} as const;

export const TRAIN_USAGE = `${ENCODER_USAGE}
  --r N                 LoRA rank (default ${D.r})
  --alpha A             LoRA alpha (default ${D.alpha})
  --lora-dropout P      dropout on the LoRA input (default ${D.loraDropout})
  --rslora              scale alpha/sqrt(r) instead of alpha/r
  --targets a,b         PEFT target modules, BERT's names or the model's own (default ${D.targets})
  --stack <dir>         a frozen adapter under the new one (repeatable, applied in order)
  --scale S             InfoNCE scale (default ${D.scale}); labelled pairs use CosineSimilarityLoss
  --symmetric           symmetric InfoNCE
  --epochs N            passes over the data (default ${D.epochs})
  --batch-size N        examples per micro-batch (default ${D.batchSize})
  --grad-accum N        micro-batches per optimizer step (default ${D.gradientAccumulation})
  --lr LR               peak learning rate (default ${D.learningRate})
  --warmup-ratio F      fraction of steps of linear warmup (default ${D.warmupRatio})
  --weight-decay W      AdamW weight decay (default ${D.weightDecay})
  --max-grad-norm N     global gradient-norm clip, 0 = off (default ${D.maxGradNorm})
  --hidden-dropout P    BERT hidden dropout while training (default ${D.hiddenDropout})
  --seed N              seed for the adapter init, shuffling and dropout (default ${D.seed})
  --micro-batch N       sequences per encoder pass; the step stays exact (gradient caching: the loss
                        sees the whole batch) with activations for N sequences only; 0 = the whole
                        micro-batch in one pass (default: the memory plan's choice)
  --checkpoint-every-layers N
                        recompute 1 encoder layer in N inside backward instead of keeping its
                        activations; 0 = off (default: the memory plan's choice)
  --memory-budget GIB   GPU memory the memory plan fits the step into (default 4; WebGPU does not
                        report the GPU's size)
  --storage f16|f32     precision of the activations kept for backward and of the base's embeddings
                        and LayerNorms; computing stays f32 (default: the memory plan's choice, f32
                        when the step fits whole, else f16: half the memory at the same speed)
${PAIR_USAGE}`;

/** Everything a `train` run does with its data, decided before any GPU work. */
export interface TrainPlan {
  lora: TrainingLoraConfig;
  /** The sentence options given (checked); the model folder decides the rest. */
  sentence: SentenceOverrides;
  /** Examples per micro-batch. */
  batchSize: number;
  epochs: number;
  stepsPerEpoch: number;
  checkpointEvery: number;
  /** The trainer's settings; totalSteps = stepsPerEpoch × epochs, seed = --seed. */
  config: TrainConfig;
  /** The memory plan's budget and the layout choices given (absent ones are planned once the model is known). */
  memory: { budgetBytes: number; fixed: { sequencesPerPass?: number; checkpointEvery?: number; storage?: StoragePrecision } };
}

/** The plan `values` (parsed with TRAIN_OPTIONS) make for `data`; a bad value is a UsageError naming its option. */
export function trainPlan(values: Record<string, unknown>, data: PairExamples): TrainPlan {
  const positiveInt = (n: number) => Number.isInteger(n) && n > 0;
  const probability = (n: number) => n >= 0 && n < 1;
  const lora: TrainingLoraConfig = {
    r: numberOption(values, 'r', D.r, positiveInt),
    alpha: numberOption(values, 'alpha', D.alpha, (n) => n > 0),
    dropout: numberOption(values, 'lora-dropout', D.loraDropout, probability),
    rslora: Boolean(values.rslora),
    targetModules: String(values.targets).split(',').map((t) => t.trim()).filter(Boolean),
  };
  const batchSize = numberOption(values, 'batch-size', D.batchSize, positiveInt);
  const accumulation = numberOption(values, 'grad-accum', D.gradientAccumulation, positiveInt);
  const epochs = numberOption(values, 'epochs', D.epochs, positiveInt);
  const seed = numberOption(values, 'seed', D.seed, Number.isInteger);
  const checkpointEvery = numberOption(values, 'checkpoint-every', D.checkpointEvery, positiveInt);
  const objective: Objective =
    data.layout === 'labelled' ? { kind: 'cosine-pairs' } : { kind: 'infonce', scale: numberOption(values, 'scale', D.scale), symmetric: Boolean(values.symmetric) };
  if (objective.kind === 'infonce' && batchSize < 2) throw new UsageError('InfoNCE needs --batch-size ≥ 2 (the other pairs of a batch are the negatives)');
  const stepsPerEpoch = Math.floor(data.examples.length / (batchSize * accumulation));
  if (stepsPerEpoch === 0) throw new UsageError(`${data.examples.length} examples are fewer than one step (batch ${batchSize} × accumulation ${accumulation})`);
  const totalSteps = stepsPerEpoch * epochs;
  const maxGradNorm = numberOption(values, 'max-grad-norm', D.maxGradNorm, (n) => n >= 0);
  const config: TrainConfig = {
    ...DEFAULT_TRAIN_CONFIG,
    objective,
    learningRate: numberOption(values, 'lr', D.learningRate, (n) => n > 0),
    warmupSteps: Math.round(numberOption(values, 'warmup-ratio', D.warmupRatio, (n) => n >= 0 && n <= 1) * totalSteps),
    totalSteps,
    gradientAccumulation: accumulation,
    maxGradNorm: maxGradNorm === 0 ? null : maxGradNorm,
    weightDecay: numberOption(values, 'weight-decay', D.weightDecay, (n) => n >= 0),
    hiddenDropout: numberOption(values, 'hidden-dropout', D.hiddenDropout, probability),
    seed,
  };
  const nonNegativeInt = (n: number) => Number.isInteger(n) && n >= 0;
  const fixed: TrainPlan['memory']['fixed'] = {};
  const storage = values.storage;
  if (storage !== undefined) {
    if (storage !== 'f16' && storage !== 'f32') throw new UsageError(`--storage must be f16 or f32, got ${String(storage)}`);
    fixed.storage = storage;
  }
  if (values['micro-batch'] !== undefined) fixed.sequencesPerPass = numberOption(values, 'micro-batch', 0, nonNegativeInt);
  if (values['checkpoint-every-layers'] !== undefined) fixed.checkpointEvery = numberOption(values, 'checkpoint-every-layers', 0, nonNegativeInt);
  const budgetBytes = numberOption(values, 'memory-budget', 4, (n) => n > 0) * 2 ** 30;
  return { lora, sentence: encoderOverrides(values), batchSize, epochs, stepsPerEpoch, checkpointEvery, config, memory: { budgetBytes, fixed } };
}

/**
 * The examples of optimizer step `step`, micro-batch `micro`: each epoch is one seeded shuffle of
 * the file (one stream, replayed from the start on resume), cut into batches in order.
 */
export class TrainingOrder {
  private readonly rng: Rng;
  private readonly orders: number[][] = [];

  constructor(
    private readonly examples: readonly Example[],
    private readonly plan: TrainPlan,
  ) {
    this.rng = new Rng(plan.config.seed);
  }

  microBatch(step: number, micro: number): Example[] {
    const { batchSize, stepsPerEpoch, config } = this.plan;
    const epoch = Math.floor(step / stepsPerEpoch);
    const start = ((step % stepsPerEpoch) * config.gradientAccumulation + micro) * batchSize;
    return this.epoch(epoch)
      .slice(start, start + batchSize)
      .map((i) => this.examples[i]);
  }

  /** Every example the run feeds, in order: steps × accumulation × batch size of them. */
  all(): Example[] {
    const out: Example[] = [];
    for (let step = 0; step < this.plan.config.totalSteps; step++) {
      for (let micro = 0; micro < this.plan.config.gradientAccumulation; micro++) out.push(...this.microBatch(step, micro));
    }
    return out;
  }

  private epoch(epoch: number): number[] {
    while (this.orders.length <= epoch) this.orders.push(this.rng.shuffle(Array.from({ length: this.examples.length }, (_, i) => i)));
    return this.orders[epoch];
  }
}
