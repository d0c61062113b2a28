/**
 * A run written out for sentence-transformers + PEFT: the rows it trained on, in the order it fed
 * them (train.jsonl), its test rows (test.jsonl), its configuration (run.json) and a train.py that
 * reproduces it under `python`, `torchrun --nproc_per_node=N` or `accelerate launch`. Rows in feed
 * order make every optimizer step of the Python run see the same batch as the original one.
 */
import type { ModelFiles } from '../model/checkpoint.ts';
import { familyTargets } from '../model/families.ts';
import type { TrainingLoraConfig } from '../model/lora.ts';
import { type RolePrompts, type SentenceConfig, type SentenceSettings, stPoolingMode } from '../model/sentence-config.ts';
import type { FolderFiles } from '../model/sentence-folder.ts';
import trainPy from './export_train.py?raw';
import type { ContrastiveExample, Example, LabelledPair, Objective } from './objective.ts';
import { type RunConfig, runSentenceSettings } from './run-config.ts';

export const RUN_EXPORT_FORMAT = 'qlora-lab run export';

/** Everything about a run that train.py needs, whichever front end (CLI or app) trained it. */
export interface RunExport {
  /** What the run was, in words, for the README (e.g. "qlora-lab train --model … --data …"). */
  origin: string;
  model: { nameOrPath: string; kind: 'hub' | 'local' | 'bundled'; revision: string | null; quantization: 'nf4' | 'f32' };
  sentence: SentenceSettings;
  /** How the base folder treats texts besides the settings: lower-casing, and whether prompts are pooled. */
  text: Pick<SentenceConfig, 'lowercase' | 'includePrompt'>;
  lora: TrainingLoraConfig;
  objective: Objective;
  steps: number;
  batchSize: number;
  gradientAccumulation: number;
  learningRate: number;
  warmupSteps: number;
  weightDecay: number;
  maxGradNorm: number | null;
  beta1: number;
  beta2: number;
  eps: number;
  hiddenDropout: number;
  /** The seed train.py gives transformers (LoRA init, dropout); the original seeds are listed in run.json too. */
  seed: number;
  seeds: Record<string, number>;
}

/** An app run (`model` resolved to `commit` when it is a Hub model): its seeds init, train and data became the run. */
export function appRunExport(runId: string, config: RunConfig, commit: string | null, base: Pick<ModelFiles, 'config' | 'sentence'>): RunExport {
  if (config.frozenAdapter) {
    throw new Error(`This run trains on top of the frozen adapter ${config.frozenAdapter.name}, which the export cannot carry yet: merge it into the base first and train on that folder.`);
  }
  const { model, train } = config;
  return {
    origin: `qlora-lab app run ${runId}`,
    model: { nameOrPath: model.id, kind: model.kind, revision: model.kind === 'hub' ? (commit ?? model.revision) : null, quantization: config.quantization },
    sentence: runSentenceSettings(config),
    text: { lowercase: base.sentence.lowercase, includePrompt: base.sentence.includePrompt },
    // PEFT on the base's own class needs its module names (DistilBERT: q_lin …).
    lora: { ...config.lora, targetModules: familyTargets(base.config, config.lora.targetModules) },
    objective: train.objective,
    steps: train.steps,
    batchSize: train.batchSize,
    gradientAccumulation: train.gradientAccumulation,
    learningRate: train.learningRate,
    warmupSteps: train.warmupSteps,
    weightDecay: train.weightDecay,
    maxGradNorm: train.maxGradNorm,
    beta1: train.beta1,
    beta2: train.beta2,
    eps: train.eps,
    hiddenDropout: train.hiddenDropout,
    seed: config.seeds.train,
    seeds: { ...config.seeds },
  };
}

/** A test row: labelled pair, with its category when the data had one. */
export type TestRow = LabelledPair & { group?: string };

const jsonl = (rows: object[]) => rows.map((r) => `${JSON.stringify(r)}\n`).join('');

/** The folder's files. `train` must be exactly the examples the run fed, in order (steps × accumulation × batch size). */
export function runExportFiles(run: RunExport, train: Example[], test: TestRow[] | null): FolderFiles {
  const expected = run.steps * run.gradientAccumulation * run.batchSize;
  if (train.length !== expected) throw new Error(`the run fed ${expected} examples (${run.steps} steps × ${run.gradientAccumulation} × ${run.batchSize}), but ${train.length} were given`);
  const { columns, rows } = trainingRows(run.objective, train);
  const config = {
    format: RUN_EXPORT_FORMAT,
    version: 1,
    origin: run.origin,
    model: { name_or_path: run.model.nameOrPath, kind: run.model.kind, revision: run.model.revision, quantization: run.model.quantization },
    pooling: run.sentence.pooling,
    pooling_mode: stPoolingMode(run.sentence.pooling),
    include_prompt: run.text.includePrompt,
    do_lower_case: run.text.lowercase,
    normalize: run.sentence.normalize,
    max_seq_length: run.sentence.maxLength,
    prompts: run.sentence.prompts,
    column_prompts: columnPrompts(run.sentence.prompts, columns),
    lora: { r: run.lora.r, lora_alpha: run.lora.alpha, lora_dropout: run.lora.dropout, use_rslora: run.lora.rslora, target_modules: run.lora.targetModules },
    loss: lossOf(run.objective),
    steps: run.steps,
    batch_size: run.batchSize,
    gradient_accumulation_steps: run.gradientAccumulation,
    learning_rate: run.learningRate,
    warmup_steps: run.warmupSteps,
    weight_decay: run.weightDecay,
    max_grad_norm: run.maxGradNorm,
    adam_beta1: run.beta1,
    adam_beta2: run.beta2,
    adam_epsilon: run.eps,
    hidden_dropout: run.hiddenDropout,
    seed: run.seed,
    seeds: run.seeds,
    data: { train: 'train.jsonl', test: test ? 'test.jsonl' : null, columns, rows: rows.length },
  };
  return {
    'run.json': `${JSON.stringify(config, null, 2)}\n`,
    'train.py': trainPy,
    'requirements.txt': REQUIREMENTS,
    'README.md': readme(run, rows.length, test !== null),
    'train.jsonl': jsonl(rows),
    ...(test ? { 'test.jsonl': jsonl(test.map((t) => ({ text_a: t.textA, text_b: t.textB, label: t.label, ...(t.group ? { category: t.group } : {}) }))) } : {}),
  };
}

/** sentence-transformers takes the columns in order: anchor, positive, then every negative. */
function trainingRows(objective: Objective, examples: Example[]): { columns: string[]; rows: Record<string, string | number>[] } {
  if (objective.kind === 'cosine-pairs') {
    const rows = (examples as LabelledPair[]).map((p) => ({ text_a: p.textA, text_b: p.textB, label: p.label }));
    return { columns: ['text_a', 'text_b', 'label'], rows };
  }
  const triplets = examples as ContrastiveExample[];
  const count = (e: ContrastiveExample) => e.negatives?.length ?? 0;
  const k = count(triplets[0]);
  const odd = triplets.findIndex((e) => count(e) !== k);
  if (odd >= 0) {
    throw new Error(
      `row ${odd + 1} of the training rows has ${count(triplets[odd])} negatives but row 1 has ${k}: sentence-transformers needs the same number of negatives in every row`,
    );
  }
  const negatives = Array.from({ length: k }, (_, i) => `negative_${i + 1}`);
  const rows = triplets.map((e) => ({ anchor: e.anchor, positive: e.positive, ...Object.fromEntries(negatives.map((name, i) => [name, e.negatives![i]])) }));
  return { columns: ['anchor', 'positive', ...negatives], rows };
}

/** The query prompt goes before the first column (anchor, text_a), the passage prompt before the others, as the run embedded them. */
function columnPrompts(prompts: RolePrompts, columns: string[]): Record<string, string> {
  const [first, ...others] = columns.filter((c) => c !== 'label');
  return {
    ...(prompts.query ? { [first]: prompts.query } : {}),
    ...(prompts.passage ? Object.fromEntries(others.map((c) => [c, prompts.passage])) : {}),
  };
}

/** InfoNCE with in-batch negatives is sentence-transformers' MultipleNegatives(Symmetric)RankingLoss; labelled pairs its CosineSimilarityLoss. */
function lossOf(objective: Objective): { name: string; scale?: number } {
  if (objective.kind === 'cosine-pairs') return { name: 'CosineSimilarityLoss' };
  return { name: objective.symmetric ? 'MultipleNegativesSymmetricRankingLoss' : 'MultipleNegativesRankingLoss', scale: objective.scale };
}

const REQUIREMENTS = `sentence-transformers>=5.1
transformers
peft
accelerate
datasets
safetensors
bitsandbytes  # the NF4 base; not needed with --no-4bit
`;

function readme(run: RunExport, rows: number, hasTest: boolean): string {
  const m = run.model;
  return `# A qlora-lab run, for sentence-transformers + PEFT

Run: ${run.origin}
Base: ${m.nameOrPath}${m.revision ? ` at ${m.revision}` : ''} (${m.kind}), ${m.quantization === 'nf4' ? 'frozen in NF4 (QLoRA)' : 'frozen in full precision'}.

    pip install -r requirements.txt
    python train.py                          # one GPU
    torchrun --nproc_per_node=N train.py     # N GPUs (N must divide the batch size, ${run.batchSize})
    accelerate launch train.py               # the same, configured by accelerate
    python train.py --dry-run                # print the resolved configuration (no torch needed)

${m.kind === 'hub' ? '' : `The base is a ${m.kind} model: give its folder with \`--model PATH\`.\n`}Options: --output-dir (default ./adapter), --no-4bit (full-precision base, no bitsandbytes),
--mini-batch-size N (above N rows per GPU the Cached loss variant is used, with mini-batches of N).

- run.json: the run's configuration (model and revision, pooling, prompts, LoRA, loss, schedule, seed).
- train.jsonl: the ${rows} rows the run trained on, in the order it used them (${run.steps} steps × ${run.gradientAccumulation} × ${run.batchSize});
  train.py reads them in that order, so each optimizer step sees the same batch.${hasTest ? '\n- test.jsonl: the rows the run was evaluated on (text_a, text_b, label).' : ''}
- The output folder holds adapter_config.json + adapter_model.safetensors (PEFT) and qlora_lab.json:
  \`qlora-lab merge --model <base> --adapter <output-dir> --out merged\` or the app's adapter import read it.

Not reproduced bit for bit: random streams (LoRA A initialisation, dropout masks) and the NF4 and
float arithmetic of bitsandbytes/CUDA instead of WebGPU.
`;
}
