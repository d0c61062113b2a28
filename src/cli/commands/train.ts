/** `qlora-lab train`: QLoRA-train a LoRA adapter on a pair file and write it in PEFT format. */
import { join } from 'node:path';
import { Rng } from '../../engine/rng.ts';
import { trainingTargets } from '../../model/families.ts';
import { GpuAdapter, type HostAdapterTensors, type LoraConfig, initLoraTensors } from '../../model/lora.ts';
import { estimateTrainingMemory, formatBytes } from '../../model/memory.ts';
import { writePeftAdapter } from '../../model/peft-files.ts';
import { type Example, type Objective, encodeExamples } from '../../train/objective.ts';
import { DivergedError, adapterHealth, assertAdapterSane } from '../../train/divergence.ts';
import { DEFAULT_TRAIN_CONFIG, NonFiniteLossError, type TrainConfig, Trainer } from '../../train/trainer.ts';
import { numberOption, parseOptions, required } from '../args.ts';
import { ENCODER_OPTIONS, ENCODER_USAGE, type CliEncoder, openEncoder } from '../encoder.ts';
import { UsageError } from '../errors.ts';
import { checkOutputPath, writeOutputDir } from '../output.ts';
import { readPairFile } from '../pair-file.ts';
import { CHECKPOINT_FILE, type TrainCheckpoint, fileSha256, loadTrainCheckpoint, removeTrainCheckpoint, saveTrainCheckpoint } from '../train-checkpoint.ts';

export const summary = 'train a LoRA adapter on (anchor, positive[, negatives]) or labelled pairs; writes a PEFT adapter';

const USAGE = `usage: qlora-lab train --model <dir|hub-id> --data pairs.(csv|tsv|jsonl)[.gz] --out <adapter-dir> [options]
${ENCODER_USAGE}
  --r N                 LoRA rank (default 16)
  --alpha A             LoRA alpha (default 32)
  --lora-dropout P      dropout on the LoRA input (default 0.1)
  --rslora              scale alpha/sqrt(r) instead of alpha/r
  --targets a,b         PEFT target modules, BERT's names or the model's own (default query,value)
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
  --checkpoint-every N  write <out>/checkpoint.safetensors every N steps (default 50); one is also
                        written on Ctrl-C / SIGTERM, and removed when the run finishes
  --resume <out>        continue an interrupted run from <out>/checkpoint.safetensors with its own
                        settings and data (give no other option); the result is bit-identical to
                        an uninterrupted run`;

/** Given alone: every other setting of a resumed run comes from its checkpoint. */
const RESUME_OPTION = '--resume';

export async function run(args: string[]): Promise<void> {
  if (args[0] === RESUME_OPTION) {
    if (args.length !== 2) throw new UsageError(`--resume <out> takes the settings of the interrupted run: give no other option\n\n${USAGE}`);
    const checkpoint = await loadTrainCheckpoint(args[1]);
    return train(withOut(checkpoint.args, args[1]), checkpoint);
  }
  if (args.includes(RESUME_OPTION)) throw new UsageError(`--resume <out> takes the settings of the interrupted run: give no other option\n\n${USAGE}`);
  return train(args, null);
}

/** `args` with its --out replaced: a checkpoint folder that was moved resumes where it is now. */
function withOut(args: string[], out: string): string[] {
  const i = args.indexOf('--out');
  return i >= 0 ? [...args.slice(0, i + 1), out, ...args.slice(i + 2)] : [...args, '--out', out];
}

async function train(args: string[], resumeFrom: TrainCheckpoint | null): Promise<void> {
  const { values } = parseOptions(
    args,
    {
      ...ENCODER_OPTIONS,
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
      'checkpoint-every': { type: 'string' },
    },
    USAGE,
  );
  const out = required(values, 'out', USAGE);
  await checkOutputPath('out', out, 'dir');
  const dataPath = required(values, 'data', USAGE);
  const data = await readPairFile(dataPath);
  const dataSha256 = await fileSha256(dataPath);
  if (resumeFrom && resumeFrom.dataSha256 !== dataSha256) {
    throw new UsageError(`--resume ${out}: ${dataPath} has changed since the run started (its SHA-256 differs), so the run cannot continue identically`);
  }
  const positiveInt = (n: number) => Number.isInteger(n) && n > 0;
  const probability = (n: number) => n >= 0 && n < 1;
  const lora: LoraConfig = {
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
  const checkpointEvery = numberOption(values, 'checkpoint-every', 50, positiveInt);
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

  const cli = await openEncoder(values, (values.stack as string[] | undefined) ?? []);
  const modelCommit = cli.files.source.commit;
  if (resumeFrom?.modelCommit && modelCommit && resumeFrom.modelCommit !== modelCommit) {
    throw new UsageError(`--resume ${out}: the run started on commit ${resumeFrom.modelCommit} of ${values.model}, which now resolves to ${modelCommit}; resume with --model pinned to that commit`);
  }
  lora.targetModules = trainingTargets(cli.files.config, lora.targetModules);
  const adapter = new GpuAdapter(cli.engine, cli.files.config, lora, initLoraTensors(cli.files.config, lora, seed), true);
  cli.bert.adapters = [...cli.adapters, adapter];
  const negatives = data.layout === 'triplets' ? Math.max(0, ...data.examples.map((e) => e.negatives?.length ?? 0)) : 0;
  const sequences = batchSize * (2 + negatives);
  const estimate = estimateTrainingMemory(cli.files.config, lora, { sequences, seq: cli.encoder.options.maxLength }, { quantization: cli.bert.quantization });
  process.stderr.write(
    `${data.examples.length} ${data.layout} examples, ${totalSteps} steps; GPU memory estimate ${formatBytes(estimate.total)} (base ${formatBytes(estimate.baseWeights)}, activations ≤ ${formatBytes(estimate.activations)})\n`,
  );
  const trainer = new Trainer(cli.encoder, config);
  if (resumeFrom) {
    trainer.restore(resumeFrom.snapshot);
    process.stderr.write(`resuming at step ${trainer.step} of ${totalSteps} from ${join(out, CHECKPOINT_FILE)}\n`);
  }
  // The last checkpointed adapter that passed the divergence rule: what a diverged run falls back to.
  let lastSane: { step: number; tensors: HostAdapterTensors } | null = resumeFrom ? { step: resumeFrom.snapshot.step, tensors: resumeFrom.snapshot.adapter } : null;
  const checkpoint = async (): Promise<void> => {
    const snapshot = await trainer.snapshot();
    assertAdapterSane(cli.files.weights, snapshot.adapter, lora, snapshot.step);
    await saveTrainCheckpoint(out, { snapshot, args, dataSha256, ...(modelCommit ? { modelCommit } : {}) });
    lastSane = { step: snapshot.step, tensors: snapshot.adapter };
  };
  const save = (tensors: HostAdapterTensors) => saveAdapter(cli, tensors, lora, out, String(values.model));

  const interrupt = new InterruptFlag();
  const started = performance.now();
  let examplesSeen = 0;
  let stopped: string | null = null;
  try {
    const orders = new EpochOrders(data.examples.length, seed);
    while (trainer.step < totalSteps) {
      const epoch = Math.floor(trainer.step / stepsPerEpoch);
      const s = trainer.step % stepsPerEpoch;
      const order = orders.get(epoch);
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
      if (report.step % checkpointEvery === 0 || interrupt.raised) {
        await checkpoint();
        process.stderr.write(`checkpoint at step ${report.step} written to ${join(out, CHECKPOINT_FILE)}\n`);
      }
      if (interrupt.raised && report.step < totalSteps) {
        throw new UsageError(`interrupted at step ${report.step} of ${totalSteps}; continue with: qlora-lab train --resume ${out}`);
      }
    }
  } catch (e) {
    if (!(e instanceof NonFiniteLossError || e instanceof DivergedError)) throw e;
    stopped = e.message;
  } finally {
    interrupt.dispose();
  }

  const final = await adapter.download();
  const health = adapterHealth(cli.files.weights, final, lora);
  if (!stopped && health.sane) {
    await save(final);
    await removeTrainCheckpoint(out);
    process.stderr.write(`peak GPU memory ${formatBytes(cli.engine.peakBytes)} (estimated ${formatBytes(estimate.total)}); adapter written to ${out}\n`);
    trainer.release();
    cli.engine.destroy();
    return;
  }
  // Diverged (a non-finite loss, or an update larger than the weights it adapts): keep the last
  // adapter that is still sane, and never replace what --out held with a diverged one.
  const reason = stopped ?? `Training diverged at step ${trainer.step}: ${health.reason}.`;
  const keep = health.sane && trainer.step > 0 ? { step: trainer.step, tensors: final } : lastSane;
  if (keep && keep.step > 0) {
    await save(keep.tensors);
    throw new UsageError(`${reason} The adapter of step ${keep.step}, the last that passed the divergence check, was written to ${out}. Lower --lr and train again.`);
  }
  throw new UsageError(`${reason} No adapter passed the divergence check, so nothing was written to ${out}. Lower --lr and train again.`);
}

/** The shuffled example order of each epoch: one seeded stream, replayed from the start on resume. */
class EpochOrders {
  private readonly rng: Rng;
  private readonly orders: number[][] = [];

  constructor(
    private readonly n: number,
    seed: number,
  ) {
    this.rng = new Rng(seed);
  }

  get(epoch: number): number[] {
    while (this.orders.length <= epoch) this.orders.push(this.rng.shuffle(Array.from({ length: this.n }, (_, i) => i)));
    return this.orders[epoch];
  }
}

/** Ctrl-C / SIGTERM ask the loop to checkpoint and stop after the current step; a second one exits at once. */
class InterruptFlag {
  raised = false;
  private readonly onSignal = (signal: NodeJS.Signals) => {
    if (this.raised) process.exit(signal === 'SIGINT' ? 130 : 143);
    this.raised = true;
    process.stderr.write(`${signal}: stopping after this step and writing a checkpoint (again to quit at once)\n`);
  };

  constructor() {
    process.on('SIGINT', this.onSignal);
    process.on('SIGTERM', this.onSignal);
  }

  dispose(): void {
    process.off('SIGINT', this.onSignal);
    process.off('SIGTERM', this.onSignal);
  }
}

async function saveAdapter(cli: CliEncoder, tensors: HostAdapterTensors, lora: LoraConfig, out: string, model: string): Promise<void> {
  const at = model.lastIndexOf('@');
  const isHubWithRevision = cli.files.source.kind === 'hub' && at > 0;
  const adapter = {
    config: {
      r: lora.r,
      loraAlpha: lora.alpha,
      loraDropout: lora.dropout,
      targetModules: lora.targetModules,
      useRslora: lora.rslora,
      baseModelNameOrPath: isHubWithRevision ? model.slice(0, at) : cli.files.source.id,
      // The commit a Hub revision resolved to, so the adapter names the exact base it was trained on.
      ...(cli.files.source.commit || cli.files.source.revision ? { revision: cli.files.source.commit ?? cli.files.source.revision } : {}),
    },
    tensors,
  };
  const files = writePeftAdapter(adapter, cli.files.config);
  await writeOutputDir(out, files);
}

const round = (x: number) => Math.round(x * 1e5) / 1e5;
