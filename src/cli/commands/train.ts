/** `qlora-lab train`: QLoRA-train a LoRA adapter on a pair file and write it in PEFT format. */
import { Rng } from '../../engine/rng.ts';
import { GpuAdapter, type TrainingLoraConfig, initLoraTensors } from '../../model/lora.ts';
import { estimateTrainingMemory, formatBytes } from '../../model/memory.ts';
import { writePeftAdapter } from '../../model/peft-files.ts';
import { hasPooler } from '../../model/state-dict.ts';
import { type Example, type Objective, encodeExamples } from '../../train/objective.ts';
import { DEFAULT_TRAIN_CONFIG, NonFiniteLossError, type TrainConfig, Trainer } from '../../train/trainer.ts';
import { numberOption, parseOptions, required } from '../args.ts';
import { ENCODER_OPTIONS, ENCODER_USAGE, type CliEncoder, attachAdapterDirs, openEncoder } from '../encoder.ts';
import { UsageError } from '../errors.ts';
import { checkOutputPath, writeOutputDir } from '../output.ts';
import { PAIR_OPTIONS, PAIR_USAGE, pairOptionsOf, readPairFile } from '../pair-file.ts';

export const summary = 'train a LoRA adapter on (anchor, positive[, negatives]) or labelled pairs; writes a PEFT adapter';

const USAGE = `usage: qlora-lab train --model <dir|hub-id> --data pairs.(csv|tsv|jsonl)[.gz] --out <adapter-dir> [options]
${ENCODER_USAGE}
  --r N                 LoRA rank (default 16)
  --alpha A             LoRA alpha (default 32)
  --lora-dropout P      dropout on the LoRA input (default 0.1)
  --rslora              scale alpha/sqrt(r) instead of alpha/r
  --targets a,b         PEFT target modules (default query,value)
  --stack <dir>         a frozen adapter under the new one (repeatable, applied in order)
  --scale S             InfoNCE scale (default 20); labelled pairs use CosineSimilarityLoss
  --symmetric           symmetric InfoNCE
  --epochs N            passes over the data (default 1)
  --batch-size N        examples per micro-batch (default 32)
  --grad-accum N        micro-batches per optimizer step (default 1)
  --lr LR               peak learning rate (default 2e-4)
  --warmup-ratio F      fraction of steps of linear warmup (default 0.1)
  --weight-decay W      AdamW weight decay (default 0.01)
  --max-grad-norm N     global gradient-norm clip, 0 = off (default 1)
  --hidden-dropout P    BERT hidden dropout while training (default 0.1)
  --seed N              seed for the adapter init, shuffling and dropout (default 42)
${PAIR_USAGE}`;

export async function run(args: string[]): Promise<void> {
  const { values } = parseOptions(
    args,
    {
      ...ENCODER_OPTIONS,
      ...PAIR_OPTIONS,
      data: { type: 'string' },
      out: { type: 'string' },
      r: { type: 'string' },
      alpha: { type: 'string' },
      'lora-dropout': { type: 'string' },
      rslora: { type: 'boolean', default: false },
      targets: { type: 'string', default: 'query,value' },
      stack: { type: 'string', multiple: true },
      scale: { type: 'string' },
      symmetric: { type: 'boolean', default: false },
      epochs: { type: 'string' },
      'batch-size': { type: 'string' },
      'grad-accum': { type: 'string' },
      lr: { type: 'string' },
      'warmup-ratio': { type: 'string' },
      'weight-decay': { type: 'string' },
      'max-grad-norm': { type: 'string' },
      'hidden-dropout': { type: 'string' },
      seed: { type: 'string' },
    },
    USAGE,
  );
  const out = required(values, 'out', USAGE);
  await checkOutputPath('out', out, 'dir');
  const data = await readPairFile(required(values, 'data', USAGE), pairOptionsOf(values));
  const positiveInt = (n: number) => Number.isInteger(n) && n > 0;
  const probability = (n: number) => n >= 0 && n < 1;
  const lora: TrainingLoraConfig = {
    r: numberOption(values, 'r', 16, positiveInt),
    alpha: numberOption(values, 'alpha', 32, (n) => n > 0),
    dropout: numberOption(values, 'lora-dropout', 0.1, probability),
    rslora: Boolean(values.rslora),
    targetModules: String(values.targets).split(',').map((t) => t.trim()).filter(Boolean),
  };
  const batchSize = numberOption(values, 'batch-size', 32, positiveInt);
  const accumulation = numberOption(values, 'grad-accum', 1, positiveInt);
  const epochs = numberOption(values, 'epochs', 1, positiveInt);
  const seed = numberOption(values, 'seed', 42, Number.isInteger);
  const objective: Objective =
    data.layout === 'labelled' ? { kind: 'cosine-pairs' } : { kind: 'infonce', scale: numberOption(values, 'scale', 20), symmetric: Boolean(values.symmetric) };
  if (objective.kind === 'infonce' && batchSize < 2) throw new UsageError('InfoNCE needs --batch-size ≥ 2 (the other pairs of a batch are the negatives)');
  const stepsPerEpoch = Math.floor(data.examples.length / (batchSize * accumulation));
  if (stepsPerEpoch === 0) throw new UsageError(`${data.examples.length} examples are fewer than one step (batch ${batchSize} × accumulation ${accumulation})`);
  const totalSteps = stepsPerEpoch * epochs;
  const maxGradNorm = numberOption(values, 'max-grad-norm', 1, (n) => n >= 0);
  const config: TrainConfig = {
    ...DEFAULT_TRAIN_CONFIG,
    objective,
    learningRate: numberOption(values, 'lr', 2e-4, (n) => n > 0),
    warmupSteps: Math.round(numberOption(values, 'warmup-ratio', 0.1, (n) => n >= 0 && n <= 1) * totalSteps),
    totalSteps,
    gradientAccumulation: accumulation,
    maxGradNorm: maxGradNorm === 0 ? null : maxGradNorm,
    weightDecay: numberOption(values, 'weight-decay', 0.01, (n) => n >= 0),
    hiddenDropout: numberOption(values, 'hidden-dropout', 0.1, probability),
    seed,
  };

  const cli = await openEncoder(values);
  const frozen = await attachAdapterDirs(cli, (values.stack as string[] | undefined) ?? [], false);
  const adapter = new GpuAdapter(cli.engine, cli.files.config, lora, initLoraTensors(cli.files.config, lora, seed, { pooler: hasPooler(cli.files.weights) }), true);
  cli.bert.adapters = [...frozen, adapter];
  const negatives = data.layout === 'triplets' ? Math.max(0, ...data.examples.map((e) => e.negatives?.length ?? 0)) : 0;
  const sequences = batchSize * (2 + negatives);
  const estimate = estimateTrainingMemory(cli.files.config, lora, { sequences, seq: cli.encoder.options.maxLength }, { quantization: cli.bert.quantization });
  process.stderr.write(
    `${data.examples.length} ${data.layout} examples, ${totalSteps} steps; GPU memory estimate ${formatBytes(estimate.total)} (base ${formatBytes(estimate.baseWeights)}, activations ≤ ${formatBytes(estimate.activations)})\n`,
  );
  const trainer = new Trainer(cli.encoder, config);
  const rng = new Rng(seed);
  const started = performance.now();
  let examplesSeen = 0;
  try {
    for (let epoch = 0; epoch < epochs; epoch++) {
      const order = rng.shuffle(data.examples.map((_, i) => i));
      for (let s = 0; s < stepsPerEpoch; s++) {
        const micro = Array.from({ length: accumulation }, (_, k) => {
          const start = (s * accumulation + k) * batchSize;
          const examples = order.slice(start, start + batchSize).map((i) => data.examples[i] as Example);
          return encodeExamples(cli.encoder, objective, examples);
        });
        const report = await trainer.trainStep(micro);
        examplesSeen += report.examples;
        const seconds = (performance.now() - started) / 1000;
        process.stderr.write(
          `${JSON.stringify({ step: report.step, of: totalSteps, epoch: epoch + 1, loss: round(report.loss), lr: report.learningRate, grad_norm: round(report.gradNorm), examples_per_s: round(examplesSeen / seconds) })}\n`,
        );
      }
    }
  } catch (e) {
    if (e instanceof NonFiniteLossError) {
      await saveAdapter(cli, adapter, lora, out, String(values.model));
      throw new Error(`${e.message} The last good adapter was written to ${out}.`);
    }
    throw e;
  }
  await saveAdapter(cli, adapter, lora, out, String(values.model));
  process.stderr.write(`peak GPU memory ${formatBytes(cli.engine.peakBytes)} (estimated ${formatBytes(estimate.total)}); adapter written to ${out}\n`);
  trainer.release();
  cli.engine.destroy();
}

async function saveAdapter(cli: CliEncoder, adapter: GpuAdapter, lora: TrainingLoraConfig, out: string, model: string): Promise<void> {
  const at = model.lastIndexOf('@');
  const isHubWithRevision = cli.files.source.kind === 'hub' && at > 0;
  const files = writePeftAdapter({
    config: {
      r: lora.r,
      loraAlpha: lora.alpha,
      loraDropout: lora.dropout,
      targetModules: lora.targetModules,
      useRslora: lora.rslora,
      baseModelNameOrPath: isHubWithRevision ? model.slice(0, at) : cli.files.source.id,
      ...(cli.files.source.revision ? { revision: cli.files.source.revision } : {}),
    },
    tensors: await adapter.download(),
  });
  await writeOutputDir(out, files);
}

const round = (x: number) => Math.round(x * 1e5) / 1e5;
