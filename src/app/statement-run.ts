/**
 * The CTD LLM study's run of a decoder, in the engine worker: zero-shot scoring of the held-out
 * statements by the base, QLoRA on the training statements with the study's preset (LoRA r16 α32 on
 * every linear layer, over the base as loaded: NF4 unless f32 was chosen), the same scoring with the
 * adapter, and zero-shot accuracy and AUROC before and after with paired bootstrap intervals; then
 * the encoder's embedding metrics (KG separation, probe accuracy, silhouette...) on the decoder's
 * mean-pooled embeddings of the held-out statements, and a t-SNE map of them per model. The
 * statements are put as the command line's `score` puts them (the default plain prompt, " True" /
 * " False"); those whose prompt and answer need more positions than the model has are left out and
 * counted. No DOM.
 */
import { Rng } from '../data/rng.ts';
import type { CtdStatement } from '../data/statements.ts';
import { type BeforeAfterResult, beforeAfterResult, evaluateBeforeAfter } from '../eval/before-after.ts';
import { labelledFromAssociations } from '../eval/eval-set.ts';
import { perplexityFor, runTsne } from '../eval/tsne.ts';
import type { Embedder, EvalSet } from '../eval/types.ts';
import { embedDecoderTexts } from '../model/decoder-embed.ts';
import type { GpuLoraModules, TrainingLoraConfig } from '../model/lora.ts';
import { statementComparisons } from '../eval/statement-accuracy.ts';
import type { DecoderModelFiles } from '../model/decoder-checkpoint.ts';
import type { BaseQuantization } from '../model/adapted-linear.ts';
import type { DecoderConfig } from '../model/decoder-config.ts';
import { canonicalDecoderTargets, initDecoderLora } from '../model/decoder-lora-layout.ts';
import { type DecoderMemoryPlan, planDecoderTraining } from '../model/decoder-memory.ts';
import { createDecoderAdapter } from '../model/decoder-lora.ts';
import { allLinearTargets } from '../model/decoder-weights.ts';
import type { DecoderModel } from '../model/decoder.ts';
import type { PeftAdapter } from '../model/peft-files.ts';
import { peftConfigOf } from '../model/peft-files.ts';
import { type EncodedStatement, defaultStatementPrompt, encodeStatement } from '../model/statement-prompt.ts';
import { scoreStatements } from '../model/statement-score.ts';
import { CTD_STUDY_TRAINING as STUDY } from '../train/defaults.ts';
import { DecoderTrainer } from '../train/decoder-trainer.ts';
import { NonFiniteLossError } from '../train/trainer.ts';
import type { TsneMap } from './protocol.ts';

/** Fewest held-out statements a t-SNE map is drawn of (its perplexity, at least 2, must stay below n − 1). */
export const MIN_MAP_STATEMENTS = 4;

export interface StatementRunSettings {
  steps: number;
  /** Statements per optimizer step. */
  batchSize: number;
  learningRate: number;
  /** Seeds the adapter's init, the order of the statements, dropout and the bootstrap. */
  seed: number;
}

export interface StatementRunHooks {
  /** `stepBytes`: the most GPU memory the adapter, its optimizer and the steps so far took above what was held before training (engine.peakBytes). */
  onStep(step: number, totalSteps: number, loss: number, stepBytes: number): void;
  onScored(model: 'base' | 'adapted', done: number, total: number): void;
  /** Texts embedded so far for the embedding metrics and maps (both models), of `total`. */
  onEmbedded(done: number, total: number): void;
  /** Asked before each step: true ends training there (the adapter so far is evaluated). */
  stopRequested(): boolean;
}

export interface StatementRunOutcome {
  adapter: PeftAdapter;
  losses: number[];
  stopped: boolean;
  /** Why training ended early on a non-finite loss (the adapter of the last good step is kept). */
  error: string | null;
  /** Statements used, and left out as longer than the model's positions. */
  statements: { train: number; test: number; leftOut: number };
  /** Zero-shot statement metrics, then the embedding metrics; the gene–disease pair cosines. */
  result: BeforeAfterResult;
  /** t-SNE maps of the held-out statements' embeddings, base and adapted, labelled true / false statement; none under MIN_MAP_STATEMENTS. */
  maps: TsneMap[];
}

/** How each step runs (the memory plan's): statements per forward and backward, and the checkpoint interval (0 = off). */
export interface StatementStepLayout {
  microBatch: number;
  checkpointEvery: number;
}

/** The whole step in one forward and backward, every layer keeping its activations. */
export const WHOLE_STEP: StatementStepLayout = { microBatch: Number.POSITIVE_INFINITY, checkpointEvery: 0 };

/** The study's adapter (LoRA r16 α32 on every linear layer) for `config`, its targets as PEFT names them. */
export function studyLora(config: DecoderConfig): TrainingLoraConfig {
  return { r: STUDY.r, alpha: STUDY.alpha, dropout: STUDY.loraDropout, rslora: false, targetModules: canonicalDecoderTargets(config, allLinearTargets(config)) as string[] };
}

/**
 * The memory plan of the study's statement step on `files`' decoder (planDecoderTraining, as `qlora-lab
 * train --objective statements` plans it): a step of `batchSize` training statements, each row as long
 * as the longest training statement's prompt and answer, into `budgetBytes`.
 */
export function planStatementStep(
  files: DecoderModelFiles,
  train: StudyStatements,
  batchSize: number,
  base: { quantization: BaseQuantization; budgetBytes: number; maxBufferBytes: number },
): DecoderMemoryPlan {
  const seq = Math.max(...train.encoded.map((e) => e.prompt.length + Math.max(e.true.length, e.false.length) - 1));
  return planDecoderTraining({
    config: files.config,
    lora: studyLora(files.config),
    shape: { sequences: Math.min(batchSize, train.encoded.length), seq },
    base: { quantization: base.quantization },
    budgetBytes: base.budgetBytes,
    maxBufferBytes: base.maxBufferBytes,
    storages: ['f32', 'f16'],
  });
}

/** Statements as the study puts them to the decoder, with their labels, and how many were too long. */
export interface StudyStatements {
  encoded: EncodedStatement[];
  labels: boolean[];
  leftOut: number;
}

/**
 * A split's statements under the study's prompt, leaving out those whose prompt and answer (but its
 * last token, the longest row scoring or training feeds) need more positions than the decoder has.
 */
export function encodeStudyStatements(files: DecoderModelFiles, split: CtdStatement[], name: string, modelId: string): StudyStatements {
  const prompt = defaultStatementPrompt(false);
  const out: StudyStatements = { encoded: [], labels: [], leftOut: 0 };
  split.forEach((s, i) => {
    const encoded = encodeStatement(files.tokenizer, prompt, s.statement, i);
    if (encoded.prompt.length + Math.max(encoded.true.length, encoded.false.length) - 1 > files.config.maxSequenceLength) out.leftOut++;
    else {
      out.encoded.push(encoded);
      out.labels.push(s.label);
    }
  });
  if (out.encoded.length === 0) throw new Error(`No ${name} statement fits in ${modelId}'s ${files.config.maxSequenceLength} positions with its question and answer.`);
  return out;
}

/** Check the settings before any GPU work, each with the value it got. */
export function checkStatementRunSettings(s: StatementRunSettings): void {
  if (!Number.isInteger(s.steps) || s.steps < 1) throw new Error(`Training steps must be a positive whole number, got ${s.steps}.`);
  if (!Number.isInteger(s.batchSize) || s.batchSize < 1) throw new Error(`Statements per step must be a positive whole number, got ${s.batchSize}.`);
  if (!(s.learningRate > 0 && Number.isFinite(s.learningRate))) throw new Error(`The learning rate must be a positive number, got ${s.learningRate}.`);
  if (!Number.isInteger(s.seed)) throw new Error(`The seed must be a whole number, got ${s.seed}.`);
}

export async function runStatementStudy(
  model: DecoderModel,
  files: DecoderModelFiles,
  modelId: string,
  data: { train: CtdStatement[]; test: CtdStatement[] },
  settings: StatementRunSettings,
  hooks: StatementRunHooks,
  layout: StatementStepLayout = WHOLE_STEP,
): Promise<StatementRunOutcome> {
  checkStatementRunSettings(settings);
  const { tokenizer, config } = files;
  const train = encodeStudyStatements(files, data.train, 'training', modelId);
  const test = encodeStudyStatements(files, data.test, 'held-out', modelId);
  const score = async (which: 'base' | 'adapted') =>
    (await scoreStatements(model, test.encoded, { padId: tokenizer.padId, onProgress: (done) => hooks.onScored(which, done, test.encoded.length) })).map((s) => s.margin);

  model.adapters = [];
  const before = await score('base');
  // Scoring's scratch goes, so the measured peak is training's (the plan's estimate counts the base, the adapter and one step).
  const { engine } = model;
  engine.flush(); // recorded work keeps the pooled buffers it uses; once submitted they may go
  engine.trimPool();
  const held = engine.liveBytes;
  engine.peakBytes = held;
  const lora = studyLora(config);
  const adapter = createDecoderAdapter(engine, config, lora, initDecoderLora(config, STUDY.r, allLinearTargets(config), settings.seed).tensors, true);
  model.adapters = [adapter];
  let trained: StatementTraining;
  try {
    trained = await trainOnStatements(model, train, tokenizer.padId, settings, layout, {
      ...hooks,
      onStep: (step, totalSteps, loss) => hooks.onStep(step, totalSteps, loss, engine.peakBytes - held),
    });
  } catch (e) {
    adapter.release();
    model.adapters = [];
    throw e;
  }
  const bootstrap = { seed: settings.seed };
  let after: number[];
  let tensors: Awaited<ReturnType<typeof adapter.download>>;
  let embedded: Awaited<ReturnType<typeof embeddingMetrics>>;
  try {
    after = await score('adapted');
    embedded = await embeddingMetrics(model, files, adapter, data.test, bootstrap.seed, hooks);
    tensors = await adapter.download();
  } finally {
    adapter.release();
    model.adapters = [];
  }
  const metrics = [...statementComparisons(before, after, test.labels, bootstrap), ...embedded.result.metrics];
  const result = beforeAfterResult(metrics, embedded.result.pairCosines, bootstrap);
  const maps: TsneMap[] = [];
  if (data.test.length >= MIN_MAP_STATEMENTS) for (const which of ['base', 'adapted'] as const) maps.push(await tsneMap(model, which, embedded.vectors[which], data.test, bootstrap.seed));
  return {
    adapter: { config: peftConfigOf(lora, { id: modelId }), tensors },
    ...trained,
    statements: { train: train.encoded.length, test: test.encoded.length, leftOut: train.leftOut + test.leftOut },
    result,
    maps,
  };
}

/** What training on the statements ended with: each step's loss, whether Stop ended it, and a non-finite loss's message. */
export interface StatementTraining {
  losses: number[];
  stopped: boolean;
  error: string | null;
}

/**
 * Train the model's trainable adapter on the statements with the study's optimizer settings: epoch
 * after epoch of a seeded shuffle, `settings.batchSize` statements a step, each step in micro-batches
 * of `layout.microBatch` with `layout.checkpointEvery` (the loss is the step's mean over answer tokens
 * whatever the layout; LoRA dropout masks are drawn per micro-batch). A non-finite loss ends training
 * with its message; the adapter keeps its last good step.
 */
export async function trainOnStatements(
  model: DecoderModel,
  train: StudyStatements,
  padId: number,
  settings: StatementRunSettings,
  layout: StatementStepLayout,
  hooks: Pick<StatementRunHooks, 'stopRequested'> & { onStep(step: number, totalSteps: number, loss: number): void },
): Promise<StatementTraining> {
  const trainer = new DecoderTrainer(model, {
    learningRate: settings.learningRate,
    warmupSteps: Math.round(settings.steps * STUDY.warmupRatio),
    totalSteps: settings.steps,
    weightDecay: STUDY.weightDecay,
    beta1: STUDY.beta1,
    beta2: STUDY.beta2,
    eps: STUDY.eps,
    maxGradNorm: STUDY.maxGradNorm,
    seed: settings.seed,
    checkpointEvery: layout.checkpointEvery,
  });
  const out: StatementTraining = { losses: [], stopped: false, error: null };
  try {
    const rng = new Rng(settings.seed ^ 0x2c1b3c6d);
    let order: number[] = [];
    for (let step = 0; step < settings.steps; step++) {
      if (hooks.stopRequested()) {
        out.stopped = true;
        break;
      }
      const picked: number[] = [];
      while (picked.length < Math.min(settings.batchSize, train.encoded.length)) {
        if (order.length === 0) order = rng.shuffle(Array.from({ length: train.encoded.length }, (_, i) => i));
        picked.push(order.pop()!);
      }
      const micro = [];
      for (let m = 0; m < picked.length; m += layout.microBatch) {
        const part = picked.slice(m, m + layout.microBatch);
        micro.push({ statements: part.map((i) => train.encoded[i]), labels: part.map((i) => train.labels[i]) });
      }
      const report = await trainer.statementStep(micro, padId);
      out.losses.push(report.loss);
      hooks.onStep(report.step, settings.steps, report.loss);
    }
  } catch (e) {
    if (!(e instanceof NonFiniteLossError)) throw e;
    out.error = e.message;
  } finally {
    trainer.release();
  }
  return out;
}

/**
 * The encoder's before/after metrics of the held-out statements as gene–disease associations, on
 * the decoder's mean-pooled last hidden states without and with `adapter`; the sentences' vectors
 * are kept for the maps.
 */
async function embeddingMetrics(model: DecoderModel, files: DecoderModelFiles, adapter: GpuLoraModules, test: CtdStatement[], seed: number, hooks: StatementRunHooks) {
  const associations = test.map((s) => ({ gene: s.gene, disease: s.disease, sentence: s.statement, associated: s.label }));
  const evalSet: EvalSet = { associations, labelled: labelledFromAssociations(associations) };
  const vectors = { base: new Map<string, Float32Array>(), adapted: new Map<string, Float32Array>() };
  const embedder =
    (which: 'base' | 'adapted'): Embedder =>
    async (texts) => {
      const todo = [...new Set(texts.filter((t) => !vectors[which].has(t)))];
      model.adapters = which === 'adapted' ? [adapter] : [];
      const embedded = await embedDecoderTexts(model, files.tokenizer, todo, { pooling: 'mean', normalize: false });
      todo.forEach((t, i) => vectors[which].set(t, embedded[i]));
      return texts.map((t) => vectors[which].get(t)!);
    };
  const result = await evaluateBeforeAfter(embedder('base'), embedder('adapted'), evalSet, { seed, onProgress: hooks.onEmbedded });
  return { result, vectors };
}

async function tsneMap(model: DecoderModel, which: 'base' | 'adapted', vectors: Map<string, Float32Array>, test: CtdStatement[], seed: number): Promise<TsneMap> {
  const texts = test.map((s) => s.statement);
  const positions = await runTsne(model.engine, texts.map((t) => vectors.get(t)!), { dims: 2, seed, perplexity: perplexityFor(texts.length) });
  return { model: which, dims: 2, positions, texts, labels: test.map((s) => (s.label ? 'true statement' : 'false statement')) };
}
