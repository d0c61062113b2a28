/**
 * `qlora-lab export-run`: a `train` run written out for sentence-transformers + PEFT (train.jsonl in
 * feed order, run.json, train.py). The run is given by train's own options, or by an adapter folder
 * `train` wrote (`--from`), whose qlora_lab.json holds the arguments and the data's SHA-256.
 * Nothing is loaded onto a GPU, and no weights are read: of the model, only config.json and its
 * sentence-transformers files (the run's default pooling, length, prompts), and for a Hub model the
 * commit its revision is.
 */
import { resolve } from 'node:path';
import type { AdapterSettings } from '../../model/adapter-settings.ts';
import { type ModelFiles, loadModelConfigs } from '../../model/checkpoint.ts';
import { familyTargets, trainingTargets } from '../../model/families.ts';
import { TARGETABLE_MODULES, linearModules, targetsModule } from '../../model/lora.ts';
import { type RunExport, runExportFiles } from '../../train/run-export.ts';
import { parseOptions, required } from '../args.ts';
import { baseOption, cliSentenceSettings, readAdapterSettingsFile } from '../encoder.ts';
import { UsageError } from '../errors.ts';
import { modelSource, parseModelArgument } from '../model-source.ts';
import { checkOutputPath, writeOutputDir } from '../output.ts';
import { pairOptionsOf, readPairFile } from '../pair-file.ts';
import { fileSha256 } from '../train-checkpoint.ts';
import { TRAIN_OPTIONS, TRAIN_USAGE, TrainingOrder, trainPlan } from '../train-options.ts';

export const summary = 'write a train run (its rows in order, its configuration, a train.py for sentence-transformers + PEFT) to a folder';

const USAGE = `usage: qlora-lab export-run --model <dir|hub-id> --data pairs.(csv|tsv|jsonl)[.gz] [train options] --out <dir>
       qlora-lab export-run --from <adapter-dir> --out <dir>
  --from <adapter-dir>  an adapter folder written by qlora-lab train: the run is rebuilt from the
                        arguments in its qlora_lab.json (the data file must be unchanged)
  --out <dir>           the export folder: run.json, train.jsonl, train.py, requirements.txt, README.md
train options (as for qlora-lab train; --out there is the adapter folder, not needed here):
${TRAIN_USAGE}`;

export async function run(args: string[]): Promise<void> {
  const { values } = parseOptions(args, { ...TRAIN_OPTIONS, from: { type: 'string' } }, USAGE);
  const out = required(values, 'out', USAGE);
  await checkOutputPath('out', out, 'dir');
  const from = values.from as string | undefined;
  let trainArgs = args.filter((_, i) => !isOutOption(args, i));
  let recorded: Partial<AdapterSettings> = {};
  if (from !== undefined) {
    if (trainArgs.some((a) => a.startsWith('--') && !/^--from(=|$)/.test(a))) throw new UsageError(`--from takes the run's settings from ${from}: give no train option with it\n\n${USAGE}`);
    const settings = await readAdapterSettingsFile(from);
    if (!settings?.trainArgs) throw new UsageError(`--from ${from}: it has no qlora_lab.json with the run's arguments (adapter folders written by qlora-lab train have one)`);
    trainArgs = settings.trainArgs.filter((_, i, all) => !isOutOption(all, i));
    recorded = settings;
  }
  const { values: train } = from === undefined ? { values } : parseOptions(trainArgs, TRAIN_OPTIONS, USAGE);
  if (((train.stack as string[] | undefined) ?? []).length > 0) {
    throw new UsageError('a run with --stack cannot be exported yet: merge the stacked adapters into the base (qlora-lab merge) and train on that folder as --model');
  }
  const dataPath = required(train, 'data', USAGE);
  const data = await readPairFile(dataPath, pairOptionsOf(train));
  if (recorded.dataSha256 && recorded.dataSha256 !== (await fileSha256(dataPath))) {
    throw new UsageError(`--from ${from}: ${dataPath} has changed since the run (its SHA-256 differs), so its rows cannot be exported as they were`);
  }
  const plan = trainPlan(train, data);
  const c = plan.config;
  const model = await modelOf(required(train, 'model', USAGE), recorded.revision);
  const { config: bert, sentence: folder } = await readBaseConfigs(model);
  // As train takes them: BERT's names or the model's own, each on its own; train.py needs the model's own.
  const targets = trainingTargets(bert, plan.lora.targetModules);
  const unknown = plan.lora.targetModules.filter((t) => !linearModules(bert, { pooler: true }).some((m) => targetsModule({ targetModules: trainingTargets(bert, [t]) }, m)));
  if (unknown.length > 0) throw new UsageError(`--targets: unknown modules ${unknown.join(', ')} (BERT's linear layers: ${TARGETABLE_MODULES.join(', ')}, or the model's own names)`);
  const exported: RunExport = {
    origin: `qlora-lab train ${trainArgs.map(quoted).join(' ')}`,
    model: { ...model, quantization: baseOption(train) },
    // What train embedded with: as it recorded them, else the folder's choices under the options given.
    sentence: recorded.sentence ?? cliSentenceSettings(folder, plan.sentence).settings,
    text: { lowercase: folder.lowercase, includePrompt: folder.includePrompt },
    lora: { ...plan.lora, targetModules: familyTargets(bert, targets) },
    objective: c.objective,
    steps: c.totalSteps,
    batchSize: plan.batchSize,
    gradientAccumulation: c.gradientAccumulation,
    learningRate: c.learningRate,
    warmupSteps: c.warmupSteps,
    weightDecay: c.weightDecay,
    maxGradNorm: c.maxGradNorm,
    beta1: c.beta1,
    beta2: c.beta2,
    eps: c.eps,
    hiddenDropout: c.hiddenDropout,
    seed: c.seed,
    seeds: { seed: c.seed },
  };
  let files;
  try {
    files = runExportFiles(exported, new TrainingOrder(data.examples, plan).all(), null);
  } catch (e) {
    throw new UsageError(`${dataPath}: ${(e as Error).message}`);
  }
  await writeOutputDir(out, files);
  process.stderr.write(`${c.totalSteps} steps, ${c.totalSteps * c.gradientAccumulation * plan.batchSize} rows written to ${out}; run it with: python ${out}/train.py (or torchrun / accelerate launch)\n`);
}

/** `--out X` / `--out=X` at `i` (the option or its value). */
function isOutOption(args: string[], i: number): boolean {
  return args[i] === '--out' || args[i].startsWith('--out=') || args[i - 1] === '--out';
}

/** A local folder by its absolute path; a Hub model by id and the commit its revision is (recorded, or asked now). */
async function modelOf(arg: string, recordedRevision: string | undefined): Promise<Omit<RunExport['model'], 'quantization'>> {
  const parsed = parseModelArgument(arg);
  if (parsed.kind === 'local') return { nameOrPath: resolve(parsed.dir), kind: 'local', revision: null };
  if (recordedRevision) return { nameOrPath: parsed.id, kind: 'hub', revision: recordedRevision };
  try {
    return { nameOrPath: parsed.id, kind: 'hub', revision: (await modelSource(arg).commit?.()) ?? parsed.revision };
  } catch (e) {
    throw new UsageError(`--model ${arg}: cannot ask the Hub which commit ${parsed.revision} is (${(e as Error).message}); give the commit as ${parsed.id}@<commit>`);
  }
}

/** The base's config.json and sentence-transformers choices, read at the run's revision. */
async function readBaseConfigs(model: Omit<RunExport['model'], 'quantization'>): Promise<Pick<ModelFiles, 'config' | 'sentence'>> {
  const arg = model.kind === 'hub' && model.revision ? `${model.nameOrPath}@${model.revision}` : model.nameOrPath;
  try {
    return await loadModelConfigs(modelSource(arg));
  } catch (e) {
    throw new UsageError(`--model ${arg}: ${(e as Error).message}`);
  }
}

const quoted = (arg: string) => (/^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", `'\\''`)}'`);
