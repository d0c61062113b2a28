/** `qlora-lab train`: QLoRA-train a LoRA adapter on a pair file and write it in PEFT format (a decoder --model: decoder-train.ts). */
import { join, resolve } from 'node:path';
import { adapterFolder } from '../../model/adapter-settings.ts';
import { trainingTargets } from '../../model/families.ts';
import { GpuAdapter, type HostAdapterTensors, type TrainingLoraConfig, initLoraTensors } from '../../model/lora.ts';
import { type MemoryPlan, describePlan, formatBytes, planTraining } from '../../model/memory.ts';
import { peftConfigOf } from '../../model/peft-files.ts';
import { hasPooler } from '../../model/state-dict.ts';
import { DivergedError, adapterHealth } from '../../train/divergence.ts';
import { runTrainingLoop } from '../../train/loop.ts';
import { CLI_TRAIN_DEFAULTS } from '../../train/defaults.ts';
import { NonFiniteLossError, Trainer } from '../../train/trainer.ts';
import { parseOptions, required } from '../args.ts';
import { runDecoderTrain } from '../decoder-train.ts';
import { modelArgument, modelKind } from '../decoder.ts';
import { type CliEncoder, baseOption, openEncoder } from '../encoder.ts';
import { UsageError } from '../errors.ts';
import { parseModelArgument } from '../model-source.ts';
import { checkOutputPath, writeOutputDir } from '../output.ts';
import { pairOptionsOf, readPairFile } from '../pair-file.ts';
import { CHECKPOINT_FILE, type TrainCheckpoint, fileSha256, loadTrainCheckpoint, removeTrainCheckpoint, saveTrainCheckpoint } from '../train-checkpoint.ts';
import { TRAIN_OPTIONS, TRAIN_USAGE, TrainingOrder, trainPlan } from '../train-options.ts';

export const summary = 'train a LoRA adapter on (anchor, positive[, negatives]) or labelled pairs; writes a PEFT adapter';

const USAGE = `usage: qlora-lab train --model <dir|hub-id> --data pairs.(csv|tsv|jsonl)[.gz] --out <adapter-dir> [options]
${TRAIN_USAGE}
  --checkpoint-every N  write <out>/checkpoint.safetensors every N steps (default ${CLI_TRAIN_DEFAULTS.checkpointEvery}); one is also
                        written on Ctrl-C / SIGTERM, and removed when the run finishes
  --resume <out>        continue an interrupted run from <out>/checkpoint.safetensors with its own
                        settings and data (give no other option); the result is bit-identical to
                        an uninterrupted run
a decoder LLM as --model trains on texts with --objective causal-lm instead: qlora-lab train --model <decoder> --help`;

/** Given alone: every other setting of a resumed run comes from its checkpoint. */
const RESUME_OPTION = '--resume';

export async function run(args: string[]): Promise<void> {
  const model = modelArgument(args);
  if (model && (await modelKind(model)) === 'decoder') return runDecoderTrain(args);
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
  const { values } = parseOptions(args, TRAIN_OPTIONS, USAGE);
  const out = required(values, 'out', USAGE);
  await checkOutputPath('out', out, 'dir');
  const dataPath = required(values, 'data', USAGE);
  const data = await readPairFile(dataPath, pairOptionsOf(values));
  const dataSha256 = await fileSha256(dataPath);
  if (resumeFrom && resumeFrom.dataSha256 !== dataSha256) {
    throw new UsageError(`--resume ${out}: ${dataPath} has changed since the run started (its SHA-256 differs), so the run cannot continue identically`);
  }
  const plan = trainPlan(values, data);
  const { lora, batchSize, stepsPerEpoch, checkpointEvery, config } = plan;
  const { totalSteps, seed } = config;

  const negatives = data.layout === 'triplets' ? Math.max(0, ...data.examples.map((e) => e.negatives?.length ?? 0)) : 0;
  const sequences = batchSize * (2 + negatives);
  // The plan is made before the base is built: its storage precision covers the base's f32 parts.
  let memoryPlan: MemoryPlan | undefined;
  const cli = await openEncoder(values, (values.stack as string[] | undefined) ?? [], false, (files, settings, engine) => {
    memoryPlan = planTraining({
      config: files.config,
      lora: { ...lora, targetModules: trainingTargets(files.config, lora.targetModules) },
      shape: { sequences, seq: Math.min(settings.maxLength, files.config.maxSequenceLength), anchors: batchSize },
      base: { quantization: baseOption(values) },
      budgetBytes: plan.memory.budgetBytes,
      maxBufferBytes: engine.limits.maxStorageBufferBindingSize,
      fixed: plan.memory.fixed,
    });
    return memoryPlan.storage;
  });
  if (!memoryPlan) throw new Error('the memory plan was not made');
  const modelCommit = cli.files.source.commit;
  if (resumeFrom?.modelCommit && modelCommit && resumeFrom.modelCommit !== modelCommit) {
    throw new UsageError(`--resume ${out}: the run started on commit ${resumeFrom.modelCommit} of ${values.model}, which now resolves to ${modelCommit}; resume with --model pinned to that commit`);
  }
  lora.targetModules = trainingTargets(cli.files.config, lora.targetModules);
  const adapter = new GpuAdapter(cli.engine, cli.files.config, lora, initLoraTensors(cli.files.config, lora, seed, { pooler: hasPooler(cli.files.weights) }), true);
  cli.bert.adapters = [...cli.adapters, adapter];
  const estimate = memoryPlan.estimate;
  process.stderr.write(`${data.examples.length} ${data.layout} examples, ${totalSteps} steps; ${describePlan(memoryPlan, plan.memory.budgetBytes)}\n`);
  const trainer = new Trainer(cli.encoder, { ...config, sequencesPerPass: memoryPlan.sequencesPerPass, checkpointEvery: memoryPlan.checkpointEvery, storage: memoryPlan.storage });
  if (resumeFrom) {
    trainer.restore(resumeFrom.snapshot);
    process.stderr.write(`resuming at step ${trainer.step} of ${totalSteps} from ${join(out, CHECKPOINT_FILE)}\n`);
  }
  // The last checkpointed adapter that passed the divergence rule: what a diverged run falls back to.
  let lastSane: { step: number; tensors: HostAdapterTensors } | null = resumeFrom ? { step: resumeFrom.snapshot.step, tensors: resumeFrom.snapshot.adapter } : null;
  const save = (tensors: HostAdapterTensors) => saveAdapter(cli, tensors, lora, out, String(values.model), { trainArgs: withAbsolutePaths(args), dataSha256 });

  const interrupt = new InterruptFlag();
  const started = performance.now();
  let examplesSeen = 0;
  let stopped: string | null = null;
  try {
    const order = new TrainingOrder(data.examples, plan);
    await runTrainingLoop(trainer, { weights: cli.files.weights, lora }, {
      examples: (step, micro) => order.microBatch(step, micro),
      onStep: (report) => {
        examplesSeen += report.examples;
        const seconds = (performance.now() - started) / 1000;
        const epoch = Math.floor((report.step - 1) / stepsPerEpoch);
        process.stderr.write(
          `${JSON.stringify({ step: report.step, of: totalSteps, epoch: epoch + 1, loss: round(report.loss), lr: report.learningRate, grad_norm: round(report.gradNorm), examples_per_s: round(examplesSeen / seconds) })}\n`,
        );
        if (report.step === (resumeFrom?.snapshot.step ?? 0) + 1) {
          process.stderr.write(`GPU memory after the first step: peak ${formatBytes(cli.engine.peakBytes)}, estimated ${formatBytes(estimate.total)}\n`);
        }
      },
      checkpointDue: (step) => step % checkpointEvery === 0 || interrupt.raised,
      saveCheckpoint: async (snapshot) => {
        await saveTrainCheckpoint(out, { snapshot, args, dataSha256, ...(modelCommit ? { modelCommit } : {}) });
        lastSane = { step: snapshot.step, tensors: snapshot.adapter };
        process.stderr.write(`checkpoint at step ${snapshot.step} written to ${join(out, CHECKPOINT_FILE)}\n`);
      },
      afterStep: (report) => {
        if (interrupt.raised && report.step < totalSteps) {
          throw new UsageError(`interrupted at step ${report.step} of ${totalSteps}; continue with: qlora-lab train --resume ${out}`);
        }
      },
    });
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
  // Checkpoints start at step 1, so lastSane is never the untrained adapter.
  const keep = health.sane && trainer.step > 0 ? { step: trainer.step, tensors: final } : lastSane;
  if (keep) {
    await save(keep.tensors);
    throw new UsageError(`${reason} The adapter of step ${keep.step}, the last that passed the divergence check, was written to ${out}. Lower --lr and train again.`);
  }
  throw new UsageError(`${reason} No adapter passed the divergence check, so nothing was written to ${out}. Lower --lr and train again.`);
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

/** `args` with --data, --stack and a local --model made absolute: the record stays valid whatever folder it is used from. */
function withAbsolutePaths(args: string[]): string[] {
  const absolute = (option: string, value: string) => (option === 'model' && parseModelArgument(value).kind === 'hub' ? value : resolve(value));
  return args.map((arg, i) => {
    const inline = /^--(data|model|stack)=(.*)$/.exec(arg);
    if (inline) return `--${inline[1]}=${absolute(inline[1], inline[2])}`;
    const previous = /^--(data|model|stack)$/.exec(args[i - 1] ?? '');
    return previous ? absolute(previous[1], arg) : arg;
  });
}

/** The adapter in PEFT's layout, with qlora_lab.json recording the sentence settings and the run's arguments. */
async function saveAdapter(cli: CliEncoder, tensors: HostAdapterTensors, lora: TrainingLoraConfig, out: string, model: string, run: { trainArgs: string[]; dataSha256: string }): Promise<void> {
  const at = model.lastIndexOf('@');
  const isHubWithRevision = cli.files.source.kind === 'hub' && at > 0;
  const baseModel = isHubWithRevision ? model.slice(0, at) : cli.files.source.id;
  // The commit a Hub revision resolved to, so the adapter names the exact base it was trained on.
  const revision = cli.files.source.commit ?? cli.files.source.revision;
  const adapter = { config: peftConfigOf(lora, { id: baseModel, revision }), tensors };
  const settings = { baseModel, ...(revision ? { revision } : {}), quantization: cli.bert.quantization, sentence: cli.settings, ...run };
  await writeOutputDir(out, adapterFolder(adapter, cli.files.config, settings));
}

const round = (x: number) => Math.round(x * 1e5) / 1e5;
